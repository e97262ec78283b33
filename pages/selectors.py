"""Page selectors: each page's data assembled by one function, callable without HTTP."""

from dataclasses import dataclass, field, fields
from datetime import datetime
from urllib.parse import urlencode

from django.core import paginator
from django.db.models import QuerySet
from django.http import QueryDict
from django.utils import timezone

from gates import services as gate_services
from gates.criteria import Outcome, registry
from gates.forms import DecisionForm
from gates.models import AuditEntry
from gates.stages import NEXT_GATE, PATH, Stage, Transition
from metrics import charts, rollups
from metrics import queries as metric_queries
from metrics.display import compared
from metrics.models import Cohort, Verdict
from metrics.status import AGGREGATE_WORD
from notifications import snooze
from notifications.forms import SnoozeForm
from pages import budget, dashboard, listing
from pages.forms import SUGGESTIONS, DashboardFilter, people_matching, person_label
from portfolio import permissions, queries, services
from portfolio.models import FlagKind, Initiative
from portfolio.permissions import may_decide_review, may_own
from portfolio.queries import owners_named, sponsors_named
from portfolio.roles import is_programme_manager
from readiness import queries as review_queries
from readiness.forms import AssignForm, AssignManyForm, CheckForm
from readiness.models import ReadinessReview, SystemEvidence
from readiness.queries import running_costs
from readiness.services import may_complete, names
from value import permissions as value_permissions
from value.queries import Budget, budget_of
from value.realised import Realised, value_of


class Page:
    def context(self) -> dict:
        """The template's context: one name per field."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class DashboardPage(Page):
    figures: dict
    scope: str
    selected_unit: str
    selected_sponsor: int | None
    # What a printout states: which filter it shows, for whom, and when it was printed.
    unit_name: str
    sponsor_name: str
    printed_by: str
    printed_at: datetime

    def context(self) -> dict:
        """The figures by their own names, as the template reads them, and the scope."""
        context = super().context()
        return {**context.pop("figures"), **context}


def dashboard_page(*, params: QueryDict, user=None) -> DashboardPage:
    """The portfolio dashboard for `user`, filtered by business unit and sponsor from the
    URL's `params`. The figures come from the dashboard's cache while nothing they show
    changed; their `as_of` says when they were computed."""
    filters = DashboardFilter(params or None).values()
    unit, sponsor = filters.get("unit"), filters.get("sponsor")
    return DashboardPage(
        figures=dashboard.cached_figures(unit=unit, sponsor=sponsor),
        scope=_query(filters),
        selected_unit=unit.slug if unit else "",
        selected_sponsor=sponsor.pk if sponsor else None,
        unit_name=unit.name if unit else "all business units",
        sponsor_name=str(sponsor) if sponsor else "all sponsors",
        printed_by="" if user is None else str(user),
        printed_at=timezone.now(),
    )


def _query(filters: dict) -> str:
    """The dashboard's scope as list filters, so its numbers link to the initiatives."""
    params = {}
    if filters.get("unit"):
        params["unit"] = filters["unit"].slug
    if filters.get("sponsor"):
        params["sponsor"] = filters["sponsor"].pk
    return urlencode(params)


@dataclass
class BudgetRequestsPage(Page):
    form: budget.RequestFilter
    page: paginator.Page
    query: str
    filtered: bool


REQUESTS_PER_PAGE = 50


def budget_requests_page(*, params: QueryDict) -> BudgetRequestsPage:
    form = budget.RequestFilter(params or None)
    filters = form.values()
    base = dashboard.scoped(unit=filters.get("unit"), sponsor=filters.get("sponsor"))
    pages = paginator.Paginator(budget.requests_matching(base, filters), REQUESTS_PER_PAGE)
    query = params.copy()
    query.pop("page", None)
    return BudgetRequestsPage(
        form=form,
        page=pages.get_page(params.get("page")),
        query=query.urlencode(),
        filtered=bool(filters),
    )


def value_export_rows(*, params: QueryDict, base_url: str):
    filters = DashboardFilter(params or None).values()
    base = dashboard.scoped(unit=filters.get("unit"), sponsor=filters.get("sponsor"))
    return budget.export_rows(base, as_of=timezone.now(), base_url=base_url)


@dataclass
class ListPage(Page):
    form: listing.ListFilter
    page: paginator.Page
    query: str
    sort: str
    sort_links: dict[str, str]
    columns: list[dict]
    filtered: bool
    may_create: bool


LIST_COLUMNS = [
    ("title", "Initiative", ""),
    ("stage", "Stage", ""),
    ("unit", "Business unit", ""),
    ("owner", "Business owner", ""),
    ("", "Delivery lead", ""),
    ("days", "Days in stage", "num"),
    ("verdict", "Metric status", ""),
    ("flags", "Flags", ""),
]
LIST_PAGE_SIZE = 50


# The people a person filter offers, by the field's kind.
PERSON_KINDS = {"owner": owners_named, "sponsor": sponsors_named}


def suggest_people(kind: str, text: str) -> list[dict]:
    """Up to `SUGGESTIONS` people of `kind` ("owner" or "sponsor") whose name or username
    starts with `text`, as the list's person boxes offer them while one types."""
    text = text.strip()[:150]
    if not text:
        return []
    people = people_matching(PERSON_KINDS[kind](), text)[:SUGGESTIONS]
    return [{"id": person.pk, "label": person_label(person)} for person in people]


def list_filters(params: QueryDict) -> tuple[listing.ListFilter, dict]:
    """The list's filter form for the URL's `params` and its valid values; the CSV export
    reads the same filters."""
    form = listing.ListFilter(params or None)
    return form, form.values()


def list_page(*, user, params: QueryDict) -> ListPage:
    """One page of the initiative list for `user`, filtered, sorted and paged by the URL's
    `params`, with the links that sort by each column."""
    form, filters = list_filters(params)
    pages = paginator.Paginator(listing.page_ids(filters), LIST_PAGE_SIZE)
    # Counted without the sort's joins and grouping (flags, metric status): the same
    # initiatives, at the cost of a plain count.
    pages.count = listing.matching(filters).count()
    page = pages.get_page(params.get("page"))
    page.object_list = listing.rows(list(page.object_list))
    query = params.copy()
    query.pop("page", None)
    sort = filters.get("sort") or "title"
    links = _sort_links(query, sort)
    return ListPage(
        form=form,
        page=page,
        query=query.urlencode(),
        sort=sort,
        sort_links=links,
        columns=_columns(links, sort),
        filtered=any(v for k, v in filters.items() if k != "sort"),
        may_create=permissions.may_create_initiative(user),
    )


def _columns(links: dict[str, str], sort: str) -> list[dict]:
    """The list's column headers, each with its sort link and the order it shows, worked out
    here rather than by a loop over the links in every header."""
    order = "descending" if sort.startswith("-") else "ascending"
    return [
        {
            "key": key,
            "label": label,
            "cls": cls,
            "link": links.get(key, ""),
            "order": order if key and key == sort.lstrip("-") else "",
        }
        for key, label, cls in LIST_COLUMNS
    ]


def _sort_links(params: QueryDict, current: str) -> dict[str, str]:
    """For each sortable column, the query string that sorts by it (toggling direction)."""
    links = {}
    for name in listing.SORTS:
        query = params.copy()
        query["sort"] = f"-{name}" if current == name else name
        links[name] = query.urlencode()
    return links


@dataclass
class InitiativePage(Page):
    initiative: Initiative
    lever_outcomes: list[Outcome]
    wide_alert: dict | None
    stepper: list[dict]
    next_gate: Transition | None
    next_outcomes: list[Outcome]
    actions: list[dict]
    decisions: QuerySet
    metrics: list[dict]
    feeds: QuerySet
    reviews: list[ReadinessReview]
    open_review: ReadinessReview | None
    work_items: list[dict]
    may_edit: bool
    may_manage_feeds: bool
    frozen: bool
    may_reframe: bool
    may_propose: bool
    proposals: QuerySet
    timeline: list[AuditEntry]
    timeline_shown: int
    # Active purgatory flags, each with the snooze in force and, for those who may, its form.
    flags: list[dict] = field(default_factory=list)
    value: Realised | None = None
    budget: Budget | None = None
    may_request_budget: bool = False


def initiative_page(
    *, initiative: Initiative, user, bound_form: DecisionForm | None = None
) -> InitiativePage:
    """The initiative page for `user`: criteria of the gates ahead, the decision forms the
    user may use (`bound_form` in place of its blank one), metrics, reviews, work, history.
    `initiative` comes from `pages.queries.initiative_detail`, with what the page reads."""
    next_gate = NEXT_GATE.get(initiative.stage)
    outcomes = {}
    if next_gate:
        outcomes[next_gate] = registry.evaluate(initiative, next_gate)
    actions = []
    # The forward gate first, the ways back or out after it.
    ordered = sorted(gate_services.user_transitions(initiative, user), key=lambda n: n != next_gate)
    for name in ordered:
        if name not in outcomes:
            outcomes[name] = registry.evaluate(initiative, name)
        form = (
            bound_form
            if bound_form is not None and bound_form.transition == name
            else DecisionForm(transition=name, initial={"expected_stage": initiative.stage})
        )
        actions.append(
            {
                "transition": Transition(name),
                "form": form,
                "outcomes": outcomes[name],
                "blocked": any(o.blocks for o in outcomes[name]),
                "open": form is bound_form,
            }
        )
    # Wide launch has no gate ahead, but keeps a lever: what the data says about rolling back.
    lever = []
    if initiative.stage == Stage.WIDE_LAUNCH:
        lever = outcomes.get(Transition.ROLL_BACK) or registry.evaluate(
            initiative, Transition.ROLL_BACK
        )
    reviews = list(review_queries.reviews_of(initiative))
    return InitiativePage(
        initiative=initiative,
        lever_outcomes=lever,
        wide_alert=_wide_alert(initiative, levers=[a["transition"] for a in actions])
        if initiative.stage == Stage.WIDE_LAUNCH
        else None,
        stepper=_stepper(initiative, latest_review=reviews[0] if reviews else None),
        next_gate=Transition(next_gate) if next_gate else None,
        next_outcomes=outcomes.get(next_gate, []),
        actions=actions,
        decisions=initiative.decisions.all(),
        metrics=_metric_panels(initiative),
        feeds=initiative.feeds.all(),
        reviews=reviews,
        open_review=next((r for r in reviews if r.is_open), None),
        work_items=[
            {**row, "may_change": may_complete(row["item"], user)}
            for row in review_queries.work_of(initiative)
        ],
        may_edit=permissions.may_edit_framing(initiative, user),
        may_manage_feeds=permissions.may_manage_feeds(initiative, user),
        frozen=services.is_frozen(initiative),
        may_reframe=services.is_frozen(initiative)
        and initiative.stage != Stage.STOPPED
        and permissions.may_reframe(initiative, user),
        may_propose=services.is_frozen(initiative)
        and initiative.stage != Stage.STOPPED
        and permissions.may_propose_reframe(initiative, user),
        proposals=queries.open_proposals(initiative),
        timeline=list(queries.audit_trail(initiative).reverse()[:TIMELINE_ENTRIES]),
        timeline_shown=TIMELINE_SHOWN,
        flags=_flags(initiative, user),
        value=value_of(
            initiative,
            initiative.primary_metric,
            running_costs([initiative.pk]).get(initiative.pk),
        ),
        budget=budget_of(initiative),
        may_request_budget=initiative.stage != Stage.STOPPED
        and value_permissions.may_request(initiative, user),
    )


def _flags(initiative, user) -> list[dict]:
    """The initiative's active flags, oldest problem first, with the snooze of each: two
    queries, whatever the number of flags."""
    flags = sorted(
        initiative.flags.filter(cleared_at__isnull=True), key=lambda f: (f.problem_since, f.pk)
    )
    snoozes = snooze.snoozes_for(f.pk for f in flags)
    may = snooze.may_snooze(initiative, user)
    return [
        {
            "flag": f,
            "snooze": snoozes.get(f.pk),
            "form": SnoozeForm(auto_id=f"snooze-{f.pk}-%s") if may else None,
        }
        for f in flags
    ]


def _wide_alert(initiative, *, levers: list[str]) -> dict | None:
    """For a wide launch whose primary metric is below its ship threshold: the problem in
    numbers (one precision rule, units, direction), since when, and the levers this user
    holds (roll back to the narrow audience, stop). None while the metric is not below."""
    metric = initiative.primary_metric
    snapshot = metric.latest_snapshot if metric is not None else None
    if snapshot is None or snapshot.verdict != Verdict.BELOW:
        return None
    below = (
        initiative.flags.filter(cleared_at__isnull=True, kind=FlagKind.BELOW_THRESHOLD)
        .order_by("raised_at")
        .first()
    )
    return {
        "metric": metric,
        "snapshot": snapshot,
        **compared(
            snapshot.pilot_value,
            metric.ship_threshold,
            unit=metric.unit,
            higher_is_better=metric.higher_is_better,
        ),
        "direction": metric.get_direction_display(),
        "below_since": None if below is None else below.problem_since,
        "may_roll_back": Transition.ROLL_BACK in levers,
        "may_stop": Transition.STOP in levers,
    }


# The history shows the newest entries; the rest fold away, and the export has them all.
TIMELINE_ENTRIES = 100
TIMELINE_SHOWN = 8


def _metric_panels(initiative) -> list[dict]:
    """Each metric with its latest snapshot and its daily trend (pilot and baseline cohort
    per day, from the rollups: one query for every metric)."""
    metrics = list(initiative.metrics.all())
    now = timezone.now()
    days = charts.span(max((m.comparison_window_days for m in metrics), default=1))
    series = rollups.dailies(metrics, cohorts=(Cohort.PILOT, Cohort.BASELINE), days=days, now=now)
    panels = []
    for m in metrics:
        pilot = series[m.pk][Cohort.PILOT]
        baseline = {d.day: d for d in series[m.pk][Cohort.BASELINE]}
        shown = charts.span(m.comparison_window_days)
        pilot = [d for d in pilot if (now.date() - d.day).days < shown]
        panels.append(
            {
                "metric": m,
                "snapshot": m.latest_snapshot,
                "chart": charts.trend(
                    pilot,
                    today=now.date(),
                    window_days=m.comparison_window_days,
                    threshold=None if m.ship_threshold is None else float(m.ship_threshold),
                    baseline=None if m.baseline is None else float(m.baseline),
                    figure=AGGREGATE_WORD[m.aggregation],
                    unit=m.unit,
                ),
                # The table alternative, newest day first.
                "days": [(d, baseline.get(d.day)) for d in reversed(pilot)],
            }
        )
    return panels


def _stepper(initiative, *, latest_review=None) -> list[dict]:
    """The path's stages marked done, current or ahead; a stopped initiative shows where.
    The readiness review step links to the latest review, once there is one."""
    stage = initiative.stage
    stopped = stage == Stage.STOPPED
    if stopped:
        last = next(iter(initiative.decisions.all()), None)
        stage = last.from_stage if last else Stage.FRAME
    reached = PATH.index(stage)
    here = "stopped" if stopped else "current"
    return [
        {
            "label": f"Stopped in {s.label.lower()}" if stopped and i == reached else s.label,
            "state": "done" if i < reached else here if i == reached else "ahead",
            "url": latest_review.get_absolute_url()
            if latest_review is not None and s == Stage.READINESS_REVIEW
            else "",
        }
        for i, s in enumerate(PATH)
    ]


@dataclass
class ReviewPage(Page):
    initiative: Initiative
    review: ReadinessReview
    rows: list[dict]
    checked: int
    decisions: list[dict]
    may_decide: bool
    deciders: list | None
    decider_names: str
    holds_stake: bool
    ownership_changes: list
    deliveries: object | None
    past_reviews: QuerySet
    assign_many: AssignManyForm | None = None
    confirm_many: str | None = None


def review_page(*, initiative, review, user, bound: dict | None = None) -> ReviewPage:
    """The readiness review page for `user`: the items with the forms this person may use,
    who may decide the review, and the ownership changes made while it is open. No read
    runs per item, so the page's queries stay flat.

    `bound` holds forms posted back with errors, keyed ("assign" | "check", item id),
    ("decide", transition) or ("assign_many",), and the pending confirmation of an
    assignment, keyed ("confirm", item id) or ("confirm_many",), with its warning."""
    bound = bound or {}
    decides = review.is_open and may_decide_review(initiative, user)
    people = AssignForm.people_choices() if decides else None
    # The role bounds every power: a viewer writes nothing, even on an item naming them.
    writes = review.is_open and may_own(user)
    rows = [_row(item, user, writes, decides, people, bound) for item in review.items.all()]
    evidence_kinds = {row["template"].system_evidence for row in rows}
    # Who may decide, and what changed hands, matter only while the review is open.
    deciders = (
        review_queries.eligible_deciders(initiative, review=review) if review.is_open else None
    )
    return ReviewPage(
        initiative=initiative,
        review=review,
        rows=rows,
        checked=sum(1 for row in rows if row["item"].checked),
        decisions=_decisions(initiative, bound) if decides else [],
        may_decide=decides,
        deciders=deciders,
        decider_names=names(deciders or []),
        holds_stake=review.is_open and not decides and is_programme_manager(user),
        ownership_changes=review_queries.ownership_changes(initiative, since=review.opened_at)
        if review.is_open
        else [],
        deliveries=metric_queries.delivery_record(initiative)
        if SystemEvidence.FEED_DELIVERIES in evidence_kinds
        else None,
        past_reviews=review_queries.reviews_of(initiative),
        assign_many=_assign_many(review, people, bound) if decides else None,
        confirm_many=bound.get(("confirm_many",)),
    )


def _assign_many(review, people, bound: dict) -> AssignManyForm | None:
    """The form giving several items to one person, while two or more are left to check."""
    form = bound.get(("assign_many",))
    if form is not None:
        return form
    items = list(review.items.all())
    if sum(1 for item in items if not item.checked) < 2:
        return None
    return AssignManyForm(review_items=items, choices=people)


def _row(item, user, writes: bool, decides: bool, people, bound: dict) -> dict:
    template_item = item.template_item
    mine = writes and item.assignee_id == user.pk
    assign_form = bound.get(("assign", item.pk))
    if assign_form is None and decides:
        assign_form = AssignForm(
            initial={"assignee": item.assignee_id, "version": item.version},
            prefix=f"a{item.pk}",
            choices=people,
        )
    check_form = bound.get(("check", item.pk))
    if check_form is None and mine and not item.checked:
        check_form = CheckForm(
            initial={
                "version": item.version,
                "evidence_text": item.evidence_text,
                "evidence_url": item.evidence_url,
            },
            asks_numbers=template_item.asks_numbers,
            prefix=f"c{item.pk}",
        )
    return {
        "item": item,
        "template": template_item,
        "assign_form": assign_form,
        "confirm": bound.get(("confirm", item.pk)),
        "check_form": check_form,
        "may_uncheck": mine and item.checked,
    }


def _decisions(initiative, bound: dict) -> list[dict]:
    decisions = []
    for name in (Transition.PASS_REVIEW, Transition.FAIL_REVIEW):
        form = bound.get(("decide", name)) or DecisionForm(
            transition=name, initial={"expected_stage": initiative.stage}
        )
        outcomes = registry.evaluate(initiative, name)
        decisions.append(
            {
                "transition": Transition(name),
                "form": form,
                "outcomes": outcomes,
                "blocked": any(o.blocks for o in outcomes),
                "open": form.is_bound,
            }
        )
    return decisions
