"""The initiative list: filters from the URL, sorting, and the CSV export.

Everything the list shows comes from one annotated query plus one prefetch of active flags
per page, whatever the portfolio's size.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Lower

from gates.stages import LAUNCHED, PATH, Stage
from metrics.models import Metric, Verdict
from pages.forms import ScopeFilter, sponsor_field, unit_field
from portfolio.models import FlagKind, Initiative, PurgatoryFlag
from portfolio.queries import PEOPLE

ANY_FLAG = "any"
LAUNCHED_FILTER = "launched"  # narrow or wide launch, as the dashboard's verdict counts see them
NOT_COMPUTED = "none"  # a primary metric without a snapshot yet
STAGE_ORDER = Case(
    *[When(stage=s, then=Value(i)) for i, s in enumerate([*PATH, Stage.STOPPED])],
    output_field=IntegerField(),
)
# Sort keys a URL may name; "-" in front reverses the first field. Ties fall back to the title,
# then the id, so that pages never overlap.
SORTS = {
    "title": ("title",),
    "stage": ("stage_order", "title"),
    "unit": ("business_unit__name", "title"),
    "owner": ("business_owner__last_name", "business_owner__first_name", "title"),
    "days": ("stage_entered_at", "title"),
    "verdict": ("primary_verdict", "title"),
    "flags": ("flag_count", "title"),
}


# Keys whose column runs opposite to the field: more days in stage is an earlier entry time.
REVERSED = {"days"}


class ListFilter(ScopeFilter):
    """The list's filters, all optional; invalid values are ignored rather than erroring."""

    q = forms.CharField(required=False, max_length=100, label="Search")
    stage = forms.ChoiceField(
        required=False,
        choices=[("", "All stages"), *Stage.choices, (LAUNCHED_FILTER, "Narrow or wide launch")],
    )
    unit = unit_field("All units")
    owner = forms.ModelChoiceField(
        required=False, queryset=get_user_model().objects.none(), empty_label="Anyone"
    )
    sponsor = sponsor_field("Any sponsor")
    flag = forms.ChoiceField(
        required=False,
        choices=[("", "Any or none"), (ANY_FLAG, "Any flag"), *FlagKind.choices],
        label="Flag",
    )
    verdict = forms.ChoiceField(
        required=False,
        choices=[("", "Any status"), *Verdict.choices, (NOT_COMPUTED, "Not computed")],
        label="Metric status",
    )
    sort = forms.CharField(required=False, max_length=20)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        owners = get_user_model().objects.filter(
            Q(business_owned_initiatives__isnull=False)
            | Q(operated_initiatives__isnull=False)
            | Q(delivered_initiatives__isnull=False)
        )
        self.fields["owner"].queryset = (
            get_user_model().objects.filter(pk__in=owners.values("pk")).order_by("first_name")
        )


def initiatives(filters: dict) -> QuerySet:
    primary = Metric.objects.filter(initiative=OuterRef("pk"), is_primary=True)
    active = PurgatoryFlag.objects.filter(initiative=OuterRef("pk"), cleared_at__isnull=True)
    qs = Initiative.objects.select_related("business_unit", *PEOPLE).annotate(
        stage_order=STAGE_ORDER,
        primary_verdict=Subquery(primary.values("latest_snapshot__verdict")[:1]),
        primary_name=Subquery(primary.values("name")[:1]),
        flag_count=Coalesce(
            Subquery(
                active.order_by().values("initiative").annotate(n=Count("pk")).values("n")[:1]
            ),
            0,
        ),
    )
    if text := (filters.get("q") or "").strip():
        qs = qs.filter(Q(title__icontains=text) | Q(summary__icontains=text))
    if stage := filters.get("stage"):
        qs = qs.filter(stage__in=LAUNCHED) if stage == LAUNCHED_FILTER else qs.filter(stage=stage)
    if unit := filters.get("unit"):
        qs = qs.filter(business_unit=unit)
    if sponsor := filters.get("sponsor"):
        qs = qs.filter(sponsor=sponsor)
    if owner := filters.get("owner"):
        qs = qs.filter(
            Q(business_owner=owner) | Q(operational_owner=owner) | Q(delivery_lead=owner)
        )
    if flag := filters.get("flag"):
        qs = qs.filter(Exists(active if flag == ANY_FLAG else active.filter(kind=flag)))
    if verdict := filters.get("verdict"):
        if verdict == NOT_COMPUTED:
            qs = qs.filter(Exists(primary.filter(latest_snapshot__isnull=True)))
        else:
            qs = qs.filter(Exists(primary.filter(latest_snapshot__verdict=verdict)))
    return qs.order_by(*sort_keys(filters.get("sort")))


def sort_keys(sort: str | None) -> list:
    """The ORDER BY of a sort from the URL. A missing value (no business owner, no metric
    status) sorts last in both directions, on PostgreSQL and SQLite alike."""
    name = (sort or "title").lstrip("-")
    descending = ((sort or "").startswith("-") and name in SORTS) != (name in REVERSED)
    first, *rest = SORTS.get(name, SORTS["title"])
    key = _expr(first).desc(nulls_last=True) if descending else _expr(first).asc(nulls_last=True)
    return [key, *(_expr(f).asc(nulls_last=True) for f in rest), "pk"]


# Names sort as a person reads them: "api gateway" between "Alpha" and "Beta", not after "Z".
TEXT_SORTS = {
    "title",
    "business_unit__name",
    "business_owner__last_name",
    "business_owner__first_name",
}


def _expr(field: str):
    return Lower(field) if field in TEXT_SORTS else F(field)


def with_flags(qs: QuerySet) -> QuerySet:
    """Prefetch the active flags of the initiatives shown (one query per page)."""
    return qs.prefetch_related(
        Prefetch(
            "flags",
            queryset=PurgatoryFlag.objects.filter(cleared_at__isnull=True).order_by("kind"),
            to_attr="active_flags",
        )
    )


# CSV export --------------------------------------------------------------------------------
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
COLUMNS = [
    "title", "stage", "business unit", "sponsor", "business owner", "operational owner",
    "delivery lead", "days in stage", "primary metric", "metric status", "flags", "url",
]  # fmt: skip


def safe_cell(value) -> str:
    """A cell a spreadsheet will not run: text starting like a formula gets a leading quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _person(user) -> str:
    return "" if user is None else str(user)


class Echo:
    def write(self, value: str) -> str:
        return value


def csv_rows(qs: QuerySet, *, base_url: str) -> Iterator[str]:
    """The filtered list as CSV lines, streamed in chunks."""
    writer = csv.writer(Echo())
    yield writer.writerow(COLUMNS)
    verdicts = dict(Verdict.choices)
    for initiative in with_flags(qs).iterator(chunk_size=500):
        yield writer.writerow(
            [
                safe_cell(value)
                for value in (
                    initiative.title,
                    initiative.get_stage_display(),
                    initiative.business_unit.name,
                    _person(initiative.sponsor),
                    _person(initiative.business_owner),
                    _person(initiative.operational_owner),
                    _person(initiative.delivery_lead),
                    initiative.days_in_stage,
                    initiative.primary_name or "",
                    verdicts.get(initiative.primary_verdict, ""),
                    "; ".join(f.get_kind_display() for f in initiative.active_flags),
                    base_url + initiative.get_absolute_url(),
                )
            ]
        )
