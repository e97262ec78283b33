"""Framing an initiative: created with its primary metric, or not at all."""

from decimal import Decimal

import pytest

from gates.criteria import blocking, registry
from gates.stages import Stage
from gates.stages import Transition as T
from metrics.models import Direction, Metric
from portfolio.models import Initiative
from portfolio.roles import Role
from tests.factories import InitiativeFactory, MetricFactory, UserFactory
from tests.helpers import advance

pytestmark = pytest.mark.django_db


@pytest.fixture
def pm_client(client, manager):
    client.force_login(manager)
    return client


def test_new_initiative_form_renders_both_parts(pm_client):
    response = pm_client.get("/initiatives/new/")
    assert response.status_code == 200
    body = response.content.decode()
    for name in ("title", "business_unit", "business_owner", "decision_changed"):
        assert f'name="{name}"' in body
    for name in ("name", "unit", "direction", "ship_threshold", "baseline"):
        assert f'name="metric-{name}"' in body


def test_creating_an_initiative_with_its_primary_metric(pm_client, manager, framing_data):
    owner = UserFactory(role=Role.OWNER)
    data = framing_data(
        business_owner=owner.pk,
        **{
            "metric-name": "Handling time",
            "metric-unit": "minutes",
            "metric-direction": Direction.LOWER,
            "metric-ship_threshold": "4.5",
            "metric-baseline": "7.25",
            "metric-comparison_window_days": "21",
        },
    )

    response = pm_client.post("/initiatives/new/", data)

    initiative = Initiative.objects.get()
    assert response.status_code == 302
    assert response["Location"] == initiative.get_absolute_url()
    assert initiative.title == "Claims triage"
    assert initiative.slug == "claims-triage"
    assert initiative.stage == Stage.FRAME
    assert initiative.created_by == manager
    assert initiative.business_owner == owner
    metric = Metric.objects.get()
    assert metric.initiative == initiative
    assert metric.is_primary
    assert (metric.name, metric.unit, metric.direction) == ("Handling time", "minutes", "lower")
    assert metric.ship_threshold == Decimal("4.5")
    assert metric.baseline == Decimal("7.25")
    assert metric.comparison_window_days == 21
    # Everything gate 1 asks for is now in the database.
    assert blocking(registry.evaluate(initiative, T.APPROVE_FRAME)) == []


def test_creating_an_initiative_without_a_metric_writes_no_metric(pm_client, framing_data):
    data = framing_data(
        **{"metric-name": "", "metric-unit": "", "metric-ship_threshold": "", "metric-baseline": ""}
    )
    response = pm_client.post("/initiatives/new/", data)
    assert response.status_code == 302
    initiative = Initiative.objects.get()
    assert not Metric.objects.exists()
    failing = {o.key for o in blocking(registry.evaluate(initiative, T.APPROVE_FRAME))}
    assert {"primary_metric_defined", "ship_threshold_set", "business_owner_named"} <= failing


def test_two_initiatives_with_the_same_title_get_distinct_slugs(pm_client, framing_data):
    assert pm_client.post("/initiatives/new/", framing_data()).status_code == 302
    assert pm_client.post("/initiatives/new/", framing_data()).status_code == 302
    assert sorted(Initiative.objects.values_list("slug", flat=True)) == [
        "claims-triage",
        "claims-triage-2",
    ]


def test_posted_stage_is_ignored_when_creating(pm_client, framing_data):
    pm_client.post("/initiatives/new/", framing_data(stage=Stage.WIDE_LAUNCH))
    assert Initiative.objects.get().stage == Stage.FRAME


BAD_INPUT = [
    # (what is wrong, overrides, "form" or "metric_form", the field with the error)
    ("missing title", {"title": ""}, "form", "title"),
    ("blank title", {"title": "   "}, "form", "title"),
    ("missing business unit", {"business_unit": ""}, "form", "business_unit"),
    ("unknown business unit", {"business_unit": "999999"}, "form", "business_unit"),
    ("unknown business owner", {"business_owner": "999999"}, "form", "business_owner"),
    (
        "logging link not a URL",
        {"logging_evidence": "javascript:alert(1)"},
        "form",
        "logging_evidence",
    ),
    ("non-numeric threshold", {"metric-ship_threshold": "eighty"}, "metric_form", "ship_threshold"),
    ("NaN threshold", {"metric-ship_threshold": "NaN"}, "metric_form", "ship_threshold"),
    ("Infinity threshold", {"metric-ship_threshold": "Infinity"}, "metric_form", "ship_threshold"),
    (
        "-Infinity threshold",
        {"metric-ship_threshold": "-Infinity"},
        "metric_form",
        "ship_threshold",
    ),
    ("inf threshold", {"metric-ship_threshold": "inf"}, "metric_form", "ship_threshold"),
    # The value model: whole or absent, never negative, its currency a three-letter code.
    (
        "negative volume",
        {"metric-unit_value": "38", "metric-value_currency": "EUR", "metric-monthly_volume": "-5"},
        "metric_form",
        "monthly_volume",
    ),
    (
        "negative unit value",
        {"metric-unit_value": "-1", "metric-value_currency": "EUR", "metric-monthly_volume": "5"},
        "metric_form",
        "unit_value",
    ),
    (
        "value without currency",
        {"metric-unit_value": "38", "metric-monthly_volume": "1200"},
        "metric_form",
        "value_currency",
    ),
    (
        "currency not a code",
        {"metric-unit_value": "38", "metric-value_currency": "E1", "metric-monthly_volume": "9"},
        "metric_form",
        "value_currency",
    ),
    (
        "non-numeric unit value",
        {"metric-unit_value": "lots", "metric-value_currency": "EUR", "metric-monthly_volume": "9"},
        "metric_form",
        "unit_value",
    ),
    ("volume without value", {"metric-monthly_volume": "1200"}, "metric_form", "unit_value"),
    ("huge threshold", {"metric-ship_threshold": "1e30"}, "metric_form", "ship_threshold"),
    ("NaN baseline", {"metric-baseline": "nan"}, "metric_form", "baseline"),
    ("non-numeric baseline", {"metric-baseline": "78%"}, "metric_form", "baseline"),
    ("metric name without unit", {"metric-unit": ""}, "metric_form", "unit"),
    ("metric unit blank", {"metric-unit": "   "}, "metric_form", "unit"),
    ("unit without metric name", {"metric-name": ""}, "metric_form", "name"),
    (
        "threshold without name or unit",
        {"metric-name": "", "metric-unit": "", "metric-ship_threshold": "85"},
        "metric_form",
        "name",
    ),
    ("unknown direction", {"metric-direction": "sideways"}, "metric_form", "direction"),
    (
        "zero-day window",
        {"metric-comparison_window_days": "0"},
        "metric_form",
        "comparison_window_days",
    ),
    (
        "window over a year",
        {"metric-comparison_window_days": "366"},
        "metric_form",
        "comparison_window_days",
    ),
]


@pytest.mark.parametrize(
    ("overrides", "form_name", "field"),
    [case[1:] for case in BAD_INPUT],
    ids=[case[0] for case in BAD_INPUT],
)
def test_bad_framing_input_answers_400_with_a_field_error_and_writes_nothing(
    pm_client, framing_data, overrides, form_name, field
):
    response = pm_client.post("/initiatives/new/", framing_data(**overrides))

    assert response.status_code == 400
    assert field in response.context[form_name].errors
    assert 'role="alert"' in response.content.decode()
    assert not Initiative.objects.exists()
    assert not Metric.objects.exists()


def test_bad_metric_input_keeps_what_the_user_typed(pm_client, framing_data):
    response = pm_client.post(
        "/initiatives/new/", framing_data(title="Keep me", **{"metric-ship_threshold": "NaN"})
    )
    assert response.status_code == 400
    assert 'value="Keep me"' in response.content.decode()


# Editing the framing ------------------------------------------------------------------------
def test_owner_edits_the_framing_and_the_metric_is_updated_not_duplicated(
    client, framing_data, manager
):
    owner = UserFactory(role=Role.OWNER)
    initiative = InitiativeFactory(framed=True, delivery_lead=owner)
    metric = initiative.primary_metric
    client.force_login(owner)

    response = client.post(
        f"/initiatives/{initiative.slug}/edit/",
        framing_data(
            initiative,
            security_model="Adjusters only.",
            **{"metric-ship_threshold": "90", "metric-unit": "percent"},
        ),
    )

    assert response.status_code == 302
    initiative.refresh_from_db()
    assert initiative.security_model == "Adjusters only."
    assert initiative.delivery_lead == owner
    assert list(Metric.objects.filter(initiative=initiative)) == [metric]
    metric.refresh_from_db()
    assert (metric.ship_threshold, metric.unit, metric.is_primary) == (
        Decimal("90"),
        "percent",
        True,
    )


def test_editing_the_framing_never_moves_the_stage(client, framing_data, manager):
    initiative = advance(InitiativeFactory(framed=True), Stage.THIN_SLICE, user=manager)
    entered = initiative.stage_entered_at
    client.force_login(manager)
    response = client.post(
        f"/initiatives/{initiative.slug}/edit/",
        framing_data(initiative, title="Renamed", stage=Stage.WIDE_LAUNCH, stop_reason="other"),
    )
    assert response.status_code == 302
    initiative.refresh_from_db()
    assert initiative.title == "Renamed"
    assert initiative.stage == Stage.THIN_SLICE
    assert initiative.stage_entered_at == entered
    assert initiative.stop_reason == ""


def test_the_primary_metric_cannot_be_emptied(client, framing_data, manager):
    initiative = InitiativeFactory(framed=True)
    client.force_login(manager)
    response = client.post(
        f"/initiatives/{initiative.slug}/edit/",
        framing_data(
            initiative,
            **{
                "metric-name": "",
                "metric-unit": "",
                "metric-ship_threshold": "",
                "metric-baseline": "",
            },
        ),
    )
    assert response.status_code == 400
    assert response.context["metric_form"].non_field_errors()
    metric = initiative.primary_metric
    assert metric.name == "First-contact resolution"


@pytest.mark.parametrize(
    ("overrides", "form_name", "field"),
    [
        ({"title": ""}, "form", "title"),
        ({"metric-ship_threshold": "Infinity"}, "metric_form", "ship_threshold"),
        ({"metric-unit": ""}, "metric_form", "unit"),
    ],
    ids=["no-title", "infinite-threshold", "no-unit"],
)
def test_bad_edit_answers_400_and_changes_nothing(
    client, framing_data, manager, overrides, form_name, field
):
    initiative = InitiativeFactory(framed=True, title="Original")
    client.force_login(manager)
    response = client.post(
        f"/initiatives/{initiative.slug}/edit/",
        framing_data(initiative, summary="Changed summary", **overrides),
    )
    assert response.status_code == 400
    assert field in response.context[form_name].errors
    initiative.refresh_from_db()
    assert initiative.title == "Original"
    assert initiative.summary != "Changed summary"
    metric = Metric.objects.get(initiative=initiative)
    assert (metric.unit, metric.ship_threshold) == ("%", Decimal("85"))


def test_adding_a_metric_to_an_initiative_that_had_none(client, framing_data, manager):
    initiative = InitiativeFactory()
    client.force_login(manager)
    response = client.post(
        f"/initiatives/{initiative.slug}/edit/",
        framing_data(
            initiative,
            **{
                "metric-name": "Claims per hour",
                "metric-unit": "claims/h",
                "metric-direction": "higher",
                "metric-ship_threshold": "12",
                "metric-baseline": "",
                "metric-comparison_window_days": "14",
            },
        ),
    )
    assert response.status_code == 302
    metric = Metric.objects.get(initiative=initiative)
    assert metric.is_primary
    assert metric.baseline is None


def test_new_primary_metric_gets_a_slug_no_other_metric_of_the_initiative_uses(
    client, framing_data, manager
):
    # A metric added in the admin may already hold the slug the new primary metric would get.
    initiative = InitiativeFactory()
    MetricFactory(
        initiative=initiative, name="Handling time", slug="handling-time", is_primary=False
    )
    client.force_login(manager)
    response = client.post(
        f"/initiatives/{initiative.slug}/edit/",
        framing_data(initiative, **{"metric-name": "Handling time", "metric-unit": "min"}),
    )
    assert response.status_code == 302
    primary = Metric.objects.get(initiative=initiative, is_primary=True)
    assert primary.slug == "handling-time-2"
    assert Metric.objects.filter(initiative=initiative).count() == 2


def test_the_value_model_is_saved_with_the_metric_and_its_currency_upper_cased(
    pm_client, framing_data
):
    response = pm_client.post(
        "/initiatives/new/",
        framing_data(
            **{
                "metric-unit_value": "38.50",
                "metric-value_currency": "eur",
                "metric-monthly_volume": "1200",
                "metric-volume_source": "Claims system, monthly average of 2026",
            }
        ),
    )
    assert response.status_code == 302
    metric = Metric.objects.get()
    assert (metric.unit_value, metric.value_currency, metric.monthly_volume) == (
        Decimal("38.50"), "EUR", Decimal("1200"),
    )  # fmt: skip
    assert metric.has_value_model
