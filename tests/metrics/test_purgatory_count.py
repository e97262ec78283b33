"""pages.purgatory.sync_flags counts only the flags it raised itself.

When a concurrent run raised the same flags first, the database keeps the first run's rows
(one active flag per initiative and kind) and the second run must report none raised, not
the rows it tried to insert.
"""

import threading
import time
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection, transaction
from django.utils import timezone

from pages import purgatory
from portfolio.models import FlagKind, Initiative, PurgatoryFlag
from tests.factories import InitiativeFactory


def _stuck_initiatives(count: int) -> list[Initiative]:
    """Initiatives 40 days in frame: each gets exactly one flag (stuck; the limit is 30)."""
    initiatives = [InitiativeFactory() for _ in range(count)]
    Initiative.objects.filter(pk__in=[i.pk for i in initiatives]).update(
        stage_entered_at=timezone.now() - timedelta(days=40)
    )
    return initiatives


@pytest.mark.django_db
def test_a_run_that_did_not_see_flags_raised_meanwhile_counts_none_of_them():
    """As if another run committed the flags between this run's read and its insert."""
    _stuck_initiatives(3)
    assert purgatory.sync_flags()["raised"] == 3

    with mock.patch.object(
        PurgatoryFlag.objects, "select_for_update", return_value=PurgatoryFlag.objects.none()
    ):
        again = purgatory.sync_flags()

    assert again == {"raised": 0, "updated": 0, "cleared": 0}
    assert PurgatoryFlag.objects.filter(cleared_at__isnull=True, kind=FlagKind.STUCK).count() == 3


@pytest.mark.django_db
def test_a_run_counts_the_flags_it_inserted_among_ones_already_held():
    first = _stuck_initiatives(2)
    purgatory.sync_flags()
    _stuck_initiatives(3)
    with mock.patch.object(
        PurgatoryFlag.objects, "select_for_update", return_value=PurgatoryFlag.objects.none()
    ):
        assert purgatory.sync_flags()["raised"] == 3
    assert PurgatoryFlag.objects.count() == 5
    assert PurgatoryFlag.objects.filter(initiative__in=first).count() == 2


@pytest.mark.django_db(transaction=True)
def test_when_a_concurrent_run_raises_the_flags_first_the_second_reports_none_raised(
    require_postgres,
):
    _stuck_initiatives(3)
    inserted, release = threading.Event(), threading.Event()
    results: dict = {}

    def first_run() -> None:
        try:
            with transaction.atomic():
                results["first"] = purgatory.sync_flags()
                inserted.set()
                release.wait(20)  # its flags are written, not yet committed
        except Exception as exc:
            results["first"] = exc
            inserted.set()
        finally:
            connection.close()

    def second_run() -> None:
        try:
            results["second"] = purgatory.sync_flags()
        except Exception as exc:
            results["second"] = exc
        finally:
            connection.close()

    first = threading.Thread(target=first_run)
    first.start()
    assert inserted.wait(20)
    second = threading.Thread(target=second_run)
    second.start()
    # The second run saw no active flag and now waits on the first run's uncommitted rows.
    waited = _lock_wait_seen()
    release.set()
    first.join(20)
    second.join(20)

    assert waited, "the second run never waited for the first"
    assert results["first"] == {"raised": 3, "updated": 0, "cleared": 0}
    assert results["second"] == {"raised": 0, "updated": 0, "cleared": 0}
    assert PurgatoryFlag.objects.filter(cleared_at__isnull=True).count() == 3


def _lock_wait_seen(timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"
            )
            if cursor.fetchone()[0]:
                return True
        time.sleep(0.05)
    return False
