"""The review page's data, assembled by pages.selectors.review_page without HTTP."""

from pages import selectors
from readiness import queries


def page_for(initiative, review, user):
    detail = queries.review_detail(initiative, review.pk)
    return selectors.review_page(initiative=initiative, review=detail, user=user)


def test_a_manager_with_no_stake_may_decide_and_assign(initiative, review, items, cast):
    page = page_for(initiative, review, cast.pm)
    assert page.may_decide and not page.holds_stake
    assert [d["transition"] for d in page.decisions] == ["pass_review", "fail_review"]
    assert page.decisions[0]["blocked"]  # nothing is checked yet
    assert len(page.rows) == len(items) and page.checked == 0


def test_a_viewer_reads_the_review_and_gets_no_form(initiative, review, items, cast):
    page = page_for(initiative, review, cast.viewer)
    assert not page.may_decide and page.decisions == []
    assert page.rows and page.deciders is not None


def test_an_owner_holds_a_stake_and_decides_nothing(initiative, review, items, cast):
    page = page_for(initiative, review, cast.business_owner)
    assert not page.may_decide and page.decisions == []
    assert set(page.context()) == set(selectors.ReviewPage.__dataclass_fields__)
