"""Page selectors assemble a page's data without HTTP, in a fixed number of queries."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from gates.forms import DecisionForm
from gates.stages import Transition as T
from pages import selectors
from pages.queries import initiative_detail
from tests.factories import InitiativeFactory


def page_for(initiative, user, **kwargs):
    return selectors.initiative_page(
        initiative=initiative_detail(initiative.slug).get(), user=user, **kwargs
    )


def test_the_initiative_page_offers_a_manager_the_next_gate_first(db, manager):
    initiative = InitiativeFactory(framed=True)
    page = page_for(initiative, manager)
    assert page.next_gate == T.APPROVE_FRAME
    assert page.actions[0]["transition"] == T.APPROVE_FRAME
    assert {o.key for o in page.next_outcomes} >= {"decision_defined", "ship_threshold_set"}
    assert page.may_edit and not page.frozen
    assert [s["state"] for s in page.stepper][:2] == ["current", "ahead"]


def test_a_viewer_gets_the_criteria_and_no_decision_form(db, viewer):
    initiative = InitiativeFactory(framed=True)
    page = page_for(initiative, viewer)
    assert page.actions == []
    assert page.next_outcomes  # the criteria are for everyone to read
    assert not (page.may_edit or page.may_manage_feeds or page.may_reframe or page.may_propose)


def test_a_bound_form_takes_the_place_of_its_blank_one(db, manager):
    initiative = InitiativeFactory(framed=True)
    bound = DecisionForm({"rationale": ""}, transition=T.STOP)
    bound.is_valid()
    page = page_for(initiative, manager, bound_form=bound)
    stop = next(a for a in page.actions if a["transition"] == T.STOP)
    assert stop["form"] is bound and stop["open"] is True
    others = [a for a in page.actions if a["transition"] != T.STOP]
    assert others and all(a["form"] is not bound and not a["open"] for a in others)


def test_the_context_names_every_field_of_the_page(db, manager):
    page = page_for(InitiativeFactory(framed=True), manager)
    context = page.context()
    assert context["initiative"] == page.initiative
    assert set(context) == {f for f in selectors.InitiativePage.__dataclass_fields__}


def test_the_page_costs_as_many_queries_for_one_metric_as_for_five(db, manager):
    one = InitiativeFactory(framed=True)
    five = InitiativeFactory(framed=True)
    from tests.factories import MetricFactory

    for _ in range(4):
        MetricFactory(initiative=five, is_primary=False)

    page_for(one, manager)  # the user's roles are read once per user object

    def cost(initiative):
        with CaptureQueriesContext(connection) as queries:
            page_for(initiative, manager).context()
        return len(queries)

    assert cost(one) == cost(five)
