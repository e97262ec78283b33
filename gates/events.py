"""What happened, said once by the service that made it happen, inside its transaction.

A service that changes something people must hear about (a gate decision, an item assigned,
a feed gone stale, a flag raised) emits an `Event`; apps higher up listen (notifications
turns events into rows for the people concerned). The emitter never knows who listens, so
this lowest layer imports nothing above it.

Listeners run in the emitter's transaction, so what they write commits or rolls back with
the cause. Each runs in its own savepoint: a listener that fails is logged and rolled back
alone, and the cause it heard about still commits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    kind: str
    # Names the cause: the same cause said twice (two deliveries racing to bring a stale
    # feed back, a retried job) is one event to its listeners.
    key: str
    at: datetime
    initiative_id: int | None = None
    actor_id: int | None = None
    data: dict = field(default_factory=dict)


Listener = Callable[[list[Event]], object]
_listeners: list[Listener] = []


def listen(listener: Listener) -> Listener:
    """Hear every batch of events emitted from now on (registered once, at app start)."""
    if listener not in _listeners:
        _listeners.append(listener)
    return listener


def emit(*events: Event) -> None:
    """Hand the events to every listener, in the caller's transaction."""
    batch = [e for e in events if e is not None]
    if not batch:
        return
    for listener in list(_listeners):
        try:
            with transaction.atomic():
                listener(batch)
        except Exception:
            log.exception(
                "listener %s failed on %d event(s); the cause still commits", listener, len(batch)
            )


@contextmanager
def captured() -> Iterator[list[Event]]:
    """Collect what is emitted while the block runs (for tests)."""
    seen: list[Event] = []
    listen(seen.extend)
    try:
        yield seen
    finally:
        _listeners.remove(seen.extend)
