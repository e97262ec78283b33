"""Killed workers delay recomputes and never lose them.

A pool process killed in the middle of a recompute, and a whole worker killed while it holds
messages, must leave every metric's snapshot agreeing with the observations table within a
minute of the fault, while a feed keeps delivering throughout.
"""

import os
import signal
import time

import pytest

from metrics import recompute_queue
from tests.faults import stack as harness
from tests.faults.stack import HeldRows, claimed, gone, recompute_in_flight, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_pool_process_killed_while_recomputing_loses_nothing(stack, deadline, figures, converged):
    deliverer = stack.deliver()
    deliverer.wait_accepted(200)
    with HeldRows(stack.database_url, stack.fixture.metrics) as held:
        victim = wait_for(
            lambda: recompute_in_flight(stack, held),
            timeout=20,
            what="a pool process to claim the metrics and block in its recompute",
        )
        os.kill(victim, signal.SIGKILL)
        fault_end = time.monotonic()
        wait_for(lambda: gone(victim), timeout=5, what="the kill")
    wait_for(
        lambda: victim not in stack.worker.pool_pids() and len(stack.worker.pool_pids()) == 2,
        timeout=20,
        what="the worker to replace its killed pool process",
    )
    time.sleep(3)  # deliveries go on after the fault
    delivered = deliverer.stop()
    figures(
        f"pool process {victim} killed holding its claim mid-recompute; "
        f"{len(delivered.accepted)} observations accepted, "
        f"{len(delivered.failures())} failed attempts"
    )

    converged(stack, delivered.accepted, since=fault_end)

    assert stack.worker.alive, "the worker's main process died with its pool process"
    assert delivered.created == len(delivered.accepted)
    assert not delivered.failures(), delivered.failures()[:3]


def test_whole_worker_killed_then_replaced_loses_nothing(stack, deadline, figures, converged):
    deliverer = stack.deliver()
    deliverer.wait_accepted(200)
    # Killed while it holds a message it has not acknowledged (a recompute waiting for its
    # debounce) and is between two recomputes: the lost message is the fault here. A kill
    # in the middle of a recompute is the pool process test's.
    pool = stack.worker.pool_pids()
    held_messages = wait_for(
        lambda: not claimed(stack.database_url, stack.fixture.metrics) and stack.redis.unacked(),
        timeout=20,
        interval=0.02,
        what="the worker to hold an unacknowledged message",
    )
    stack.worker.kill()
    wait_for(lambda: all(gone(pid) for pid in pool), timeout=5, what="the pool to die")
    time.sleep(3)  # deliveries arrive with no worker at all
    stack.worker.start()
    fault_end = time.monotonic()
    time.sleep(2)
    delivered = deliverer.stop()
    figures(
        f"worker and pool {pool} killed holding {held_messages} unacknowledged message(s), "
        f"new worker after 3 s; {len(delivered.accepted)} observations accepted, "
        f"{len(delivered.failures())} failed attempts"
    )

    converged(stack, delivered.accepted, since=fault_end)

    assert delivered.created == len(delivered.accepted)
    assert not delivered.failures(), delivered.failures()[:3]


@pytest.mark.django_db(transaction=False)
def test_the_harness_reads_claims_as_the_queue_takes_them():
    assert harness.LOCK_SPACE == recompute_queue.LOCK_SPACE
