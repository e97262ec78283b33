"""Sending a task without making the caller wait on the broker.

Work that must not be lost is recorded in the database first (a recompute mark, a due job);
a task only says "look now". Publishing from a background thread keeps a slow, hung or
absent Redis out of the request that stored the data: the thread waits for the broker, the
request does not. A task that cannot be sent is dropped with a warning, and the next tick
does the work instead.
"""

from __future__ import annotations

import logging
import os
import queue
import threading

log = logging.getLogger(__name__)

# Tasks waiting in one process while the broker is slow; beyond this they are dropped
# (their work is already recorded in the database).
MAX_PENDING = 1000

_lock = threading.Lock()
_pending: queue.Queue | None = None
_owner_pid: int | None = None


def send(task, *, args: list | tuple = (), countdown: float = 0) -> None:
    """Queue `task` for publishing. Eager mode (no broker) runs it here and now."""
    if task.app.conf.task_always_eager:
        _apply(task, list(args), countdown)
        return
    try:
        _queue().put_nowait((task, list(args), countdown))
    except queue.Full:
        log.warning("%s tasks wait for the broker; dropped %s (the tick will do it)",
                    MAX_PENDING, task.name)  # fmt: skip


def flush(timeout: float = 5.0) -> bool:
    """Wait until every queued task was handed to the broker (or given up). For tests and
    for shutting down cleanly; returns False if the time ran out."""
    pending = _pending
    if pending is None:
        return True
    done = threading.Event()

    def wait() -> None:
        pending.join()
        done.set()

    threading.Thread(target=wait, daemon=True).start()
    return done.wait(timeout)


def _queue() -> queue.Queue:
    """This process's queue and its publishing thread; a forked child starts its own."""
    global _pending, _owner_pid
    with _lock:
        if _pending is None or _owner_pid != os.getpid():
            _pending, _owner_pid = queue.Queue(MAX_PENDING), os.getpid()
            threading.Thread(
                target=_publish_forever, args=(_pending,), name="gantry-publish", daemon=True
            ).start()
        return _pending


def _publish_forever(pending: queue.Queue) -> None:
    while True:
        task, args, countdown = pending.get()
        try:
            _apply(task, args, countdown)
        finally:
            pending.task_done()


def _apply(task, args: list, countdown: float) -> None:
    try:
        task.apply_async(args=args, countdown=countdown)
    except Exception as exc:  # the broker is away: the work waits in the database
        log.warning("could not queue %s%s (%s); the tick will do it", task.name, args, exc)
