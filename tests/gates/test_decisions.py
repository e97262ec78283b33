"""Gate decisions are the audit trail: never changed, never deleted, read-only in the admin."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from gates import services
from gates.models import GateDecision, ImmutableError
from gates.stages import Stage, StopReason
from gates.stages import Transition as T
from portfolio.models import Initiative
from tests.factories import GateDecisionFactory, InitiativeFactory, UserFactory
from tests.helpers import advance

pytestmark = pytest.mark.django_db


@pytest.fixture
def decision(manager):
    initiative = InitiativeFactory(framed=True)
    return services.decide(
        initiative=initiative,
        transition=T.APPROVE_FRAME,
        user=manager,
        rationale="The framing is complete.",
    )


def snapshot(decision_pk):
    return GateDecision.objects.filter(pk=decision_pk).values().get()


# The model and its queryset ----------------------------------------------------------------
def test_saving_an_existing_decision_raises_and_changes_nothing(decision):
    before = snapshot(decision.pk)
    decision.rationale = "Rewritten history."
    decision.to_stage = Stage.WIDE_LAUNCH
    with pytest.raises(ImmutableError):
        decision.save()
    with pytest.raises(ImmutableError):
        decision.save(update_fields=["rationale"])
    assert snapshot(decision.pk) == before


def test_a_freshly_loaded_decision_cannot_be_saved_either(decision):
    loaded = GateDecision.objects.get(pk=decision.pk)
    with pytest.raises(ImmutableError):
        loaded.save()


def test_deleting_a_decision_raises_and_keeps_it(decision):
    with pytest.raises(ImmutableError):
        decision.delete()
    assert GateDecision.objects.filter(pk=decision.pk).exists()


def test_queryset_update_raises_and_changes_nothing(decision):
    before = snapshot(decision.pk)
    with pytest.raises(ImmutableError):
        GateDecision.objects.filter(pk=decision.pk).update(rationale="Rewritten.")
    with pytest.raises(ImmutableError):
        GateDecision.objects.update(to_stage=Stage.STOPPED)
    with pytest.raises(ImmutableError):
        decision.initiative.decisions.update(rationale="Through the relation.")
    assert snapshot(decision.pk) == before


def test_queryset_delete_raises_and_deletes_nothing(decision):
    with pytest.raises(ImmutableError):
        GateDecision.objects.filter(pk=decision.pk).delete()
    with pytest.raises(ImmutableError):
        GateDecision.objects.all().delete()
    with pytest.raises(ImmutableError):
        decision.initiative.decisions.all().delete()
    assert GateDecision.objects.count() == 1


def test_bulk_update_raises_and_changes_nothing(decision):
    before = snapshot(decision.pk)
    decision.rationale = "Bulk rewrite."
    # bulk_update runs in its own atomic block; a savepoint keeps the test's transaction usable.
    with pytest.raises(ImmutableError), transaction.atomic():
        GateDecision.objects.bulk_update([decision], ["rationale"])
    assert snapshot(decision.pk) == before


def test_update_or_create_cannot_change_an_existing_decision(decision):
    before = snapshot(decision.pk)
    with pytest.raises(ImmutableError):
        GateDecision.objects.update_or_create(pk=decision.pk, defaults={"rationale": "Sneaky."})
    assert snapshot(decision.pk) == before


def test_an_initiative_with_decisions_cannot_be_deleted(decision):
    initiative = decision.initiative
    with pytest.raises(IntegrityError), transaction.atomic():
        initiative.delete()
    assert Initiative.objects.filter(pk=initiative.pk).exists()
    assert GateDecision.objects.filter(pk=decision.pk).exists()


def test_the_user_who_decided_cannot_be_deleted(decision):
    with pytest.raises(IntegrityError), transaction.atomic():
        decision.decided_by.delete()
    assert GateDecision.objects.get(pk=decision.pk).decided_by_id == decision.decided_by_id


def test_database_refuses_a_decision_without_rationale(decision):
    with pytest.raises(IntegrityError), transaction.atomic():
        GateDecisionFactory(initiative=decision.initiative, rationale="")


def test_decisions_are_listed_newest_first(manager):
    initiative = InitiativeFactory(framed=True)
    advance(initiative, Stage.NARROW_LAUNCH, user=manager)
    transitions = list(initiative.decisions.values_list("transition", flat=True))
    assert transitions == [T.PASS_REVIEW, T.SUBMIT_FOR_REVIEW, T.APPROVE_FRAME]


def test_decision_reads_well_in_the_admin(decision):
    text = str(decision)
    assert text.startswith("Approve framing — ")
    assert decision.initiative.title in text


# The admin ----------------------------------------------------------------------------------
@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


def test_admin_shows_a_decision_read_only(admin_client, decision):
    response = admin_client.get(f"/admin/gates/gatedecision/{decision.pk}/change/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "The framing is complete." in body
    # No editable input for any field and no save button.
    for field in ("rationale", "transition", "to_stage", "from_stage", "evidence", "decided_by"):
        assert f'name="{field}"' not in body
    assert 'name="_save"' not in body
    assert response.context["has_change_permission"] is False
    assert response.context["has_delete_permission"] is False


def test_admin_refuses_to_change_a_decision(admin_client, decision):
    before = snapshot(decision.pk)
    response = admin_client.post(
        f"/admin/gates/gatedecision/{decision.pk}/change/",
        {"rationale": "Rewritten in the admin.", "to_stage": Stage.WIDE_LAUNCH},
    )
    assert response.status_code == 403
    assert snapshot(decision.pk) == before


def test_admin_refuses_to_add_a_decision(admin_client, decision):
    assert admin_client.get("/admin/gates/gatedecision/add/").status_code == 403
    response = admin_client.post(
        "/admin/gates/gatedecision/add/",
        {
            "initiative": decision.initiative_id,
            "transition": T.STOP,
            "from_stage": Stage.THIN_SLICE,
            "to_stage": Stage.STOPPED,
            "decided_by": decision.decided_by_id,
            "decided_at": "2026-01-01 00:00:00",
            "rationale": "Forged.",
        },
    )
    assert response.status_code == 403
    assert GateDecision.objects.count() == 1


def test_admin_refuses_to_delete_a_decision(admin_client, decision):
    url = f"/admin/gates/gatedecision/{decision.pk}/delete/"
    assert admin_client.get(url).status_code == 403
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    assert GateDecision.objects.filter(pk=decision.pk).exists()


def test_admin_list_offers_no_bulk_delete(admin_client, decision):
    response = admin_client.get("/admin/gates/gatedecision/")
    assert response.status_code == 200
    assert 'value="delete_selected"' not in response.content.decode()
    admin_client.post(
        "/admin/gates/gatedecision/",
        {"action": "delete_selected", "_selected_action": [decision.pk], "post": "yes"},
    )
    assert GateDecision.objects.filter(pk=decision.pk).exists()


def _initiative_admin_data(initiative, **overrides):
    data = {
        "title": initiative.title,
        "slug": initiative.slug,
        "summary": initiative.summary,
        "business_unit": initiative.business_unit_id,
        "sponsor": "",
        "business_owner": "",
        "operational_owner": "",
        "delivery_lead": "",
        "decision_changed": initiative.decision_changed,
        "security_model": "",
        "logging_evidence": "",
        "narrow_audience": "",
        "metrics-TOTAL_FORMS": "0",
        "metrics-INITIAL_FORMS": "0",
        "metrics-MIN_NUM_FORMS": "0",
        "metrics-MAX_NUM_FORMS": "1000",
    }
    data.update(overrides)
    return data


def test_initiative_admin_shows_the_stage_read_only(admin_client, manager):
    initiative = advance(InitiativeFactory(), Stage.THIN_SLICE, user=manager)
    response = admin_client.get(f"/admin/portfolio/initiative/{initiative.pk}/change/")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'name="stage"' not in body
    assert 'name="stop_reason"' not in body
    assert 'name="stage_entered_at' not in body
    assert "Thin slice" in body
    assert "stage" not in response.context["adminform"].form.fields


def test_initiative_admin_is_view_only_so_nothing_changes_without_a_trace(admin_client, manager):
    initiative = advance(InitiativeFactory(), Stage.THIN_SLICE, user=manager)
    entered = initiative.stage_entered_at
    response = admin_client.post(
        f"/admin/portfolio/initiative/{initiative.pk}/change/",
        _initiative_admin_data(
            initiative,
            title="Renamed in the admin",
            stage=Stage.WIDE_LAUNCH,
            stop_reason=StopReason.OTHER,
            stage_entered_at="2020-01-01 00:00:00",
        ),
    )
    assert response.status_code == 403
    initiative.refresh_from_db()
    assert initiative.title != "Renamed in the admin"
    assert initiative.stage == Stage.THIN_SLICE
    assert initiative.stop_reason == ""
    assert initiative.stage_entered_at == entered
    assert initiative.decisions.count() == 1


def test_the_primary_metric_is_view_only_in_the_admin(admin_client):
    initiative = InitiativeFactory(framed=True)
    metric = initiative.primary_metric
    url = f"/admin/metrics/metric/{metric.pk}/change/"
    assert 'name="ship_threshold"' not in admin_client.get(url).content.decode()
    response = admin_client.post(url, {"ship_threshold": "1", "name": metric.name})
    assert response.status_code == 403
    metric.refresh_from_db()
    assert metric.ship_threshold != 1


def test_the_primary_metric_cannot_be_deleted_in_the_admin(admin_client):
    metric = InitiativeFactory(framed=True).primary_metric
    response = admin_client.post(f"/admin/metrics/metric/{metric.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert type(metric).objects.filter(pk=metric.pk).exists()


def test_initiatives_are_not_added_in_the_admin(admin_client):
    # Created on the new-initiative page, where the initial framing is recorded.
    assert admin_client.get("/admin/portfolio/initiative/add/").status_code == 403


# Imported history ---------------------------------------------------------------------------
def test_import_history_records_each_step_and_moves_the_stage(manager):
    initiative = InitiativeFactory(framed=True)
    Initiative.objects.filter(pk=initiative.pk).update(
        stage_entered_at=timezone.now() - timedelta(days=100)
    )
    initiative.refresh_from_db()
    start = timezone.now() - timedelta(days=90)
    services.import_history(
        initiative=initiative,
        decisions=[
            {
                "transition": T.APPROVE_FRAME,
                "user": manager,
                "rationale": "Framed in the old tracker.",
                "decided_at": start,
            },
            {
                "transition": T.STOP,
                "user": manager,
                "rationale": "No data.",
                "decided_at": start + timedelta(days=10),
                "stop_reason": StopReason.DATA_NOT_AVAILABLE,
            },
        ],
    )
    assert initiative.stage == Stage.STOPPED
    assert initiative.stop_reason == StopReason.DATA_NOT_AVAILABLE
    assert initiative.stage_entered_at == start + timedelta(days=10)
    rows = list(initiative.decisions.order_by("decided_at").values_list("from_stage", "to_stage"))
    assert rows == [(Stage.FRAME, Stage.THIN_SLICE), (Stage.THIN_SLICE, Stage.STOPPED)]
    assert all(d.evidence["imported"] for d in initiative.decisions.all())


@pytest.mark.parametrize(
    "bad",
    [
        {"transition": T.WIDEN},
        {"rationale": "  "},
        {"transition": T.STOP, "stop_reason": ""},
        {"decided_at": timezone.now() + timedelta(days=3)},
        {"decided_at": timezone.now() - timedelta(days=60)},
    ],
    ids=[
        "does-not-chain",
        "no-rationale",
        "stop-without-reason",
        "in-the-future",
        "before-the-last",
    ],
)
def test_import_history_rejects_a_bad_step_and_writes_nothing(manager, bad):
    initiative = InitiativeFactory(framed=True)
    Initiative.objects.filter(pk=initiative.pk).update(
        stage_entered_at=timezone.now() - timedelta(days=100)
    )
    initiative.refresh_from_db()
    good = {
        "transition": T.APPROVE_FRAME,
        "user": manager,
        "rationale": "Framed.",
        "decided_at": timezone.now() - timedelta(days=50),
    }
    second = {**good, "transition": T.SUBMIT_FOR_REVIEW, "decided_at": good["decided_at"]}
    second.update(bad)
    with pytest.raises(services.DecisionError):
        services.import_history(initiative=initiative, decisions=[good, second])
    initiative.refresh_from_db()
    assert initiative.stage == Stage.FRAME
    assert not GateDecision.objects.exists()


def test_decision_factory_rows_do_not_move_the_stage():
    row = GateDecisionFactory(decided_by=UserFactory())
    row.initiative.refresh_from_db()
    assert row.initiative.stage == Stage.FRAME
