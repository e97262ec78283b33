"""The dashboard's value section, the budget requests list it links to, and the export."""

import csv
import io
from datetime import date
from decimal import Decimal

import pytest
from django.core.cache import cache

from gates.stages import Stage
from portfolio.roles import Role
from tests.factories import (
    BusinessUnitFactory,
    InitiativeFactory,
    MetricSnapshotFactory,
    UserFactory,
    bulk_portfolio,
    upkeep_line,
)
from tests.portfolio.test_dashboard import with_running_cost
from tests.portfolio.test_listing import count_queries
from value import services
from value.models import Outcome

pytestmark = pytest.mark.django_db


def launched(unit, sponsor, owner, *, currency="EUR", pilot=90.0, title=None):
    """Launched, with a value model (38 a unit, 1,200 a month) and a measured snapshot."""
    initiative = InitiativeFactory(
        framed=True, stage=Stage.NARROW_LAUNCH, business_unit=unit, sponsor=sponsor,
        business_owner=owner, **({"title": title} if title else {}),
    )  # fmt: skip
    metric = initiative.metrics.get(is_primary=True)
    type(metric).objects.filter(pk=metric.pk).update(
        unit_value=Decimal("38"), value_currency=currency, monthly_volume=Decimal("1200")
    )
    MetricSnapshotFactory(metric=metric, pilot_value=pilot, latest=True)
    return initiative


def ask(initiative, owner, amount="1000", currency="EUR"):
    return services.request_budget(
        initiative=initiative, user=owner,
        values={
            "kind": "run", "amount": amount, "currency": currency,
            "starts_on": date(2027, 1, 1), "ends_on": date(2027, 12, 31),
            "purpose": "Upkeep.", "answerable": owner,
        },
    )  # fmt: skip


@pytest.fixture
def portfolio(owner):
    claims, retail = (
        BusinessUnitFactory(name="Claims", slug="claims"),
        BusinessUnitFactory(name="Retail", slug="retail"),
    )
    sponsor = UserFactory(role=Role.EXECUTIVE)
    a = launched(claims, sponsor, owner, title="Alpha")  # 10 better: 456,000 a month
    b = launched(claims, sponsor, owner, pilot=85.0, title="Bravo")  # 5 better: 228,000
    c = launched(retail, sponsor, owner, currency="GBP", title="Charlie")
    with_running_cost(a, per_transaction="2", volume=3000)  # EUR 6,000 a month
    approved = ask(a, owner, "5000")
    services.decide(request=approved, user=sponsor, outcome=Outcome.APPROVED, rationale="Yes.")
    rejected = ask(b, owner, "700")
    services.decide(request=rejected, user=sponsor, outcome=Outcome.REJECTED, rationale="No.")
    ask(c, owner, "300", currency="GBP")
    # Bravo's latest verdict turns below before its second request: not backed.
    metric = b.metrics.get(is_primary=True)
    MetricSnapshotFactory(metric=metric, verdict="below", pilot_value=80.0, latest=True)
    ask(b, owner, "200")
    return {"claims": claims, "retail": retail, "sponsor": sponsor, "a": a, "b": b, "c": c}


def value_of_page(client, user, query=""):
    client.force_login(user)
    response = client.get("/" + (f"?{query}" if query else ""))
    assert response.status_code == 200
    return response.context["value"]


def test_value_is_summed_per_currency_and_unit_never_across_currencies(
    client, executive, portfolio
):
    value = value_of_page(client, executive)

    totals = {t.currency: t for t in value["totals"]}
    assert set(totals) == {"EUR", "GBP"}
    # Bravo's latest snapshot is below (pilot 80, baseline 80): no improvement.
    assert totals["EUR"].monthly == Decimal("456000.00")
    assert totals["EUR"].low < totals["EUR"].monthly < totals["EUR"].high
    assert totals["GBP"].monthly == Decimal("456000.00")
    claims = next(u for u in value["units"] if u.slug == "claims")
    [eur] = claims.totals
    assert (eur.currency, eur.running_cost, eur.net, eur.costed) == (
        "EUR", Decimal("6000.00"), Decimal("450000.00"), 1,
    )  # fmt: skip
    assert claims.launched == 2


def test_spend_counts_requests_per_state_per_currency(client, executive, portfolio):
    value = value_of_page(client, executive)

    spend = {c["currency"]: dict(c["columns"]) for c in value["spend"]}
    eur = spend["EUR"]
    assert (eur["Requested"]["amount"], eur["Requested"]["count"]) == (Decimal("5900"), 3)
    assert (eur["Approved"]["amount"], eur["Approved"]["count"]) == (Decimal("5000"), 1)
    assert (eur["Rejected"]["amount"], eur["Rejected"]["count"]) == (Decimal("700"), 1)
    assert (eur["Awaiting the sponsor"]["amount"], eur["Awaiting the sponsor"]["count"]) == (
        Decimal("200"), 1,
    )  # fmt: skip
    assert spend["GBP"]["Requested"]["amount"] == Decimal("300")
    assert value["unbacked"]["requests"] == 1 and value["unbacked"]["initiatives"] == 1


@pytest.mark.parametrize(
    ("query", "count"),
    [
        ("", 4),
        ("status=open", 2),
        ("status=approved", 1),
        ("status=rejected", 1),
        ("backed=no", 1),
        ("backed=yes", 3),
        ("currency=GBP", 1),
        ("unit=retail", 1),
        ("status=bogus", 4),  # a bad filter filters nothing and says so
        ("currency=USD", 4),  # no request in USD: not a choice, so no filter
    ],
)
def test_the_requests_list_filters(client, viewer, portfolio, query, count):
    client.force_login(viewer)
    response = client.get(f"/budget/?{query}")
    assert response.status_code == 200
    assert response.context["page"].paginator.count == count


def test_the_value_section_follows_a_decision_and_a_new_snapshot(client, executive, portfolio):
    """The section is cached; a budget decision and a new snapshot (after the debounce)
    each change what it shows."""
    before = value_of_page(client, executive)
    pending = portfolio["c"].budget_requests.get()
    services.decide(
        request=pending, user=portfolio["sponsor"], outcome=Outcome.APPROVED, rationale="Go."
    )
    after = value_of_page(client, executive)
    gbp = {c["currency"]: dict(c["columns"]) for c in after["spend"]}["GBP"]
    assert gbp["Approved"]["count"] == 1
    assert before is not after


def test_the_export_has_every_launched_initiative_and_its_as_of_time(client, executive, portfolio):
    client.force_login(executive)
    response = client.get("/value/export.csv?unit=claims")

    lines = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert lines[0][0].startswith("As of 20")
    header, *rows = lines[1:]
    assert header[:3] == ["Initiative", "Business unit", "Stage"]
    by_title = {r[0]: dict(zip(header, r, strict=True)) for r in rows}
    assert set(by_title) == {"Alpha", "Bravo"}
    alpha = by_title["Alpha"]
    assert alpha["Value a month"] == "456000.00" and alpha["Net a month"] == "450000.00"
    assert alpha["Budget approved"] == "EUR 5000.00"
    assert by_title["Bravo"]["Budget requested"] == "EUR 900.00"


def valued(start: int, count: int, *, manager) -> None:
    """`count` bulk initiatives, each metric with a value model, each launch with an upkeep
    line and its request."""
    from metrics.models import Metric
    from portfolio.models import Initiative

    bulk_portfolio(count, decided_by=manager, start=start)
    Metric.objects.update(
        unit_value=Decimal("10"), value_currency="EUR", monthly_volume=Decimal("100")
    )
    for initiative in Initiative.objects.filter(stage__in=["narrow_launch", "wide_launch"]):
        if not initiative.budget_lines.exists():
            upkeep_line(initiative)


@pytest.mark.parametrize("url", ["/", "/budget/", "/value/export.csv"])
def test_queries_do_not_grow_with_the_portfolio(client, executive, manager, url):
    valued(0, 10, manager=manager)
    client.force_login(executive)
    client.get(url)
    cache.clear()  # the dashboard's sections computed, not read from the cache
    small = count_queries(client, url)

    valued(10, 60, manager=manager)

    cache.clear()
    assert count_queries(client, url) == small


def test_the_value_section_follows_requests_decisions_value_model_and_snapshots(
    client, executive, owner, computed, settings
):
    settings.GANTRY_RECOMPUTE_DEBOUNCE_SECONDS = 0
    sponsor = UserFactory(role=Role.EXECUTIVE)
    initiative = launched(BusinessUnitFactory(), sponsor, owner)
    metric = initiative.metrics.get(is_primary=True)
    value_of_page(client, executive)

    def after(change) -> dict:
        computed.clear()
        change()
        found = value_of_page(client, executive)
        assert "value" in computed
        return found

    made = None

    def request():
        nonlocal made
        made = ask(initiative, owner, "1000")

    spend = after(request)["spend"]
    assert dict(spend[0]["columns"])["Awaiting the sponsor"]["count"] == 1

    spend = after(
        lambda: services.decide(
            request=made, user=sponsor, outcome=Outcome.APPROVED, rationale="Go."
        )
    )["spend"]
    assert dict(spend[0]["columns"])["Approved"]["count"] == 1

    def revalue():
        metric.refresh_from_db()
        metric.unit_value = Decimal("76")
        metric.save()  # as a reframe saves it

    assert after(revalue)["totals"][0].monthly == Decimal("912000.00")
    assert after(lambda: MetricSnapshotFactory(metric=metric, pilot_value=85.0, latest=True))[
        "totals"
    ][0].monthly == Decimal("456000.00")
