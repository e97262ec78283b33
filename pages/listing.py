"""The initiative list: filters from the URL, sorting, and the CSV export.

Everything the list shows comes from one annotated query plus one prefetch of active flags
per page, whatever the portfolio's size.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from datetime import datetime, timedelta

from django import forms
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
from django.utils import timezone

from gates.models import GateDecision
from gates.stages import LAUNCHED, PATH, Stage, StopReason
from gates.stages import Transition as T
from metrics.models import Metric, Verdict
from pages.forms import PersonFilter, ScopeFilter, unit_field
from portfolio.models import FlagKind, Initiative, PurgatoryFlag
from portfolio.queries import PEOPLE, owners_named, sponsors_named
from readiness.queries import running_cost_currency

ANY_FLAG = "any"
LAUNCHED_FILTER = "launched"  # narrow or wide launch, as the dashboard's verdict counts see them
NOT_COMPUTED = "none"  # a primary metric without a snapshot yet
NO_METRIC = "no_metric"  # no primary metric at all
NO_COST = "none"  # no running cost on record
COST = re.compile(r"^(none|[A-Z]{3})$")


def _took(transition: str) -> Exists:
    return Exists(GateDecision.objects.filter(initiative=OuterRef("pk"), transition=transition))


def milestones() -> dict[str, Exists]:
    """Whether each initiative ever left framing, reached narrow launch, reached wide launch:
    every way out of framing but a stop is approve_frame, so an initiative that passed a
    review or widened has also left framing. Annotate with these before filtering by
    PROGRESS."""
    return {
        "took_approve_frame": _took(T.APPROVE_FRAME),
        "took_pass_review": _took(T.PASS_REVIEW),
        "took_widen": _took(T.WIDEN),
    }


def first_decision(transition: str) -> Subquery:
    """When each initiative first took `transition` (None if it never did)."""
    return Subquery(
        GateDecision.objects.filter(initiative=OuterRef("pk"), transition=transition)
        .order_by("decided_at")
        .values("decided_at")[:1]
    )


QUARTER = re.compile(r"^(\d{4})Q([1-4])$")


def quarter_of(moment: datetime) -> str:
    """ "2026Q3": the calendar quarter of `moment` in the site's time zone."""
    local = timezone.localtime(moment)
    return f"{local.year}Q{(local.month - 1) // 3 + 1}"


def quarter_bounds(quarter: str) -> tuple[datetime, datetime]:
    """The start of `quarter` ("2026Q3") and of the quarter after it."""
    year, number = (int(part) for part in QUARTER.match(quarter).groups())
    start = datetime(year, 3 * number - 2, 1)
    end = datetime(year + number // 4, 3 * (number % 4) + 1, 1)
    tz = timezone.get_current_timezone()
    return timezone.make_aware(start, tz), timezone.make_aware(end, tz)


# Filters by the quarter an initiative first left framing (its cohort) or first launched:
# the dashboard's trend tables count with them.
QUARTER_FILTERS = {"cohort": T.APPROVE_FRAME, "launched_in": T.PASS_REVIEW}


# How far initiatives got, as the dashboard's conversion counts them and the list filters
# them: one definition for both, so each of those numbers links to exactly its initiatives.
PROGRESS = {
    "left_frame": ("Left framing", Q(took_approve_frame=True)),
    "reached_narrow": ("Reached narrow launch", Q(took_pass_review=True)),
    "reached_wide": ("Reached wide launch", Q(took_widen=True)),
    "stopped_after_frame": (
        "Stopped after framing",
        Q(took_approve_frame=True, stage=Stage.STOPPED),
    ),
    "in_flight": (
        "Left framing, still in flight",
        Q(took_approve_frame=True, took_widen=False) & ~Q(stage=Stage.STOPPED),
    ),
}
# What changed lately, as the dashboard counts it and the list filters it: initiatives with
# a gate decision, a flag raised or a flag cleared in the last seven days.
RECENT_DAYS = 7


def _changed(model, field: str, since: datetime) -> Exists:
    return Exists(model.objects.filter(initiative=OuterRef("pk"), **{f"{field}__gte": since}))


CHANGES = {
    "decided": ("A gate decision", lambda since: _changed(GateDecision, "decided_at", since)),
    "flagged": ("A flag raised", lambda since: _changed(PurgatoryFlag, "raised_at", since)),
    "cleared": ("A flag cleared", lambda since: _changed(PurgatoryFlag, "cleared_at", since)),
}


def recent_since(now: datetime) -> datetime:
    return now - timedelta(days=RECENT_DAYS)


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
    owner = PersonFilter(owners_named, kind="owner", label="Owner")
    sponsor = PersonFilter(sponsors_named, kind="sponsor", label="Sponsor")
    flag = forms.ChoiceField(
        required=False,
        choices=[("", "Any or none"), (ANY_FLAG, "Any flag"), *FlagKind.choices],
        label="Flag",
    )
    verdict = forms.ChoiceField(
        required=False,
        choices=[
            ("", "Any status"),
            *Verdict.choices,
            (NOT_COMPUTED, "Not computed"),
            (NO_METRIC, "No primary metric"),
        ],
        label="Metric status",
    )
    progress = forms.ChoiceField(
        required=False,
        choices=[("", "Any"), *((key, label) for key, (label, _) in PROGRESS.items())],
        label="Progress",
    )
    stop_reason = forms.ChoiceField(
        required=False, choices=[("", "Any reason"), *StopReason.choices], label="Stop reason"
    )
    cohort = forms.RegexField(
        regex=QUARTER,
        required=False,
        label="Left framing in",
        widget=forms.TextInput(attrs={"placeholder": "2026Q3", "size": 7}),
    )
    launched_in = forms.RegexField(
        regex=QUARTER,
        required=False,
        label="Launched in",
        widget=forms.TextInput(attrs={"placeholder": "2026Q3", "size": 7}),
    )
    changed = forms.ChoiceField(
        required=False,
        choices=[("", "Any time"), *((key, label) for key, (label, _) in CHANGES.items())],
        label=f"In the last {RECENT_DAYS} days",
    )
    running_cost = forms.RegexField(
        regex=COST,
        required=False,
        label="Running cost in",
        widget=forms.TextInput(attrs={"placeholder": "EUR, none", "size": 9}),
    )
    sort = forms.CharField(required=False, max_length=20)


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
        elif verdict == NO_METRIC:
            qs = qs.filter(~Exists(primary))
        else:
            qs = qs.filter(Exists(primary.filter(latest_snapshot__verdict=verdict)))
    if progress := filters.get("progress"):
        qs = qs.annotate(**milestones()).filter(PROGRESS[progress][1])
    if stop_reason := filters.get("stop_reason"):
        qs = qs.filter(stop_reason=stop_reason)
    if changed := filters.get("changed"):
        qs = qs.filter(CHANGES[changed][1](recent_since(timezone.now())))
    if currency := filters.get("running_cost"):
        qs = qs.annotate(cost_currency=running_cost_currency())
        if currency == NO_COST:
            qs = qs.filter(cost_currency__isnull=True)
        else:
            qs = qs.filter(cost_currency=currency)
    for name, transition in QUARTER_FILTERS.items():
        if quarter := filters.get(name):
            start, end = quarter_bounds(quarter)
            first = f"first_{transition}_at"
            qs = qs.annotate(**{first: first_decision(transition)}).filter(
                **{f"{first}__gte": start, f"{first}__lt": end}
            )
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
