"""PostgreSQL restarted under deliveries: clients are told to retry, and nothing is lost.

The cluster is the test's own (initdb on a free port), so stopping it disturbs nothing else.
While it is down the API cannot store anything; it must say so in a way a feed client can
act on (503, JSON, Retry-After) and the client's re-sent batches must count as duplicates
where the first attempt did commit. Once it is back, the snapshots catch up within a minute.
"""

import json
import time

from tests.faults.stack import Attempt, Disagreement, HeldRows, recompute_in_flight, wait_for

OUTAGE_SECONDS = 6


def _told_to_retry(attempt: Attempt) -> bool:
    """A 503 with a JSON problem document and a Retry-After header."""
    try:
        json.loads(attempt.body)
    except ValueError:
        return False
    return (
        attempt.status == 503
        and attempt.content_type.startswith("application/problem+json")
        and attempt.retry_after is not None
    )


def _answers(attempts: list[Attempt]) -> str:
    seen = {}
    for a in attempts:
        seen.setdefault((a.status, a.content_type, a.retry_after), a.body[:120])
    return "; ".join(
        f"{status or 'no answer'} {kind or '-'} Retry-After={after} {body!r}"
        for (status, kind, after), body in seen.items()
    )


def test_postgres_restart_while_delivering_loses_nothing(
    cluster, cluster_stack, deadline, figures, converged
):
    stack = cluster_stack
    deliverer = stack.deliver()
    deliverer.wait_accepted(200)
    # Stopped while a worker is in the middle of a recompute it has claimed: the worst
    # moment, which deliveries at any steady rate meet sooner or later.
    with HeldRows(stack.database_url, stack.fixture.metrics) as held:
        wait_for(
            lambda: recompute_in_flight(stack, held),
            timeout=20,
            what="a pool process to claim the metrics and block in its recompute",
        )
        down = time.monotonic()
        cluster.stop("fast")
    time.sleep(OUTAGE_SECONDS)
    cluster.start()
    back = time.monotonic()
    time.sleep(3)  # deliveries go on after the fault
    delivered = deliverer.stop()
    refused = [a for a in delivered.between(down, back) if a.status != 201]
    figures(
        f"PostgreSQL stopped mid-recompute, down {back - down:.1f} s; {len(refused)} "
        f"deliveries refused meanwhile, answered: {_answers(refused)}; "
        f"{delivered.duplicates} duplicates on re-sends"
    )

    problems = []
    if not refused:
        problems.append("no delivery was refused while PostgreSQL was down")
    elif not all(_told_to_retry(a) for a in refused):
        problems.append(
            f"while PostgreSQL was down the API answered {_answers(refused)}; "
            "expected 503 with a JSON body and a Retry-After header"
        )
    try:
        converged(stack, delivered.accepted, since=back)
    except Disagreement as exc:
        problems.append(str(exc))

    assert not problems, "\n".join(problems)
    assert stack.worker.alive and stack.beat.alive and stack.web.alive
    assert delivered.created == len(delivered.accepted)
