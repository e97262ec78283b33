"""A real Celery worker on a Redis of its own delivers notification email to a real SMTP
server; a worker killed in the middle of sending loses no notification and sends none twice.

The cause is recorded in a process of its own (tests.notifications.realparts), as the web
process records it: the rows commit with the decision and the nudge goes to this test's
Redis. The worker and beat use the test database, so the tests commit what they create.
Without redis-server or PostgreSQL they skip on a laptop and fail in CI
(GANTRY_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter

import pytest
from django.db import connection

from notifications.models import EmailState, Notification
from portfolio.roles import Role
from tests.conftest import skip_or_fail
from tests.factories import InitiativeFactory, UserFactory
from tests.faults.stack import (
    ROOT,
    Beat,
    RedisServer,
    Service,
    Unavailable,
    Worker,
    gone,
    stack_env,
    wait_for,
)
from tests.notifications.realparts import MailServer, message_id_of

pytestmark = pytest.mark.django_db(transaction=True)

REQUIRE = "GANTRY_REQUIRE_SERVICES"
# The bound of every wait: starting a process, a delivery, a tick.
WAIT = 60


class Processes:
    """This test's Redis, and the workers and beat it starts on the test database, sending
    mail to `mail_port`."""

    def __init__(self, logdir, database_url: str, mail_port: int) -> None:
        self.logdir = logdir
        self.database_url = database_url
        self.services: list[Service] = []
        self.redis = self._own(RedisServer(logdir))
        self.redis.start(timeout=WAIT)
        self.env = stack_env(database_url, self.redis, fast=True)
        self.env.update(
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=str(mail_port),
            EMAIL_USE_TLS="0",
            EMAIL_TIMEOUT="30",
        )

    def _own(self, service: Service) -> Service:
        self.services.append(service)
        return service

    def worker(self) -> Worker:
        return self._own(Worker(self.logdir, self.env)).start(timeout=WAIT)

    def beat(self) -> Beat:
        return self._own(Beat(self.logdir, self.env)).start(timeout=WAIT)

    def decide(self, initiative, user) -> dict:
        """Approve the initiative's frame gate in a process of its own; {"decision",
        "notifications"}."""
        result = subprocess.run(
            [sys.executable, "-m", "tests.notifications.realparts", "decide",
             "--initiative", str(initiative.pk), "--user", str(user.pk)],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=WAIT, check=False,
        )  # fmt: skip
        assert result.returncode == 0, f"the decision failed:\n{result.stdout}\n{result.stderr}"
        return json.loads(result.stdout.strip().splitlines()[-1])

    def logs(self) -> str:
        return "\n".join(service.tail(60) for service in self.services)

    def close(self) -> None:
        for service in reversed(self.services):
            service.close()


@pytest.fixture
def database_url(transactional_db) -> str:
    """The test database's URL, for the worker and beat (committed data only)."""
    if connection.vendor != "postgresql":
        skip_or_fail("needs PostgreSQL: set DATABASE_URL=postgres://...", variable=REQUIRE)
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def mail_server():
    with MailServer() as server:
        yield server


@pytest.fixture
def processes(tmp_path, database_url, mail_server):
    try:
        running = Processes(tmp_path / "logs", database_url, mail_server.port)
    except Unavailable as exc:
        skip_or_fail(f"the worker tests need {exc}", variable=REQUIRE)
    yield running
    running.close()


@pytest.fixture
def decision_for_four():
    """An initiative with four people named on it, and the programme manager who decides:
    approving its frame notifies the four, each by email."""
    manager = UserFactory(username="pm", role=Role.PROGRAMME_MANAGER)
    initiative = InitiativeFactory(
        title="Invoice matching",
        framed=True,
        sponsor=UserFactory(username="sponsor", role=Role.EXECUTIVE),
        operational_owner=UserFactory(username="ops", role=Role.OWNER),
    )
    return initiative, manager


def delivered_once(mail_server: MailServer, ids: list[int]) -> bool:
    counts = mail_server.message_ids()
    return all(counts[message_id_of(pk)] >= 1 for pk in ids)


def wait(condition, *, what: str, processes: Processes):
    try:
        return wait_for(condition, timeout=WAIT, what=what)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{processes.logs()}") from None


def test_a_committed_decision_is_emailed_by_the_worker_its_nudge_wakes(
    processes, mail_server, decision_for_four
):
    initiative, manager = decision_for_four
    worker = processes.worker()  # no beat: only the decision's nudge can start delivery

    result = processes.decide(initiative, manager)

    ids = result["notifications"]
    assert len(ids) == 4
    wait(lambda: delivered_once(mail_server, ids), what="the four emails", processes=processes)
    wait(
        lambda: not Notification.objects.filter(pk__in=ids, email=EmailState.PENDING).exists(),
        what="the rows to be marked sent",
        processes=processes,
    )
    counts = mail_server.message_ids()
    assert {message_id_of(pk): counts[message_id_of(pk)] for pk in ids} == {
        message_id_of(pk): 1 for pk in ids
    }
    notes = Notification.objects.filter(pk__in=ids).select_related("recipient")
    assert {(n.email, n.email_attempts) for n in notes} == {(EmailState.SENT, 1)}
    sent_to = Counter(r for received in mail_server.messages() for r in received.rcpt_tos)
    assert {n.recipient.email for n in notes} <= set(sent_to)
    assert re.search(r"Task notifications\.tasks\.deliver\[\S+\] succeeded", worker.log_text())


def test_a_worker_killed_while_sending_loses_no_notification_and_sends_none_twice(
    processes, mail_server, decision_for_four
):
    initiative, manager = decision_for_four
    # Recorded while no worker runs: the rows wait in the database, the nudge in Redis.
    ids = processes.decide(initiative, manager)["notifications"]
    assert Notification.objects.filter(pk__in=ids, email=EmailState.PENDING).count() == 4

    # The first worker takes the nudge, claims a row and sends its message; the server
    # holds the message unanswered, and the worker is killed while it waits.
    mail_server.hold_next()
    first = processes.worker()
    pool = first.pool_pids()
    wait(mail_server.holding.is_set, what="the worker to be sending", processes=processes)
    first.kill()
    wait(lambda: all(gone(pid) for pid in pool), what="the pool to die", processes=processes)
    mail_server.release()
    killed_id = mail_server.held[0].message_id
    assert killed_id in {message_id_of(pk) for pk in ids}
    assert not mail_server.messages()
    # Its claim died with its database connection: every row is still to send.
    wait(
        lambda: (
            Notification.objects.filter(
                pk__in=ids, email=EmailState.PENDING, email_attempts=0
            ).count()
            == 4
        ),
        what="the killed worker's claim to roll back",
        processes=processes,
    )

    # The nudge was acknowledged when the killed worker took it: the tick's sweep is what
    # finds the rows now.
    processes.worker()
    beat = processes.beat()
    wait(lambda: delivered_once(mail_server, ids), what="the four emails", processes=processes)
    wait(
        lambda: not Notification.objects.filter(pk__in=ids, email=EmailState.PENDING).exists(),
        what="the rows to be marked sent",
        processes=processes,
    )
    # Two more ticks, so a second copy would have had its chance to go out.
    ticks = beat.log_text().count("Sending due task")
    wait(
        lambda: beat.log_text().count("Sending due task") >= ticks + 2,
        what="two more ticks",
        processes=processes,
    )

    counts = mail_server.message_ids()
    assert {message_id_of(pk): counts[message_id_of(pk)] for pk in ids} == {
        message_id_of(pk): 1 for pk in ids
    }
    notes = Notification.objects.filter(pk__in=ids)
    assert {(n.email, n.email_attempts, n.email_error) for n in notes} == {(EmailState.SENT, 1, "")}
