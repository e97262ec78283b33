"""My work's data, assembled by readiness.queries.my_work_page without HTTP."""

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from gates.stages import Transition as T
from readiness import queries
from readiness.models import PreLaunchWorkItem
from tests.factories import InitiativeFactory, PurgatoryFlagFactory
from tests.readiness.helpers import ASSIGNMENT, decide


def test_my_work_holds_my_unchecked_items_and_the_initiatives_i_own(initiative, items, cast):
    page = queries.my_work_page(user=cast.delivery_lead)
    mine = {item.pk for key, item in items.items() if ASSIGNMENT[key] == "delivery_lead"}
    assert {item.pk for item in page.items} == mine
    assert page.work_items == []
    assert page.initiatives == [initiative]
    assert page.writes and page.today == timezone.localdate()
    assert set(page.context()) == set(queries.MyWorkPage.__dataclass_fields__)


def test_a_failed_review_turns_my_open_items_into_work(initiative, items, cast):
    decide(initiative, T.FAIL_REVIEW, cast.pm)
    page = queries.my_work_page(user=cast.delivery_lead)
    assert page.items == []  # the review is closed
    assert set(page.work_items) == set(
        PreLaunchWorkItem.objects.filter(assignee=cast.delivery_lead)
    )
    assert page.work_items


def test_a_viewer_gets_an_empty_page_and_writes_nothing(items, cast):
    page = queries.my_work_page(user=cast.viewer)
    assert (page.items, page.work_items, page.initiatives, page.writes) == ([], [], [], False)


def test_my_work_costs_as_many_queries_for_two_initiatives_as_for_one(initiative, items, cast):
    queries.my_work_page(user=cast.delivery_lead)  # the user's roles are read once per user

    def cost():
        with CaptureQueriesContext(connection) as captured:
            queries.my_work_page(user=cast.delivery_lead)
        return len(captured)

    one = cost()
    InitiativeFactory(framed=True, delivery_lead=cast.delivery_lead)
    assert len(queries.my_work_page(user=cast.delivery_lead).initiatives) == 2
    assert cost() == one


def test_my_flagged_initiatives_are_mine_in_any_owner_role_or_as_sponsor(cast):
    """An owner sees their own initiatives in pilot purgatory, with why; not others'."""
    owned = InitiativeFactory(title="Owned", business_owner=cast.other_owner)
    sponsored = InitiativeFactory(title="sponsored", sponsor=cast.other_owner)
    led = InitiativeFactory(title="Led", delivery_lead=cast.other_owner)
    someone_elses = InitiativeFactory(title="Elsewhere")
    for initiative in (owned, sponsored, someone_elses):
        PurgatoryFlagFactory(initiative=initiative)
    PurgatoryFlagFactory(initiative=led, cleared_at=timezone.now())  # cleared: not flagged

    page = queries.my_work_page(user=cast.other_owner)

    assert [i.title for i in page.initiatives] == ["Led", "Owned", "sponsored"]
    assert page.flagged == [owned, sponsored]
    assert [f.kind for f in page.flagged[0].active_flags] == ["stuck"]


def test_my_work_page_shows_my_flagged_initiatives_with_the_reason(client, cast):
    flagged = InitiativeFactory(title="Supplier triage", business_owner=cast.other_owner)
    PurgatoryFlagFactory(initiative=flagged, reason="120 days in thin slice; the limit is 90.")
    client.force_login(cast.other_owner)

    html = client.get("/my-work/").content.decode()

    assert "Your initiatives in pilot purgatory" in html
    assert "120 days in thin slice; the limit is 90." in html
