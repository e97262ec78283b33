"""The audit trail: one hash chain per initiative, exportable, and proven tamper-evident."""

import csv
import io
import itertools
import json
import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from gates import audit
from gates.models import AuditEntry, GateDecision, ImmutableError
from gates.stages import Stage
from portfolio.models import Initiative, User
from portfolio.roles import Role
from tests.factories import InitiativeFactory, UserFactory
from tests.helpers import advance


@pytest.fixture
def history(db, manager):
    """An initiative walked to narrow launch: three decisions, sealed as they were taken (and
    no budget line, whose rows would be sealed in the same chain)."""
    initiative = InitiativeFactory(framed=True, title="Claims triage")
    advance(initiative, Stage.NARROW_LAUNCH, user=manager, upkeep=False)
    return initiative


def _sql(statement: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def test_every_decision_is_sealed_in_order_with_chained_hashes(history):
    entries = list(history.audit_entries.order_by("seq"))
    assert [e.seq for e in entries] == [1, 2, 3]
    assert entries[0].prev_hash == audit.GENESIS
    for before, after in itertools.pairwise(entries):
        assert after.prev_hash == before.hash
    assert all(len(e.hash) == 64 for e in entries)
    assert {e.source for e in entries} == {"gates.gatedecision"}
    assert audit.verify([history.pk]) == (3, [])


def test_verify_audit_reports_an_intact_trail(history, capsys):
    call_command("verify_audit")
    assert "3 audit entries verified" in capsys.readouterr().out


def test_a_decision_altered_in_the_database_is_found(history):
    decision = history.decisions.order_by("decided_at").first()
    _sql("UPDATE gates_gatedecision SET rationale = %s WHERE id = %s", ["Forged.", decision.pk])
    _, breaks = audit.verify()
    assert len(breaks) == 1
    assert breaks[0].initiative_id == history.pk
    assert breaks[0].seq == 1
    assert "changed after sealing" in breaks[0].problem
    with pytest.raises(CommandError, match="1 broken chain"):
        call_command("verify_audit")


def test_an_audit_entry_altered_in_the_database_is_found(history):
    entry = history.audit_entries.get(seq=3)
    _sql("UPDATE gates_auditentry SET summary = %s WHERE id = %s", ["Nothing happened.", entry.pk])
    breaks = audit.verify()[1]
    assert [(b.seq, "does not match its hash" in b.problem) for b in breaks] == [(3, True)]


def test_an_entry_rehashed_after_alteration_breaks_the_next_link(history):
    entry = history.audit_entries.get(seq=2)
    entry.summary = "Nothing happened."
    forged = audit.entry_hash(entry)
    _sql(
        "UPDATE gates_auditentry SET summary = %s, hash = %s WHERE id = %s",
        [entry.summary, forged, entry.pk],
    )
    breaks = audit.verify()[1]
    assert breaks[0].seq == 3
    assert "link to the previous entry" in breaks[0].problem


def test_a_deleted_entry_is_found(history):
    _sql("DELETE FROM gates_auditentry WHERE initiative_id = %s AND seq = 2", [history.pk])
    breaks = audit.verify()[1]
    assert breaks[0].seq == 3
    assert "missing" in breaks[0].problem


def test_a_decision_inserted_behind_the_applications_back_is_found(history, manager):
    _sql(
        "INSERT INTO gates_gatedecision (initiative_id, transition, from_stage, to_stage, "
        "decided_by_id, decided_at, rationale, stop_reason, evidence) "
        "VALUES (%s, 'widen', 'narrow_launch', 'wide_launch', %s, %s, 'Sneaky.', '', '{}')",
        [history.pk, manager.pk, timezone.now()],
    )
    breaks = audit.verify()[1]
    assert "never sealed" in breaks[0].problem


def test_breaks_are_reported_per_initiative_and_others_stay_intact(history, manager):
    other = InitiativeFactory(framed=True)
    advance(other, Stage.THIN_SLICE, user=manager)
    _sql(
        "UPDATE gates_auditentry SET at = %s WHERE initiative_id = %s AND seq = 1",
        [timezone.now(), other.pk],
    )
    breaks = audit.verify()[1]
    assert [b.initiative_id for b in breaks] == [other.pk]
    assert audit.verify([history.pk])[1] == []


def test_audit_entries_cannot_be_changed_or_deleted_through_the_application(history):
    entry = history.audit_entries.first()
    entry.summary = "x"
    with pytest.raises(ImmutableError):
        entry.save()
    with pytest.raises(ImmutableError):
        entry.delete()
    with pytest.raises(ImmutableError):
        AuditEntry.objects.filter(pk=entry.pk).update(summary="x")
    with pytest.raises(ImmutableError):
        AuditEntry.objects.all().delete()


def test_seal_audit_history_seals_rows_written_before_the_chain(db, manager, capsys):
    initiative = InitiativeFactory(framed=True)
    GateDecision.objects.create(
        initiative=initiative,
        transition="approve_frame",
        from_stage="frame",
        to_stage="thin_slice",
        decided_by=manager,
        decided_at=initiative.created_at,
        rationale="Decided on paper in 2024.",
    )
    assert "never sealed" in audit.verify()[1][0].problem
    call_command("seal_audit_history")
    assert "1 earlier record(s) sealed" in capsys.readouterr().out
    assert audit.verify() == (1, [])
    call_command("seal_audit_history")  # twice is harmless
    assert AuditEntry.objects.count() == 1


# Export ------------------------------------------------------------------------------------
def test_the_trail_exports_as_json_with_its_hashes(client, history, viewer):
    client.force_login(viewer)  # everyone who may view an initiative may read its trail
    response = client.get(f"/initiatives/{history.slug}/audit.json")
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    body = json.loads(response.content)
    assert body["chain_intact"] is True
    assert body["initiative"]["slug"] == history.slug
    assert [e["seq"] for e in body["entries"]] == [1, 2, 3]
    first = body["entries"][0]
    assert first["kind"] == "decision"
    assert first["payload"]["transition"] == "approve_frame"
    assert body["entries"][1]["prev_hash"] == first["hash"]


def test_the_json_export_says_where_the_chain_is_broken(client, history, viewer):
    _sql("UPDATE gates_gatedecision SET rationale = 'x' WHERE initiative_id = %s", [history.pk])
    client.force_login(viewer)
    body = json.loads(client.get(f"/initiatives/{history.slug}/audit.json").content)
    assert body["chain_intact"] is False
    assert "entry 1" in body["break"]


def test_the_csv_export_is_safe_in_a_spreadsheet(client, history, manager):
    advance(history, Stage.STOPPED, user=manager)
    _sql(
        "UPDATE gates_auditentry SET summary = %s WHERE initiative_id = %s AND seq = 4",
        ['=HYPERLINK("http://evil")', history.pk],
    )
    client.force_login(manager)
    response = client.get(f"/initiatives/{history.slug}/audit.csv")
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:4] == ["seq", "at", "kind", "actor"]
    assert len(rows) == 5
    assert rows[4][4].startswith("'=")


def test_export_needs_login_and_a_known_format(client, history, viewer):
    assert client.get(f"/initiatives/{history.slug}/audit.json").status_code == 302
    client.force_login(viewer)
    assert client.get(f"/initiatives/{history.slug}/audit.xml").status_code == 404


def test_the_initiative_page_shows_one_history_with_export_links(client, history, viewer):
    client.force_login(viewer)
    body = client.get(history.get_absolute_url()).content.decode()
    assert f"/initiatives/{history.slug}/audit.json" in body
    assert "Pass readiness review (Readiness review → Narrow launch)" in body


# Concurrency: appends to one chain are serialised -------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_to_one_chain_leave_no_gap_and_no_fork(require_postgres):
    initiative = InitiativeFactory(framed=True)
    user = UserFactory(username="pm-chain", role=Role.PROGRAMME_MANAGER)
    barrier = threading.Barrier(4, timeout=20)
    errors = []

    def append(n: int) -> None:
        try:
            me = User.objects.get(pk=user.pk)
            Initiative.objects.get(pk=initiative.pk)
            barrier.wait()
            for i in range(5):
                audit.record(
                    initiative_id=initiative.pk,
                    kind="note",
                    actor=me,
                    at=initiative.created_at,
                    summary=f"thread {n} entry {i}",
                    payload={"n": n, "i": i},
                )
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=append, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    seqs = list(AuditEntry.objects.filter(initiative=initiative).values_list("seq", flat=True))
    assert sorted(seqs) == list(range(1, 21))
    assert audit.verify([initiative.pk]) == (20, [])


def test_a_decision_dated_in_another_timezone_verifies(db, manager):
    # The database hands times back in UTC; the seal must not depend on the writer's offset.
    from datetime import timedelta
    from datetime import timezone as dt_timezone

    from gates.services import import_history

    initiative = InitiativeFactory(framed=True)
    paris = dt_timezone(timedelta(hours=2))
    import_history(
        initiative=initiative,
        decisions=[
            {
                "transition": "approve_frame",
                "user": manager,
                "rationale": "Decided in Paris.",
                "decided_at": (timezone.now() - timedelta(days=3)).astimezone(paris),
            }
        ],
    )
    assert audit.verify([initiative.pk]) == (1, [])


def test_verify_audit_prints_each_chain_head_to_keep_elsewhere(history, capsys):
    call_command("verify_audit", "--heads")
    out = capsys.readouterr().out
    last = history.audit_entries.order_by("-seq").first()
    assert f"initiative {history.pk} entry 3 {last.hash}" in out
