"""Page selectors: each page's data assembled by one function, callable without HTTP."""

from dataclasses import dataclass, fields

from django.db.models import QuerySet

from gates import services as gate_services
from gates.criteria import Outcome, registry
from gates.forms import DecisionForm
from gates.models import AuditEntry
from gates.stages import NEXT_GATE, PATH, Stage, Transition
from metrics.charts import trend
from metrics.queries import recent_snapshots
from portfolio import permissions, queries, services
from portfolio.models import Initiative
from readiness.models import ReadinessReview
from readiness.queries import reviews_of, work_of
from readiness.services import may_complete


class Page:
    def context(self) -> dict:
        """The template's context: one name per field."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class InitiativePage(Page):
    initiative: Initiative
    lever_outcomes: list[Outcome]
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
    reviews = list(reviews_of(initiative))
    return InitiativePage(
        initiative=initiative,
        lever_outcomes=lever,
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
            {**row, "may_change": may_complete(row["item"], user)} for row in work_of(initiative)
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
    )


# The history shows the newest entries; the rest fold away, and the export has them all.
TIMELINE_ENTRIES = 100
TIMELINE_SHOWN = 8


def _metric_panels(initiative) -> list[dict]:
    metrics = list(initiative.metrics.all())
    history = recent_snapshots(m.pk for m in metrics)
    return [
        {
            "metric": m,
            "snapshot": m.latest_snapshot,
            "history": history.get(m.pk, []),
            "chart": trend(
                history.get(m.pk, []),
                threshold=None if m.ship_threshold is None else float(m.ship_threshold),
                baseline=None if m.baseline is None else float(m.baseline),
            ),
        }
        for m in metrics
    ]


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
