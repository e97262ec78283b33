"""Framing is versioned: every change recorded, the success definition frozen at gate 1,
owners and sponsor changed only by programme managers, and no viewer ever named owner."""

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from gates import audit
from gates.stages import Stage
from metrics.forms import PrimaryMetricForm
from portfolio import services
from portfolio.forms import InitiativeForm
from portfolio.models import FramingChange
from portfolio.roles import Role
from tests.factories import InitiativeFactory, UserFactory
from tests.helpers import advance

pytestmark = pytest.mark.django_db


@pytest.fixture
def framed(manager):
    owner = UserFactory(username="biz", role=Role.OWNER)
    lead = UserFactory(username="lead", role=Role.OWNER)
    return InitiativeFactory(framed=True, business_owner=owner, delivery_lead=lead)


def _post(client, user, initiative, data):
    client.force_login(user)
    return client.post(f"/initiatives/{initiative.slug}/edit/", data)


def test_each_changed_field_is_recorded_with_who_old_and_new(client, manager, framed, framing_data):
    data = framing_data(
        framed, decision_changed="Which claims go to a senior adjuster.", **{
            "metric-ship_threshold": "88"
        }
    )  # fmt: skip
    response = _post(client, manager, framed, data)
    assert response.status_code == 302
    changes = {c.field: c for c in FramingChange.objects.filter(initiative=framed)}
    assert set(changes) == {"decision_changed", "metric.ship_threshold"}
    threshold = changes["metric.ship_threshold"]
    assert (threshold.old_value, threshold.new_value) == ("85", "88")
    assert threshold.changed_by == manager
    assert changes["decision_changed"].new_value == "Which claims go to a senior adjuster."
    # Each change is sealed in the audit chain, and the chain verifies.
    kinds = list(framed.audit_entries.values_list("kind", flat=True))
    assert kinds.count("framing") == 2
    assert audit.verify([framed.pk])[1] == []


def test_saving_unchanged_framing_records_nothing(client, manager, framed, framing_data):
    _post(client, manager, framed, framing_data(framed))
    assert not FramingChange.objects.filter(initiative=framed).exists()


def test_creating_records_the_initial_framing(client, manager, framing_data):
    client.force_login(manager)
    client.post("/initiatives/new/", framing_data())
    fields = set(FramingChange.objects.values_list("field", flat=True))
    assert {"title", "decision_changed", "metric.ship_threshold", "metric.name"} <= fields


def test_framing_changes_cannot_be_edited_or_deleted(client, manager, framed, framing_data):
    _post(client, manager, framed, framing_data(framed, narrow_audience="Team North"))
    change = FramingChange.objects.get()
    change.new_value = "Everyone"
    with pytest.raises(Exception, match="cannot be changed"):
        change.save()
    with pytest.raises(Exception, match="cannot be deleted"):
        FramingChange.objects.all().delete()


# The success definition is frozen at gate 1 --------------------------------------------------
def test_after_gate_one_an_owner_cannot_move_the_threshold(client, framed, manager, framing_data):
    advance(framed, Stage.NARROW_LAUNCH, user=manager)
    data = framing_data(framed, **{"metric-ship_threshold": "999999", "metric-baseline": "1"})
    response = _post(client, framed.business_owner, framed, data)
    # The disabled fields ignore what was posted; the rest saves.
    assert response.status_code == 302
    metric = framed.metrics.get(is_primary=True)
    assert metric.ship_threshold == Decimal("85")
    assert not FramingChange.objects.filter(field__startswith="metric.").exists()


@pytest.mark.parametrize(
    "field", ["ship_threshold", "baseline", "direction", "aggregation", "comparison_window_days"]
)
def test_the_service_refuses_any_change_to_the_frozen_definition(framed, manager, field):
    advance(framed, Stage.THIN_SLICE, user=manager)
    metric = framed.metrics.get(is_primary=True)
    new = {
        "ship_threshold": "90",
        "baseline": "70",
        "direction": "lower",
        "aggregation": "sum",
        "comparison_window_days": "30",
    }[field]
    data = _metric_data(metric, **{field: new})
    form = InitiativeForm(_initiative_data(framed), instance=framed)
    metric_form = PrimaryMetricForm(data, instance=metric, prefix="metric")  # not frozen: forged
    assert form.is_valid() and metric_form.is_valid(), (form.errors, metric_form.errors)
    with pytest.raises(ValidationError, match="frozen since gate 1"):
        services.save_framing(initiative_form=form, metric_form=metric_form, user=manager)
    metric.refresh_from_db()
    assert services.as_text(getattr(metric, field)) != new
    assert not FramingChange.objects.exists()


def test_in_frame_the_definition_is_still_edited_in_place(client, framed, manager, framing_data):
    response = _post(client, manager, framed, framing_data(framed, **{"metric-ship_threshold": 90}))
    assert response.status_code == 302
    assert framed.metrics.get(is_primary=True).ship_threshold == 90


def test_edit_page_says_the_definition_is_frozen_and_links_to_reframe(client, framed, manager):
    advance(framed, Stage.THIN_SLICE, user=manager)
    client.force_login(manager)
    body = client.get(f"/initiatives/{framed.slug}/edit/").content.decode()
    assert "Frozen since gate 1" in body
    assert f"/initiatives/{framed.slug}/reframe/" in body
    assert 'name="metric-ship_threshold"' in body and "disabled" in body


# People: only programme managers change them, only owning roles may be named ---------------
def test_an_operational_owner_cannot_name_himself_business_owner(
    client, framed, manager, framing_data
):
    ops = UserFactory(username="ops", role=Role.OWNER)
    framed.operational_owner = ops
    framed.save()
    response = _post(client, ops, framed, framing_data(framed, business_owner=ops.pk))
    assert response.status_code == 302  # the people fields are disabled for him: ignored
    framed.refresh_from_db()
    assert framed.business_owner.username == "biz"
    assert not FramingChange.objects.filter(field="business_owner").exists()


def test_the_service_refuses_people_changes_by_an_owner(framed):
    owner = framed.business_owner
    other = UserFactory(role=Role.OWNER)
    form = InitiativeForm(_initiative_data(framed, delivery_lead=other.pk), instance=framed)
    metric_form = PrimaryMetricForm(
        _metric_data(framed.primary_metric), instance=framed.primary_metric, prefix="metric"
    )
    assert form.is_valid() and metric_form.is_valid()
    with pytest.raises(PermissionDenied, match="programme managers change owners"):
        services.save_framing(initiative_form=form, metric_form=metric_form, user=owner)
    framed.refresh_from_db()
    assert framed.delivery_lead.username == "lead"


def test_a_viewer_is_not_offered_as_owner_and_is_refused_if_posted(
    client, framed, manager, viewer, framing_data
):
    client.force_login(manager)
    body = client.get(f"/initiatives/{framed.slug}/edit/").content.decode()
    assert f'<option value="{viewer.pk}"' not in body
    response = _post(client, manager, framed, framing_data(framed, business_owner=viewer.pk))
    assert response.status_code == 400
    framed.refresh_from_db()
    assert framed.business_owner.username == "biz"


def test_the_service_refuses_a_viewer_as_owner(framed, manager, viewer):
    form = InitiativeForm(_initiative_data(framed), instance=framed)
    assert form.is_valid()
    form.cleaned_data["business_owner"] = viewer  # as a forged form would hand it over
    metric_form = PrimaryMetricForm(
        _metric_data(framed.primary_metric), instance=framed.primary_metric, prefix="metric"
    )
    assert metric_form.is_valid()
    with pytest.raises(ValidationError, match="viewer"):
        services.save_framing(initiative_form=form, metric_form=metric_form, user=manager)


def test_past_frame_owner_changes_need_a_reason(client, framed, manager, framing_data):
    advance(framed, Stage.THIN_SLICE, user=manager)
    newcomer = UserFactory(role=Role.OWNER)
    data = framing_data(framed, business_owner=newcomer.pk)
    response = _post(client, manager, framed, data)
    assert response.status_code == 400
    assert "Say why the owners or sponsor change" in response.content.decode()
    framed.refresh_from_db()
    assert framed.business_owner.username == "biz"

    data["reason"] = "Ownership moved to the claims operations team."
    assert _post(client, manager, framed, data).status_code == 302
    change = FramingChange.objects.get(field="business_owner")
    assert change.old_value == str(framed.business_owner_id)
    assert change.new_value == str(newcomer.pk)
    assert change.reason == "Ownership moved to the claims operations team."
    entry = framed.audit_entries.get(kind="framing")
    assert "biz" in entry.summary or framed.business_owner.get_full_name() in entry.summary


def test_the_initiative_page_shows_framing_changes_in_its_history(
    client, framed, manager, framing_data
):
    _post(client, manager, framed, framing_data(framed, narrow_audience="Claims team North"))
    body = client.get(framed.get_absolute_url()).content.decode()
    assert "Changed narrow-launch audience: — → Claims team North" in body


def _initiative_data(initiative, **overrides) -> dict:
    data = {
        f: getattr(initiative, f"{f}_id")
        if f in ("business_unit", "sponsor", "business_owner", "operational_owner", "delivery_lead")
        else getattr(initiative, f)
        for f in services.INITIATIVE_FIELDS
    }
    data = {k: ("" if v is None else v) for k, v in data.items()}
    data.update(overrides)
    return data


def _metric_data(metric, **overrides) -> dict:
    data = {
        f"metric-{f}": "" if getattr(metric, f) is None else str(getattr(metric, f))
        for f in services.METRIC_FIELDS
    }
    data.update({f"metric-{k}": v for k, v in overrides.items()})
    return data


def test_an_owner_edits_framing_though_a_co_owner_has_since_become_a_viewer(
    client, framed, viewer, framing_data
):
    # Named while an owner, the co-owner's role changed later: other edits still save.
    type(framed).objects.filter(pk=framed.pk).update(operational_owner=viewer)
    framed.refresh_from_db()
    data = framing_data(framed, security_model="Only claims staff see claim data.")
    response = _post(client, framed.business_owner, framed, data)
    assert response.status_code == 302
    framed.refresh_from_db()
    assert framed.security_model == "Only claims staff see claim data."
    assert framed.operational_owner == viewer


def test_an_owner_replaced_while_editing_saves_nothing(framed, manager):
    owner = framed.business_owner
    form = InitiativeForm(
        _initiative_data(framed, security_model="Loosened."),
        instance=framed,
        may_change_people=False,
    )
    metric_form = PrimaryMetricForm(
        _metric_data(framed.primary_metric), instance=framed.primary_metric, prefix="metric"
    )
    assert form.is_valid() and metric_form.is_valid()
    # Between the page's check and the write, a manager names someone else.
    type(framed).objects.filter(pk=framed.pk).update(business_owner=manager)
    with pytest.raises(PermissionDenied):
        services.save_framing(initiative_form=form, metric_form=metric_form, user=owner)
    framed.refresh_from_db()
    assert framed.security_model != "Loosened."


def test_an_initiative_framed_at_a_moment_is_created_and_enters_frame_then(manager, framing_data):
    from datetime import timedelta

    from django.utils import timezone

    moment = timezone.now() - timedelta(days=60)
    data = framing_data()
    form = InitiativeForm(data)  # built before the moment, as a page or the demo builds it
    metric_form = PrimaryMetricForm(data, prefix="metric")
    assert form.is_valid() and metric_form.is_valid()
    initiative = services.save_framing(
        initiative_form=form, metric_form=metric_form, user=manager, now=moment
    )
    initiative.refresh_from_db()
    assert initiative.created_at == moment == initiative.stage_entered_at
    assert set(FramingChange.objects.values_list("changed_at", flat=True)) <= {moment}
