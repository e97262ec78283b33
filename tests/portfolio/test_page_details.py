"""Small things a first-time user trips over: each has the test that found it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from gates.stages import Stage, StopReason
from metrics import services as metric_services
from pages.templatetags.gantry import ago
from portfolio.models import Initiative
from tests.factories import InitiativeFactory
from tests.helpers import criteria_passing

pytestmark = pytest.mark.django_db


def test_titles_sort_as_a_person_reads_them_whatever_their_case(client, viewer):
    for title in ("beta", "Alpha", "gamma", "Delta"):
        InitiativeFactory(title=title)
    client.force_login(viewer)
    page = client.get("/initiatives/?sort=title").context["page"]
    assert [i.title for i in page] == ["Alpha", "beta", "Delta", "gamma"]


def test_a_moment_within_the_minute_is_just_now_not_zero_minutes_ago():
    now = timezone.now()
    assert ago(now) == "just now"
    assert ago(now - timedelta(seconds=59)) == "just now"
    assert ago(now - timedelta(hours=3, seconds=10)) == "3\xa0hours ago"


def test_a_feed_registered_a_moment_ago_never_reads_zero_minutes(client, manager):
    initiative = InitiativeFactory(framed=True)
    metric_services.create_feed(
        initiative=initiative,
        user=manager,
        name="Claims events",
        kind="live",
        owner=manager,
        freshness_hours=24,
    )
    client.force_login(manager)
    body = client.get(initiative.get_absolute_url()).content.decode()
    assert "0\xa0minutes" not in body and "0 minutes" not in body


def test_the_browser_allows_the_comparison_window_the_server_allows(client, manager):
    client.force_login(manager)
    body = client.get("/initiatives/new/").content.decode()
    assert 'name="metric-comparison_window_days"' in body
    assert 'min="1"' in body and 'max="365"' in body


def test_stopping_says_the_initiative_is_now_stopped(client, manager):
    initiative = InitiativeFactory(framed=True)
    client.force_login(manager)
    with criteria_passing():
        response = client.post(
            f"/initiatives/{initiative.slug}/decide/stop/",
            {
                "stop-rationale": "Superseded by the vendor's own feature.",
                "stop-expected_stage": Stage.FRAME,
                "stop-stop_reason": StopReason.SUPERSEDED,
            },
            follow=True,
        )
    body = response.content.decode()
    assert f"{initiative.title} is now stopped." in body
    assert "is now in Stopped" not in body
    assert Initiative.objects.get(pk=initiative.pk).stage == Stage.STOPPED


def test_a_printout_says_when_who_and_which_filter(client, executive):
    client.force_login(executive)
    body = client.get("/initiatives/?stage=thin_slice").content.decode()
    assert 'class="print-only print-meta"' in body
    assert f"by {executive}" in body
    assert "filtered by stage “thin_slice”" in body
    assert "no filter" in client.get("/").content.decode()


def test_form_errors_are_summed_up_at_the_top_linked_to_their_fields(client, manager, framing_data):
    client.force_login(manager)
    response = client.post("/initiatives/new/", framing_data(title="  ", **{"metric-unit": ""}))
    assert response.status_code == 400
    body = response.content.decode()
    summary = body[
        body.index('class="error-summary"') : body.index("</ul>", body.index("error-summary"))
    ]
    assert 'id="errors" role="alert"' in body
    assert '<a href="#id_title">Title: This field is required.</a>' in summary
    assert 'href="#id_metric-unit"' in summary
    # The form posts back to its summary, so the browser lands on it.
    assert '<form method="post" action="#errors"' in body
    assert body.index("error-summary") < body.index('name="title"')
