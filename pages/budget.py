"""The portfolio's value and budget, as the dashboard, the budget requests list and the
value export show it: value realised against running cost per launched initiative and per
business unit, spend requested against approved, and requests not backed by a result that
meets its threshold. Money is summed per currency, never across currencies.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django import forms
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum

from gates.stages import LAUNCHED
from metrics.models import Verdict
from pages.forms import DashboardFilter, QuickSelect
from pages.listing import Echo, safe_cell
from value.models import BudgetDecision, BudgetKind, BudgetLine, BudgetRequest, Outcome
from value.realised import LEVEL, Realised, realised

ZERO = Decimal("0.00")
# A request is backed when the latest snapshot it froze said the pilot meets its threshold.
BACKED = Q(evidence__snapshot__verdict=Verdict.MEETING)
# Written out rather than ~BACKED: a request frozen with no snapshot has no verdict, and SQL's
# NOT of a comparison with nothing is nothing, not true.
NOT_BACKED = Q(evidence__snapshot__verdict__isnull=True) | ~BACKED


@dataclass
class Totals:
    """Sums of one currency: value realised (point and the ends of the intervals), running
    cost and net, over the initiatives measured in it."""

    currency: str
    monthly: Decimal = ZERO
    low: Decimal = ZERO
    high: Decimal = ZERO
    running_cost: Decimal = ZERO  # of those with a running cost in this currency
    net: Decimal = ZERO  # value minus running cost, over those same initiatives
    measured: int = 0
    costed: int = 0

    def add(self, value: Realised) -> None:
        self.monthly += value.monthly
        self.low += value.low
        self.high += value.high
        self.measured += 1
        if value.nets:
            self.running_cost += value.running_cost
            self.net += value.net
            self.costed += 1


@dataclass
class UnitValue:
    name: str
    slug: str
    totals: list[Totals] = field(default_factory=list)
    launched: int = 0
    unmeasured: int = 0


# What the section and the export show of an initiative: a portfolio's launched initiatives
# are read whole on every computation of the section otherwise, text fields and all.
ROW_FIELDS = ("title", "slug", "stage", "business_unit__name", "business_unit__slug")


def value_rows(base: QuerySet) -> list[tuple]:
    """(initiative, value realised) of every launched initiative in scope, largest value
    first within each currency, those without a measurement last: three queries."""
    launched = list(
        base.filter(stage__in=LAUNCHED)
        .select_related("business_unit")
        .only(*ROW_FIELDS)
        .order_by("title")
    )
    found = realised(launched)
    rows = [(i, found[i.pk]) for i in launched]
    return sorted(
        rows,
        key=lambda r: (not r[1].measured, r[1].currency, -(r[1].monthly or 0), r[0].title),
    )


def _add(totals: list[Totals], value: Realised) -> None:
    same = next((t for t in totals if t.currency == value.currency), None)
    if same is None:
        same = Totals(value.currency)
        totals.append(same)
        totals.sort(key=lambda t: t.currency)
    same.add(value)


def totals(rows: list[tuple]) -> list[Totals]:
    """The measured values of `rows` summed per currency."""
    found: list[Totals] = []
    for _, value in rows:
        if value.measured:
            _add(found, value)
    return found


def by_unit(rows: list[tuple]) -> list[UnitValue]:
    units: dict[int, UnitValue] = {}
    for initiative, value in rows:
        unit = initiative.business_unit
        entry = units.setdefault(unit.pk, UnitValue(unit.name, unit.slug))
        entry.launched += 1
        if value.measured:
            _add(entry.totals, value)
        else:
            entry.unmeasured += 1
    return sorted(units.values(), key=lambda u: u.name.lower())


def spend(base: QuerySet) -> list[dict]:
    """Per currency: requested, approved (the lines granted), rejected and awaiting, each
    amount with how many requests it counts; two queries."""
    requests = BudgetRequest.objects.filter(initiative__in=base)
    decided = BudgetDecision.objects.filter(request=OuterRef("pk"))
    rows = (
        requests.annotate(
            decided=Exists(decided), approved=Exists(decided.filter(outcome=Outcome.APPROVED))
        )
        .values("currency")
        .annotate(
            requested=Sum("amount"),
            requested_n=Count("pk"),
            approved_sum=Sum("amount", filter=Q(approved=True)),
            approved_n=Count("pk", filter=Q(approved=True)),
            open_sum=Sum("amount", filter=Q(decided=False)),
            open_n=Count("pk", filter=Q(decided=False)),
            rejected_sum=Sum("amount", filter=Q(decided=True, approved=False)),
            rejected_n=Count("pk", filter=Q(decided=True, approved=False)),
        )
        .order_by("currency")
    )
    return [
        {
            "currency": r["currency"],
            "columns": [
                ("Requested", _spent(r["requested"], r["requested_n"], "")),
                ("Approved", _spent(r["approved_sum"], r["approved_n"], Outcome.APPROVED)),
                ("Awaiting the sponsor", _spent(r["open_sum"], r["open_n"], "open")),
                ("Rejected", _spent(r["rejected_sum"], r["rejected_n"], Outcome.REJECTED)),
            ],
        }
        for r in rows
    ]


def _spent(amount: Decimal | None, count: int, status: str) -> dict:
    return {"amount": amount or ZERO, "count": count, "status": status}


def unbacked(base: QuerySet) -> dict:
    """Requests whose frozen evidence did not show the pilot meeting its threshold, and how
    many initiatives made them."""
    found = (
        BudgetRequest.objects.filter(initiative__in=base)
        .filter(NOT_BACKED)
        .aggregate(requests=Count("pk"), initiatives=Count("initiative", distinct=True))
    )
    return {**found, "query": "backed=no"}


def value_section(base: QuerySet) -> dict:
    rows = value_rows(base)
    return {
        "level": LEVEL,
        "rows": rows,
        "units": by_unit(rows),
        "totals": totals(rows),
        "spend": spend(base),
        "unbacked": unbacked(base),
        "measured": sum(1 for _, v in rows if v.measured),
    }


# The budget requests list --------------------------------------------------------------------
STATUSES = [("open", "Awaiting the sponsor"), *Outcome.choices]


class RequestFilter(DashboardFilter):
    """The requests list's filters: the dashboard's scope (unit, sponsor) and the request's
    own status, evidence, kind and currency."""

    status = forms.ChoiceField(
        widget=QuickSelect, required=False, choices=[("", "Any status"), *STATUSES]
    )
    backed = forms.ChoiceField(
        widget=QuickSelect,
        required=False,
        choices=[("", "Backed or not"), ("yes", "Backed by a met threshold"), ("no", "Not backed")],
        label="Evidence",
    )
    kind = forms.ChoiceField(
        widget=QuickSelect, required=False, choices=[("", "Any kind"), *BudgetKind.choices]
    )
    currency = forms.ChoiceField(widget=QuickSelect, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The currencies asked for so far, as the choices (one query).
        used = BudgetRequest.objects.order_by("currency").values_list("currency", flat=True)
        self.fields["currency"].choices = [("", "Any currency")] + [
            (code, code) for code in used.distinct()
        ]


def requests_matching(base: QuerySet, filters: dict) -> QuerySet:
    decided = BudgetDecision.objects.filter(request=OuterRef("pk"))
    qs = BudgetRequest.objects.filter(initiative__in=base).select_related(
        "initiative", "requested_by", "decision"
    )
    status = filters.get("status")
    if status == "open":
        qs = qs.exclude(Exists(decided))
    elif status in Outcome.values:
        qs = qs.filter(Exists(decided.filter(outcome=status)))
    if filters.get("backed") == "yes":
        qs = qs.filter(BACKED)
    elif filters.get("backed") == "no":
        qs = qs.filter(NOT_BACKED)
    if filters.get("kind"):
        qs = qs.filter(kind=filters["kind"])
    if filters.get("currency"):
        qs = qs.filter(currency=filters["currency"].upper())
    return qs.order_by("-requested_at", "-pk")


# The export ---------------------------------------------------------------------------------
EXPORT_COLUMNS = [
    "Initiative", "Business unit", "Stage", "Value status", "Currency",
    "Value a month", f"Low ({LEVEL:.0%})", f"High ({LEVEL:.0%})",
    "Running cost a month", "Running cost currency", "Net a month", "Net low", "Net high",
    "Snapshot computed at", "Budget approved", "Budget requested", "URL",
]  # fmt: skip


def _money(amount: Decimal | None) -> str:
    return "" if amount is None else f"{amount:f}"


def _per_currency(amounts: dict[str, Decimal]) -> str:
    return "; ".join(f"{c} {a:f}" for c, a in sorted(amounts.items()))


def export_rows(base: QuerySet, *, as_of: datetime, base_url: str) -> Iterator[str]:
    """The value section as CSV: a line with its as-of time, the header, then one row per
    launched initiative in scope; every cell safe to open in a spreadsheet."""
    rows = value_rows(base)
    ids = [i.pk for i, _ in rows]
    approved, requested = defaultdict(dict), defaultdict(dict)
    for pk, currency, total in (
        BudgetLine.objects.filter(initiative__in=ids)
        .values_list("initiative", "currency")
        .annotate(total=Sum("amount"))
        .order_by()
    ):
        approved[pk][currency] = total
    for pk, currency, total in (
        BudgetRequest.objects.filter(initiative__in=ids)
        .values_list("initiative", "currency")
        .annotate(total=Sum("amount"))
        .order_by()
    ):
        requested[pk][currency] = total
    writer = csv.writer(Echo())
    yield writer.writerow([f"As of {as_of.isoformat(timespec='seconds')}"])
    yield writer.writerow(EXPORT_COLUMNS)
    for initiative, v in rows:
        # Text a person typed goes through safe_cell; the figures are ours, and a negative
        # value must stay a number.
        yield writer.writerow([
            safe_cell(initiative.title), safe_cell(initiative.business_unit.name),
            initiative.get_stage_display(), v.label, v.currency, _money(v.monthly),
            _money(v.low), _money(v.high), _money(v.running_cost), v.running_cost_currency,
            _money(v.net), _money(v.net_low), _money(v.net_high),
            v.computed_at.isoformat() if v.computed_at else "",
            _per_currency(approved[initiative.pk]), _per_currency(requested[initiative.pk]),
            base_url + initiative.get_absolute_url(),
        ])  # fmt: skip
