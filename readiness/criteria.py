"""Gate criteria from the readiness review: gate 3's checklist and gate 4's pre-launch work.

Their `order` puts the checklist before gate 3's named owner and audience (20, 30), and the
work items last in gate 4, after the window (10) and metrics' pilot numbers (20, 30).
"""

from gates.criteria import Result, registry
from gates.stages import Transition as T
from readiness.models import ReviewOutcome, WorkStatus


@registry.register(
    T.PASS_REVIEW, key="checklist_complete", label="Readiness checklist complete", order=10
)
def checklist_complete(initiative) -> Result:
    review = initiative.reviews.filter(outcome=ReviewOutcome.OPEN).first()
    if review is None:
        return Result(False, "No readiness review is open.")
    items = list(review.items.select_related("template_item"))
    if not items:
        return Result(False, "The review's checklist has no items.")
    unchecked = [item.template_item.title for item in items if not item.checked]
    if not unchecked:
        return Result(True, f"All {len(items)} checklist items are checked with evidence.")
    return Result(
        False,
        f"{len(unchecked)} of {len(items)} items are not checked: {'; '.join(unchecked)}.",
    )


@registry.register(
    T.WIDEN, key="no_open_work_items", label="No open pre-launch work items", order=40
)
def no_open_work_items(initiative) -> Result:
    titles = list(
        initiative.work_items.filter(status=WorkStatus.OPEN).values_list("title", flat=True)
    )
    if not titles:
        return Result(True, "No pre-launch work item is open.")
    return Result(False, f"{len(titles)} pre-launch work item(s) open: {'; '.join(titles)}.")
