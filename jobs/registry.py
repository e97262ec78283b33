"""Which periodic jobs exist: each app registers its own, so this app imports none of them.

    jobs.registry.register("mark-stale-feeds", every=300, run=status.mark_stale_feeds)

`every=0` runs the job on every tick (one worker at a time).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Periodic:
    name: str
    every: int  # seconds between the end of one run and the next
    run: Callable[[], object]


_jobs: dict[str, Periodic] = {}


def register(name: str, *, every: int, run: Callable[[], object]) -> None:
    if name in _jobs and _jobs[name].run is not run:
        raise ValueError(f"A different periodic job is already registered as {name!r}.")
    _jobs[name] = Periodic(name=name, every=every, run=run)


def registered() -> dict[str, Periodic]:
    return dict(_jobs)


@contextmanager
def override(*jobs: Periodic) -> Iterator[None]:
    """Only these jobs while the block runs (for tests)."""
    saved = dict(_jobs)
    _jobs.clear()
    _jobs.update({job.name: job for job in jobs})
    try:
        yield
    finally:
        _jobs.clear()
        _jobs.update(saved)
