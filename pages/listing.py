"""The initiative list: filters from the URL, sorting, and the CSV export.

A page of the list is four queries whatever the portfolio's size: the count, the page's ids
in order (filters and the sort key only), those initiatives with what the list shows of them,
and their active flags.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django import forms
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    FilteredRelation,
    Min,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from gates.models import GateDecision
from gates.stages import LAUNCHED, Stage, StopReason
from gates.stages import Transition as T
from metrics.models import Metric, Verdict
from pages.forms import PersonFilter, QuickInput, QuickSelect, ScopeFilter, unit_field
from portfolio.models import FlagKind, Initiative, PurgatoryFlag, stage_order
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


MILESTONES = {"took_approve_frame": T.APPROVE_FRAME, "took_pass_review": T.PASS_REVIEW,
              "took_widen": T.WIDEN}  # fmt: skip


def with_grouped_milestones(qs: QuerySet) -> QuerySet:
    """`qs` annotated with the flags of `milestones` (and `left_at`, when it first left
    framing) for counting many initiatives at once: the initiatives' decisions are grouped
    once, instead of three lookups per initiative. The flags mean the same, so PROGRESS
    counts with either; aggregate over the result (its rows are groups)."""
    counted = {
        f"{name}_n": Count("decisions", filter=Q(decisions__transition=transition))
        for name, transition in MILESTONES.items()
    }
    left_at = Min("decisions__decided_at", filter=Q(decisions__transition=T.APPROVE_FRAME))
    return qs.annotate(**counted, left_at=left_at).annotate(
        **{
            name: ExpressionWrapper(Q(**{f"{name}_n__gt": 0}), output_field=BooleanField())
            for name in MILESTONES
        }
    )


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


STAGE_ORDER = stage_order()
# Sort keys a URL may name; "-" in front reverses the first field. Ties fall back to the title,
# then the id, so that pages never overlap. Names and titles sort as a person reads them ("api
# gateway" between "Alpha" and "Beta", not after "Z"), on the case-folded keys the database
# keeps (`Initiative.title_key` and the like).
SORTS = {
    "title": ("title_key",),
    "stage": ("stage_order", "title_key"),
    "unit": ("business_unit__name_key", "title_key"),
    "owner": ("business_owner__last_name_key", "business_owner__first_name_key", "title_key"),
    "days": ("stage_entered_at", "title_key"),
    "verdict": ("primary_verdict", "title_key"),
    "flags": ("flag_count", "title_key"),
}


# Keys whose column runs opposite to the field: more days in stage is an earlier entry time.
REVERSED = {"days"}


class ListFilter(ScopeFilter):
    """The list's filters, all optional; invalid values are ignored rather than erroring."""

    q = forms.CharField(required=False, max_length=100, label="Search", widget=QuickInput)
    stage = forms.ChoiceField(
        widget=QuickSelect,
        required=False,
        choices=[("", "All stages"), *Stage.choices, (LAUNCHED_FILTER, "Narrow or wide launch")],
    )
    unit = unit_field("All units")
    owner = PersonFilter(owners_named, kind="owner", label="Owner")
    sponsor = PersonFilter(sponsors_named, kind="sponsor", label="Sponsor")
    flag = forms.ChoiceField(
        widget=QuickSelect,
        required=False,
        choices=[("", "Any or none"), (ANY_FLAG, "Any flag"), *FlagKind.choices],
        label="Flag",
    )
    verdict = forms.ChoiceField(
        widget=QuickSelect,
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
        widget=QuickSelect,
        required=False,
        choices=[("", "Any"), *((key, label) for key, (label, _) in PROGRESS.items())],
        label="Progress",
    )
    stop_reason = forms.ChoiceField(
        widget=QuickSelect,
        required=False,
        choices=[("", "Any reason"), *StopReason.choices],
        label="Stop reason",
    )
    cohort = forms.RegexField(
        regex=QUARTER,
        required=False,
        label="Left framing in",
        widget=QuickInput(attrs={"placeholder": "2026Q3", "size": 7}),
    )
    launched_in = forms.RegexField(
        regex=QUARTER,
        required=False,
        label="Launched in",
        widget=QuickInput(attrs={"placeholder": "2026Q3", "size": 7}),
    )
    changed = forms.ChoiceField(
        widget=QuickSelect,
        required=False,
        choices=[("", "Any time"), *((key, label) for key, (label, _) in CHANGES.items())],
        label=f"In the last {RECENT_DAYS} days",
    )
    running_cost = forms.RegexField(
        regex=COST,
        required=False,
        label="Running cost in",
        widget=QuickInput(attrs={"placeholder": "EUR, none", "size": 9}),
    )
    sort = forms.CharField(required=False, max_length=20)


def initiatives(filters: dict) -> QuerySet:
    """Every initiative the filters match, sorted, with what the list shows of each (the
    export streams it whole; the list reads one page through `page_ids` and `rows`)."""
    return ordered(with_columns(matching(filters)), filters.get("sort"))


def _primary() -> QuerySet:
    return Metric.objects.filter(initiative=OuterRef("pk"), is_primary=True)


def _active() -> QuerySet:
    return PurgatoryFlag.objects.filter(initiative=OuterRef("pk"), cleared_at__isnull=True)


# What the list shows beyond the initiative's own row; the sorts by stage, metric status and
# flags order by these.
COLUMN_ANNOTATIONS = {
    "stage_order": lambda: STAGE_ORDER,
    "primary_verdict": lambda: Subquery(_primary().values("latest_verdict")[:1]),
    "primary_name": lambda: Subquery(_primary().values("name")[:1]),
    "flag_count": lambda: Coalesce(
        Subquery(_active().order_by().values("initiative").annotate(n=Count("pk")).values("n")[:1]),
        0,
    ),
}


def with_columns(qs: QuerySet) -> QuerySet:
    """`qs` with the people, the unit, the primary metric's name and status and the number
    of active flags of each initiative."""
    return qs.select_related("business_unit", *PEOPLE).annotate(
        **{name: column() for name, column in COLUMN_ANNOTATIONS.items()}
    )


def matching(filters: dict) -> QuerySet:
    """The initiatives the filters match, unsorted, with nothing read beyond the filters."""
    qs = Initiative.objects.all()
    primary, active = _primary(), _active()
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
            qs = qs.filter(Exists(primary.filter(latest_verdict=verdict)))
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
    return qs


def ordered(qs: QuerySet, sort: str | None) -> QuerySet:
    """`qs` in the order of `sort` from the URL, annotated with the column it sorts by when
    that is not a field."""
    for name in SORTS.get((sort or "title").lstrip("-"), SORTS["title"]):
        if name in COLUMN_ANNOTATIONS and name not in qs.query.annotations:
            qs = SORT_COLUMNS.get(name, _annotated(name))(qs)
    return qs.order_by(*sort_keys(sort))


def _annotated(name: str):
    return lambda qs: qs.annotate(**{name: COLUMN_ANNOTATIONS[name]()})


def _verdict_sort_key(qs: QuerySet) -> QuerySet:
    """The primary metric's latest verdict, as the column shows it, for sorting every
    matching initiative by it: the primary metric (at most one each) joined once, where a
    subquery would look one up per initiative."""
    return qs.annotate(
        primary_metric=FilteredRelation("metrics", condition=Q(metrics__is_primary=True)),
        primary_verdict=F("primary_metric__latest_verdict"),
    )


def _flag_sort_key(qs: QuerySet) -> QuerySet:
    """The number of active flags, for sorting every matching initiative by it: the active
    flags joined and counted once, grouped by initiative, where the column's subquery would
    count them per initiative."""
    return qs.annotate(
        active_flag=FilteredRelation("flags", condition=Q(flags__cleared_at__isnull=True)),
        flag_count=Count("active_flag"),
    )


SORT_COLUMNS = {"primary_verdict": _verdict_sort_key, "flag_count": _flag_sort_key}


def page_ids(filters: dict) -> QuerySet:
    """The ids of the matching initiatives in the list's order. The list pages through these
    and reads only the page's rows in full (`rows`): the sort then runs over the initiatives'
    ids and sort keys alone, instead of over every matching initiative joined to its people,
    unit and metric."""
    return ordered(matching(filters), filters.get("sort")).values_list("pk", flat=True)


@dataclass
class Row:
    """One initiative as the list shows it: plain values read in one query, not a model
    with its four people, which cost more to build than the page takes to render."""

    pk: int
    title: str
    slug: str
    url: str
    stage: str
    stage_label: str
    unit: str
    business_owner: str  # a name, or "" when nobody is named
    delivery_lead: str
    days_in_stage: int
    primary_verdict: str | None
    verdict_label: str
    active_flags: list[PurgatoryFlag] = field(default_factory=list)

    def get_absolute_url(self) -> str:
        return self.url


SLUG = "slug-of-the-row"
ROW_FIELDS = ("pk", "title", "slug", "stage", "stage_entered_at", "business_unit__name")
ROW_PEOPLE = ("business_owner", "delivery_lead")


def rows(ids: list[int]) -> list[Row]:
    """The initiatives of `ids`, in that order, as the list shows them, with their active
    flags: two queries."""
    names = [f"{p}__{f}" for p in ROW_PEOPLE for f in ("first_name", "last_name", "username")]
    found = (
        Initiative.objects.filter(pk__in=ids)
        .annotate(primary_verdict=COLUMN_ANNOTATIONS["primary_verdict"]())
        .order_by()
        .values_list(*ROW_FIELDS, *names, "primary_verdict")
    )
    flags: dict[int, list[PurgatoryFlag]] = {}
    for flag in PurgatoryFlag.objects.filter(initiative__in=ids, cleared_at__isnull=True).order_by(
        "kind", "pk"
    ):
        flags.setdefault(flag.initiative_id, []).append(flag)
    now, stages, verdicts = timezone.now(), dict(Stage.choices), dict(Verdict.choices)
    # One reverse() for the page, not one per row: a slug needs no quoting in a URL.
    url = reverse("initiative-detail", args=[SLUG])
    by_id = {}
    for pk, title, slug, stage, entered, unit, *people, verdict in found:
        owner, lead = (_name(*people[n : n + 3]) for n in (0, 3))
        by_id[pk] = Row(
            pk=pk,
            title=title,
            slug=slug,
            url=url.replace(SLUG, slug, 1),
            stage=stage,
            stage_label=stages.get(stage, stage),
            unit=unit,
            business_owner=owner,
            delivery_lead=lead,
            days_in_stage=(now - entered).days,
            primary_verdict=verdict,
            verdict_label=verdicts.get(verdict, ""),
            active_flags=flags.get(pk, []),
        )
    return [by_id[pk] for pk in ids if pk in by_id]


def _name(first: str | None, last: str | None, username: str | None) -> str:
    """A person as `User.__str__` names them; "" for nobody."""
    if username is None:
        return ""
    return f"{first} {last}".strip() or username


def sort_keys(sort: str | None) -> list:
    """The ORDER BY of a sort from the URL. A missing value (no business owner, no metric
    status) sorts last in both directions, on PostgreSQL and SQLite alike."""
    name = (sort or "title").lstrip("-")
    descending = ((sort or "").startswith("-") and name in SORTS) != (name in REVERSED)
    first, *rest = SORTS.get(name, SORTS["title"])
    key = F(first).desc(**_nulls(first)) if descending else F(first).asc(**_nulls(first))
    return [key, *(F(f).asc(**_nulls(f)) for f in rest), "pk"]


# Sort keys that may be missing. The others are never NULL, and are sorted without a NULLS
# clause: a descending sort then reads an ascending index backwards.
NULLABLE = {"business_owner__last_name_key", "business_owner__first_name_key", "primary_verdict"}


def _nulls(key: str) -> dict:
    return {"nulls_last": True} if key in NULLABLE else {}


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
