"""The time services act at: the real time, unless a caller says when (`now=`).

Pages never pass `now=`, so whatever people do is stamped with the real time. The demo
builds its history by calling the same services at past moments, and tests pin a moment,
through `accepts_now`. Everything a service reads the time for (decision and event times,
criteria such as "the window has elapsed", freshness) uses `clock.now()`, so the whole
decision sees one moment.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from functools import wraps

from django.utils import timezone

_moment: ContextVar[datetime | None] = ContextVar("gantry_clock", default=None)


def now() -> datetime:
    return _moment.get() or timezone.now()


@contextmanager
def at(moment: datetime | None) -> Iterator[None]:
    """Inside the block `now()` is `moment`; with None, whatever it already was."""
    if moment is None:
        yield
        return
    if timezone.is_naive(moment):
        raise ValueError("The clock takes aware datetimes only.")
    token = _moment.set(moment)
    try:
        yield
    finally:
        _moment.reset(token)


def accepts_now(service: Callable) -> Callable:
    """Give a service a keyword `now=`: the moment it acts at (default: the real time)."""

    @wraps(service)
    def run(*args, now: datetime | None = None, **kwargs):
        with at(now):
            return service(*args, **kwargs)

    return run
