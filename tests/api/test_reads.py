"""Reading the portfolio: the list with the list page's filters and sorts, cursor pages,
one initiative, ETags, problem documents, the rate limit and the OpenAPI document."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from gates.stages import Stage
from pages import listing
from portfolio.models import Initiative
from portfolio.roles import Role
from tests.factories import (
    BusinessUnitFactory,
    InitiativeFactory,
    PurgatoryFlagFactory,
    UserFactory,
)
from tests.helpers import advance

pytestmark = pytest.mark.django_db

LIST = "/api/v1/initiatives"


def walk(api, **params) -> list[str]:
    """Every slug the list gives, page by page through `next`."""
    query = "&".join(f"{k}={v}" for k, v in params.items())
    url, slugs = f"{LIST}?{query}", []
    while url:
        response = api.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        slugs += [row["slug"] for row in body["results"]]
        url = body["next"]
        assert len(slugs) < 500
    return slugs


@pytest.fixture
def portfolio(manager):
    """A dozen initiatives with ties and missing values in every sort key."""
    units = [BusinessUnitFactory(name=name) for name in ("Claims", "Risk", "claims ops")]
    owners = [UserFactory(role=Role.OWNER, first_name="Ann", last_name=n) for n in ("Bo", "Cy")]
    made = []
    for n in range(12):
        initiative = InitiativeFactory(
            title=["Alpha", "beta", "Gamma"][n % 3] + f" {n // 3}",
            business_unit=units[n % 3],
            business_owner=owners[n % 2] if n % 4 else None,
        )
        Initiative.objects.filter(pk=initiative.pk).update(
            stage_entered_at=timezone.now() - timedelta(days=n % 5)
        )
        made.append(initiative)
    PurgatoryFlagFactory(initiative=made[0])
    return made


@pytest.mark.parametrize("sort", [s for name in listing.SORTS for s in (name, f"-{name}")])
def test_cursor_pages_give_every_initiative_once_in_the_list_pages_order(
    api_as, manager, portfolio, sort
):
    api = api_as(manager, scope="read")
    expected = [i.slug for i in listing.initiatives({"sort": sort})]
    assert walk(api, sort=sort, limit=5) == expected


def test_an_initiative_added_before_the_cursor_neither_repeats_nor_shifts_a_row(
    api_as, manager, portfolio
):
    api = api_as(manager, scope="read")
    first = api.get(f"{LIST}?sort=title&limit=4").json()
    InitiativeFactory(title="Aardvark")  # sorts before everything already read
    rest = walk_from(api, first["next"])
    slugs = [r["slug"] for r in first["results"]] + rest
    assert len(slugs) == len(set(slugs)) == 12
    assert "aardvark" not in slugs


def walk_from(api, url):
    slugs = []
    while url:
        body = api.get(url).json()
        slugs += [row["slug"] for row in body["results"]]
        url = body["next"]
    return slugs


def test_filters_are_the_list_pages(api_as, manager, portfolio):
    api = api_as(manager, scope="read")
    advance(portfolio[1], Stage.THIN_SLICE, user=manager)
    body = api.get(f"{LIST}?stage=thin_slice").json()
    assert [r["slug"] for r in body["results"]] == [portfolio[1].slug]
    assert [r["slug"] for r in api.get(f"{LIST}?flag=any").json()["results"]] == [portfolio[0].slug]
    assert api.get(f"{LIST}?q=Gamma").json()["results"][0]["title"].startswith("Gamma")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("stage=nowhere", "stage"),
        ("cohort=2026-Q3", "cohort"),
        ("running_cost=euros", "running_cost"),
        ("sort=popularity", "sort"),
        ("limit=0", "limit"),
        ("limit=1000", "limit"),
        ("cursor=not-a-cursor", "cursor"),
    ],
)
def test_a_bad_parameter_is_400_naming_it(api_as, manager, portfolio, query, field):
    response = api_as(manager, scope="read").get(f"{LIST}?{query}")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert field in response.json()["errors"]


def test_a_cursor_of_another_sort_is_refused(api_as, manager, portfolio):
    api = api_as(manager, scope="read")
    cursor = api.get(f"{LIST}?sort=title&limit=2").json()["next_cursor"]
    response = api.get(f"{LIST}?sort=stage&cursor={cursor}")
    assert response.status_code == 400 and "another sort" in response.json()["detail"]


def test_the_list_costs_the_same_queries_whatever_the_portfolio(api_as, manager):
    api = api_as(manager, scope="read")
    InitiativeFactory.create_batch(3, framed=True)
    api.get(LIST)  # the token's first use is written once
    with CaptureQueriesContext(connection) as few:
        assert api.get(LIST).status_code == 200
    InitiativeFactory.create_batch(30, framed=True)
    with CaptureQueriesContext(connection) as many:
        assert api.get(LIST).status_code == 200
    assert len(many) == len(few)


def test_one_initiative_with_its_evidence(api_as, manager):
    initiative = InitiativeFactory(framed=True)
    advance(initiative, Stage.THIN_SLICE, user=manager)
    body = api_as(manager, scope="read").get(f"{LIST}/{initiative.slug}").json()
    assert body["stage"] == "thin_slice"
    assert body["framing"]["decision_changed"] == initiative.decision_changed
    assert body["business_owner"]["username"] == initiative.business_owner.username
    assert [d["transition"] for d in body["decisions"]] == ["approve_frame"]
    assert body["metrics"][0]["is_primary"] is True
    submit = next(t for t in body["transitions"] if t["transition"] == "submit_for_review")
    assert submit["you_may"] is True
    assert any(c["blocks"] for c in submit["criteria"])  # no feed yet


def test_reading_one_initiative_costs_the_same_queries_whatever_its_history(api_as, manager):
    api = api_as(manager, scope="read")
    short, long = InitiativeFactory(framed=True), InitiativeFactory(framed=True)
    advance(short, Stage.THIN_SLICE, user=manager)
    advance(long, Stage.WIDE_LAUNCH, user=manager)
    api.get(f"{LIST}/{short.slug}")
    with CaptureQueriesContext(connection) as first:
        api.get(f"{LIST}/{short.slug}")
    with CaptureQueriesContext(connection) as second:
        api.get(f"{LIST}/{long.slug}")
    # Criteria differ by stage; the history's length adds nothing.
    assert len(second) <= len(first) + 10


def test_an_unknown_initiative_is_a_404_problem(api_as, viewer):
    response = api_as(viewer, scope="read").get(f"{LIST}/no-such-thing")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


def test_reads_carry_an_etag_and_answer_304_to_it(api_as, viewer):
    initiative = InitiativeFactory(framed=True)
    api = api_as(viewer, scope="read")
    first = api.get(f"{LIST}/{initiative.slug}")
    tag = first["ETag"]
    assert api.get(f"{LIST}/{initiative.slug}", **{"If-None-Match": tag}).status_code == 304
    Initiative.objects.filter(pk=initiative.pk).update(summary="Changed.")
    changed = api.get(f"{LIST}/{initiative.slug}", **{"If-None-Match": tag})
    assert changed.status_code == 200 and changed["ETag"] != tag


def test_each_token_has_its_own_rate_limit(api_as, viewer, settings):
    settings.GANTRY_API_RATE_LIMIT = 3
    busy, other = api_as(viewer, scope="read"), api_as(viewer, scope="read")
    assert [busy.get(LIST).status_code for _ in range(3)] == [200, 200, 200]
    refused = busy.get(LIST)
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= settings.GANTRY_API_RATE_WINDOW_SECONDS + 1
    assert refused["Content-Type"] == "application/problem+json"
    assert other.get(LIST).status_code == 200


def test_the_openapi_document_is_public_3_1_and_describes_ingestion(client):
    document = client.get("/api/v1/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    assert "/api/v1/feeds/{feed_id}/observations" in document["paths"]
    assert {"/api/v1/initiatives", "/api/v1/initiatives/{slug}"} <= set(document["paths"])
    refused = document["paths"]["/api/v1/initiatives"]["get"]["responses"]["400"]
    assert "application/problem+json" in refused["content"]


def test_the_documentation_page_needs_sign_in_and_serves_local_assets(client, viewer):
    assert client.get("/api/v1/docs").status_code == 302
    client.force_login(viewer)
    page = client.get("/api/v1/docs").content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in page
    assert "cdn" not in page.lower() and "https://" not in page


def test_a_cache_that_fails_lets_requests_through(api_as, viewer, settings, monkeypatch):
    settings.GANTRY_API_RATE_LIMIT = 1

    def broken(*args, **kwargs):
        raise ConnectionError("the cache is down")

    monkeypatch.setattr("api.throttle.cache.add", broken)
    api = api_as(viewer, scope="read")
    assert [api.get(LIST).status_code for _ in range(3)] == [200, 200, 200]
