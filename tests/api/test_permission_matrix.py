"""Every transition, every kind of person: the API refuses exactly whom the pages refuse.

The pages decide by `gates.services.may_take` (DESIGN.md's table, bounded by the role); the
API must answer 403 to the same people and act for the others, with the criteria set to pass
so that only the permission decides.
"""

import pytest

from gates import services
from gates.stages import Stage
from gates.stages import Transition as T
from portfolio.roles import Role
from tests.factories import InitiativeFactory, UserFactory
from tests.helpers import advance, criteria_passing

pytestmark = pytest.mark.django_db

# Each transition from the stage it leaves (stop: from thin slice, as any stoppable stage).
FROM = {
    T.APPROVE_FRAME: Stage.FRAME,
    T.SUBMIT_FOR_REVIEW: Stage.THIN_SLICE,
    T.PASS_REVIEW: Stage.READINESS_REVIEW,
    T.FAIL_REVIEW: Stage.READINESS_REVIEW,
    T.WIDEN: Stage.NARROW_LAUNCH,
    T.ROLL_BACK: Stage.WIDE_LAUNCH,
    T.STOP: Stage.THIN_SLICE,
    T.REOPEN: Stage.STOPPED,
}
PEOPLE = ["executive", "programme_manager", "business_owner", "delivery_lead", "other_owner",
          "viewer"]  # fmt: skip


def person(kind: str, initiative):
    if kind == "business_owner":
        return initiative.business_owner
    if kind == "delivery_lead":
        return initiative.delivery_lead
    role = {"other_owner": Role.OWNER}.get(kind, kind)
    return UserFactory(role=role)


@pytest.mark.parametrize("kind", PEOPLE)
@pytest.mark.parametrize("transition", list(FROM), ids=lambda t: t.value)
def test_the_api_refuses_whom_the_pages_refuse(api_as, manager, transition, kind):
    initiative = InitiativeFactory(framed=True)
    advance(initiative, FROM[transition], user=manager)
    # The programme manager who moved it along holds no stake; a fresh one decides here.
    who = person(kind, initiative)
    allowed = services.may_take(initiative, transition, who)
    with criteria_passing():
        response = api_as(who).post(
            f"/api/v1/initiatives/{initiative.slug}/transitions/{transition.value}",
            {
                "rationale": "Decided through the API.",
                "expected_stage": initiative.stage,
                "stop_reason": "other" if transition == T.STOP else "",
            },
        )
    initiative.refresh_from_db()
    if allowed:
        assert response.status_code == 201, response.content
        assert initiative.stage != FROM[transition]
    else:
        assert response.status_code == 403, response.content
        assert initiative.stage == FROM[transition]
