"""The review page's context: the items with the forms this person may use, who may decide
the review, and the ownership changes made while it is open.

Kept out of the view so the view only translates HTTP; every read comes from a selector in
`readiness.queries` and none runs per item, so the page's queries stay flat.
"""

from gates.criteria import registry
from gates.forms import DecisionForm
from gates.stages import Transition
from metrics import queries as metric_queries
from portfolio.permissions import may_decide_review, may_own
from portfolio.roles import is_programme_manager
from readiness import queries
from readiness.forms import AssignForm, CheckForm
from readiness.models import SystemEvidence
from readiness.services import names


def review_context(*, initiative, review, user, bound: dict | None = None) -> dict:
    """`bound` holds forms posted back with errors, keyed ("assign" | "check", item id) or
    ("decide", transition), and the pending confirmation of an assignment, keyed
    ("confirm", item id) with its warning."""
    bound = bound or {}
    decides = review.is_open and may_decide_review(initiative, user)
    people = AssignForm.people_choices() if decides else None
    # The role bounds every power: a viewer writes nothing, even on an item naming them.
    writes = review.is_open and may_own(user)
    rows = [_row(item, user, writes, decides, people, bound) for item in review.items.all()]
    evidence_kinds = {row["template"].system_evidence for row in rows}
    # Who may decide, and what changed hands, matter only while the review is open.
    deciders = queries.eligible_deciders(initiative, review=review) if review.is_open else None
    return {
        "initiative": initiative,
        "review": review,
        "rows": rows,
        "checked": sum(1 for row in rows if row["item"].checked),
        "decisions": _decisions(initiative, bound) if decides else [],
        "may_decide": decides,
        "deciders": deciders,
        "decider_names": names(deciders or []),
        "holds_stake": review.is_open and not decides and is_programme_manager(user),
        "ownership_changes": queries.ownership_changes(initiative, since=review.opened_at)
        if review.is_open
        else [],
        "deliveries": metric_queries.delivery_record(initiative)
        if SystemEvidence.FEED_DELIVERIES in evidence_kinds
        else None,
        "past_reviews": queries.reviews_of(initiative),
    }


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
