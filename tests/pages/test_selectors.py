"""Page selectors assemble a page's data without HTTP, in a fixed number of queries."""

import pytest
from django.db import connection
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from gates.forms import DecisionForm
from gates.stages import Transition as T
from pages import selectors
from pages.queries import initiative_detail
from portfolio.models import FlagKind
from tests.factories import (
    BusinessUnitFactory,
    InitiativeFactory,
    PurgatoryFlagFactory,
    UserFactory,
)


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


# The dashboard ------------------------------------------------------------------------------
def test_the_dashboard_counts_the_initiatives_in_the_scope_of_the_url(db):
    unit, sponsor = BusinessUnitFactory(), UserFactory()
    InitiativeFactory(business_unit=unit, sponsor=sponsor)
    InitiativeFactory(business_unit=unit)
    InitiativeFactory()

    everything = selectors.dashboard_page(params=QueryDict())
    scoped = selectors.dashboard_page(params=QueryDict(f"unit={unit.slug}&sponsor={sponsor.pk}"))

    assert everything.figures["total"] == 3
    assert everything.scope == everything.selected_unit == ""
    assert everything.selected_sponsor is None
    assert scoped.figures["total"] == 1
    assert scoped.scope == f"unit={unit.slug}&sponsor={sponsor.pk}"  # the list's filters
    assert (scoped.selected_unit, scoped.selected_sponsor) == (unit.slug, sponsor.pk)


def test_a_bad_value_in_the_dashboard_url_is_dropped(db):
    unit = BusinessUnitFactory()
    InitiativeFactory(business_unit=unit)
    InitiativeFactory()
    page = selectors.dashboard_page(params=QueryDict(f"unit={unit.slug}&sponsor=nobody"))
    assert page.figures["total"] == 1
    assert (page.scope, page.selected_sponsor) == (f"unit={unit.slug}", None)


def test_the_dashboard_context_names_each_figure(db):
    page = selectors.dashboard_page(params=QueryDict())
    context = page.context()
    assert "figures" not in context
    assert set(context) == set(page.figures) | {
        "scope",
        "selected_unit",
        "selected_sponsor",
        "unit_name",
        "sponsor_name",
        "printed_by",
        "printed_at",
    }
    assert context["stages"] == page.figures["stages"]


def test_the_dashboard_figures_come_from_the_cache_while_nothing_changed(db):
    InitiativeFactory()
    selectors.dashboard_page(params=QueryDict())
    with CaptureQueriesContext(connection) as queries:
        page = selectors.dashboard_page(params=QueryDict())
    assert len(queries) == 1  # the versions of what the dashboard's sections read
    assert page.figures["total"] == 1


# The initiative list ------------------------------------------------------------------------
def test_the_list_filters_and_sorts_by_the_url(db, viewer):
    unit = BusinessUnitFactory()
    for title in ("Beta", "Alpha", "Gamma"):
        InitiativeFactory(title=title, business_unit=unit)
    InitiativeFactory(title="Elsewhere")

    page = selectors.list_page(
        user=viewer, params=QueryDict(f"unit={unit.slug}&sort=-title&page=1")
    )

    assert [i.title for i in page.page] == ["Gamma", "Beta", "Alpha"]
    assert page.sort == "-title" and page.filtered
    assert page.query == f"unit={unit.slug}&sort=-title"  # without the page number
    assert page.sort_links["title"] == f"unit={unit.slug}&sort=title"  # the other way round
    assert page.sort_links["days"] == f"unit={unit.slug}&sort=days"
    assert page.form.is_bound and not page.may_create


def test_the_unfiltered_list_sorts_by_title_and_offers_a_manager_a_new_initiative(db, manager):
    InitiativeFactory(title="Beta")
    InitiativeFactory(title="Alpha")
    page = selectors.list_page(user=manager, params=QueryDict())
    assert [i.title for i in page.page] == ["Alpha", "Beta"]
    assert (page.sort, page.query, page.filtered) == ("title", "", False)
    assert page.sort_links["title"] == "sort=-title"
    assert not page.form.is_bound and page.may_create
    assert set(page.context()) == set(selectors.ListPage.__dataclass_fields__)


def test_the_list_pages_out_of_range_to_the_last_page(db, viewer, monkeypatch):
    monkeypatch.setattr(selectors, "LIST_PAGE_SIZE", 2)
    for title in ("Alpha", "Beta", "Gamma"):
        InitiativeFactory(title=title)
    page = selectors.list_page(user=viewer, params=QueryDict("page=9"))
    assert page.page.number == 2 and [i.title for i in page.page] == ["Gamma"]
    assert page.query == ""


@pytest.mark.parametrize("sort", ["flags", "-flags", "verdict", "unit"])
def test_the_list_counts_each_initiative_once_whatever_the_sort_joins(
    db, viewer, monkeypatch, sort
):
    monkeypatch.setattr(selectors, "LIST_PAGE_SIZE", 2)
    flagged, other, _quiet = (InitiativeFactory(title=t) for t in ("Alpha", "Beta", "Gamma"))
    for kind in (FlagKind.STUCK, FlagKind.NO_BUSINESS_OWNER):
        PurgatoryFlagFactory(initiative=flagged, kind=kind)
    PurgatoryFlagFactory(initiative=other, cleared_at=timezone.now())

    first = selectors.list_page(user=viewer, params=QueryDict(f"sort={sort}"))
    second = selectors.list_page(user=viewer, params=QueryDict(f"sort={sort}&page=2"))

    assert first.page.paginator.count == 3 and first.page.paginator.num_pages == 2
    shown = [i.title for i in first.page] + [i.title for i in second.page]
    assert sorted(shown) == ["Alpha", "Beta", "Gamma"]
    if sort == "-flags":
        assert shown[0] == "Alpha"


def test_the_list_and_its_export_drop_a_bad_filter_and_keep_the_others(db):
    unit = BusinessUnitFactory()
    form, filters = selectors.list_filters(
        QueryDict(f"unit={unit.slug}&stage=nowhere&q=claims&owner=nobody")
    )
    assert (filters["unit"], filters["q"]) == (unit, "claims")
    assert "stage" not in filters and "owner" not in filters
    assert set(form.errors) == {"stage", "owner"}
