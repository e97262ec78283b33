"""Redis stopped, restarted empty, or hung: deliveries go on, recomputes catch up.

Redis runs without persistence (as in docker-compose), so a restart loses every queued and
unacknowledged message; the recompute marks in PostgreSQL are what the work survives in.
A worker that held a message when the broker went away must stay up and keep consuming, and
a hung Redis (SIGSTOP) must not hold up a delivery: the request stores the data and returns.
"""

import re
import statistics
import time

import pytest

from tests.faults.stack import hold_message, publish, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

# What a delivery may wait on a hung Redis, on top of what it takes when Redis answers.
HANG_ALLOWANCE = 0.1
NOTEWORTHY = re.compile(
    r"Error|error|Traceback|Cannot connect|Connected to|lost|Restoring|Warm|could not|CRITICAL"
)


def _noteworthy(text: str, limit: int = 25) -> str:
    lines = [line for line in text.splitlines() if NOTEWORTHY.search(line)]
    return "\n".join(lines[-limit:])


def _within(condition, *, seconds: float) -> bool:
    try:
        wait_for(condition, timeout=seconds, what="", interval=0.25)
    except TimeoutError:
        return False
    return True


def test_redis_restart_while_delivering_loses_nothing(stack, deadline, figures, converged):
    deliverer = stack.deliver()
    deliverer.wait_accepted(200)
    # Stopped while the worker holds a message unacknowledged, as it nearly always holds a
    # debounced recompute while a feed delivers (the debounce is 10 s in production).
    hold_message(stack)
    held = stack.redis.unacked()
    down = time.monotonic()
    stack.redis.stop()
    time.sleep(10)
    stack.redis.start()
    back = time.monotonic()
    time.sleep(3)  # deliveries go on after the fault
    delivered = deliverer.stop()
    during = delivered.between(down, back)
    figures(
        f"Redis down {back - down:.1f} s with {held} message(s) held by the worker; "
        f"{len(during)} deliveries while down, {sum(a.status != 201 for a in during)} "
        f"refused; worker alive: {stack.worker.alive}, beat alive: {stack.beat.alive}"
    )
    assert stack.worker.alive, "the worker died:\n" + _noteworthy(stack.worker.log_text())
    assert stack.beat.alive, "beat died:\n" + _noteworthy(stack.beat.log_text())

    converged(stack, delivered.accepted, since=back)

    refused = [a for a in during if a.status != 201]
    assert during and not refused, refused[:3]
    assert delivered.created == len(delivered.accepted)


def test_worker_holding_an_unacknowledged_message_survives_a_broker_restart(
    stack, deadline, figures
):
    """The worker holds a task until its ETA, unacknowledged, when Redis restarts empty."""
    hold_message(stack)
    before = len(stack.worker.log_text())
    stack.redis.stop()
    time.sleep(5)
    stack.redis.start()
    back = time.monotonic()

    probe = publish(stack.redis.url(), "celery.accumulate", [2])
    consumed = (
        _within(
            lambda: f"[{probe}] succeeded" in stack.worker.log_text() or not stack.worker.alive,
            seconds=40,
        )
        and stack.worker.alive
    )
    waited = time.monotonic() - back
    time.sleep(2)  # a crash on reconnecting shows by now
    after = stack.worker.log_text()[before:]

    figures(
        f"broker restarted under a held message; worker alive: {stack.worker.alive}; probe "
        f"task consumed: {consumed} (waited {waited:.1f} s after Redis was back); "
        f"worker log:\n{_noteworthy(after)}"
    )
    assert stack.worker.alive, "the worker died after the broker restart:\n" + _noteworthy(after)
    assert consumed, "the worker stopped consuming after the broker restart:\n" + _noteworthy(after)
    assert "Unrecoverable error" not in after, _noteworthy(after)


def test_redis_hang_does_not_hold_up_deliveries(stack, deadline, figures, converged):
    deliverer = stack.deliver(rate=8.0)
    deliverer.wait_accepted(200)
    time.sleep(5)  # latencies with Redis answering, for comparison
    hung = time.monotonic()
    stack.redis.pause()
    time.sleep(5)
    stack.redis.resume()
    back = time.monotonic()
    time.sleep(3)
    delivered = deliverer.stop()
    normal = [a.seconds for a in delivered.between(hung - 5, hung)]
    during = delivered.between(hung, back)
    latencies = [a.seconds for a in during]
    figures(
        f"Redis hung {back - hung:.1f} s; latency before the hang: median "
        f"{statistics.median(normal) * 1000:.0f} ms, max {max(normal) * 1000:.0f} ms; during "
        f"the hang ({len(during)} requests, statuses {sorted({a.status for a in during})}): "
        + ", ".join(f"{s * 1000:.0f}" for s in latencies)
        + " ms"
    )

    converged(stack, delivered.accepted, since=back)

    assert during, "no delivery was attempted while Redis hung"
    assert all(a.status == 201 for a in during), [a for a in during if a.status != 201][:3]
    assert max(latencies) <= max(normal) + HANG_ALLOWANCE, (
        f"a delivery waited {max(latencies):.2f} s while Redis hung; the slowest with Redis "
        f"answering took {max(normal):.2f} s"
    )
    assert stack.worker.alive and stack.beat.alive
    assert delivered.created == len(delivered.accepted)
