"""No address a person can land on answers 405: post/redirect/get everywhere.

An action URL acts only on a form's POST. A person still asks for it with a GET: a form with
errors is shown again at the action's address, and a reload, Back or Enter in the address bar
then sends a GET; so does a bookmark or a pasted link. Such a GET goes to the page that holds
the form, with a message saying so (gates.http.post_only); other methods still answer 405.
"""

import re
from dataclasses import dataclass
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.contrib.auth.views import redirect_to_login
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts import tokens
from gates.models import AuditEntry, GateDecision
from gates.stages import Stage
from gates.stages import Transition as T
from notifications.models import FlagSnooze, Notification
from portfolio import services as portfolio_services
from portfolio.models import Initiative
from portfolio.roles import Role
from readiness import services as readiness_services
from readiness.models import PreLaunchWorkItem
from tests.factories import (
    DataFeedFactory,
    InitiativeFactory,
    PurgatoryFlagFactory,
    UserFactory,
    upkeep_line,
)
from tests.readiness.helpers import ASSIGNMENT, decide, items_of, submit_for_review

OWNERS = ("business_owner", "delivery_lead", "operational_owner")


@pytest.fixture
def world(db):
    """An initiative with a row behind every URL argument: a failed review that left
    pre-launch work, a second review now open, an owner's open reframe proposal, a feed and
    a purgatory flag; and a programme manager with no stake in it, who may see every page of
    it, with an unread notification."""
    pm = UserFactory(username="nd-pm", role=Role.PROGRAMME_MANAGER)
    owners = {part: UserFactory(username=f"nd-{part}", role=Role.OWNER) for part in OWNERS}
    initiative = InitiativeFactory(framed=True, narrow_audience="Motor claims team", **owners)
    failed = submit_for_review(initiative, user=pm)
    for key, item in items_of(failed).items():
        readiness_services.assign(item=item, assignee=owners[ASSIGNMENT[key]], user=pm)
    decide(Initiative.objects.get(pk=initiative.pk), T.FAIL_REVIEW, pm)
    review = submit_for_review(Initiative.objects.get(pk=initiative.pk), user=pm)
    proposal = portfolio_services.propose_reframe(
        initiative=Initiative.objects.get(pk=initiative.pk),
        user=owners["business_owner"],
        values={"ship_threshold": Decimal("70")},
        reason="Lower the bar.",
    )
    initiative = Initiative.objects.get(pk=initiative.pk)
    assert initiative.stage == Stage.READINESS_REVIEW
    return SimpleNamespace(
        pm=pm,
        initiative=initiative,
        slug=initiative.slug,
        review=review,
        item=next(iter(items_of(review).values())),
        work=PreLaunchWorkItem.objects.filter(initiative=initiative).first(),
        proposal=proposal,
        feed=DataFeedFactory(initiative=initiative),
        flag=PurgatoryFlagFactory(initiative=initiative),
        budget=upkeep_line(initiative).request,
        note=Notification.objects.create(
            recipient=pm, kind="decision", key="nd:1", title="A decision", url="/"
        ),
        token=tokens.create(user=pm, name="walk", scope="read")[0],
    )


@dataclass
class Action:
    """An action URL, the page whose form posts to it, and what that page then says."""

    url: str
    page: str
    message: str


def _review_page(w) -> str:
    return reverse("review-detail", args=[w.slug, w.review.pk])


def _item_action(name: str, message: str):
    def build(w) -> Action:
        url = reverse(name, args=[w.slug, w.review.pk, w.item.pk])
        return Action(url, f"{_review_page(w)}#item-{w.item.pk}", message)

    return build


# Every POST-only action URL, by URL name. test_every_post_only_url_is_covered_here keeps
# this table complete.
ACTIONS = {
    "api-token-revoke": lambda w: Action(
        reverse("api-token-revoke", args=[w.token.pk]),
        reverse("api-tokens"),
        "Tokens are revoked with the button on this page.",
    ),
    "initiative-decide": lambda w: Action(
        reverse("initiative-decide", args=[w.slug, T.PASS_REVIEW]),
        reverse("initiative-detail", args=[w.slug]),
        "Decisions are taken with the form on this page.",
    ),
    "review-item-assign": _item_action(
        "review-item-assign", "Items are assigned with the form on this page."
    ),
    "review-assign-many": lambda w: Action(
        reverse("review-assign-many", args=[w.slug, w.review.pk]),
        f"{_review_page(w)}#assign-many",
        "Items are assigned with the form on this page.",
    ),
    "review-item-check": _item_action(
        "review-item-check", "Items are checked with the form on this page."
    ),
    "review-item-uncheck": _item_action(
        "review-item-uncheck", "Items are unchecked with the button on this page."
    ),
    "review-decide": lambda w: Action(
        reverse("review-decide", args=[w.slug, w.review.pk, T.PASS_REVIEW]),
        _review_page(w),
        "Reviews are decided with the form on this page.",
    ),
    "work-done": lambda w: Action(
        reverse("work-done", args=[w.work.pk]),
        reverse("my-work"),
        "Pre-launch work is marked done with the form on this page.",
    ),
    "work-reopen": lambda w: Action(
        reverse("work-reopen", args=[w.work.pk]),
        w.work.initiative.get_absolute_url(),
        "Work is reopened with the form on this page.",
    ),
    "proposal-decline": lambda w: Action(
        reverse("proposal-decline", args=[w.slug, w.proposal.pk]),
        reverse("initiative-reframe", args=[w.slug]),
        "Proposals are declined with the form on this page.",
    ),
    "notifications-read": lambda w: Action(
        reverse("notifications-read"),
        reverse("notifications"),
        "Notifications are marked read with the buttons on this page.",
    ),
    "flag-snooze": lambda w: Action(
        reverse("flag-snooze", args=[w.flag.pk]),
        f"{w.initiative.get_absolute_url()}#flags",
        "Flags are snoozed with the form on this page.",
    ),
    "budget-request-decide": lambda w: Action(
        reverse("budget-request-decide", args=[w.slug, w.budget.pk]),
        w.budget.get_absolute_url(),
        "Budget requests are decided with the form on this page.",
    ),
    "logout": lambda w: Action(
        reverse("logout"),
        reverse("home"),
        "To sign out, use the “Sign out” button at the top of the page.",
    ),
}


def _state(w) -> tuple:
    """What an action would change: the audit chain, decisions, the item, work, proposal,
    snoozes and read notifications."""
    w.item.refresh_from_db()
    w.work.refresh_from_db()
    w.proposal.refresh_from_db()
    return (
        AuditEntry.objects.count(),
        GateDecision.objects.count(),
        Initiative.objects.get(pk=w.initiative.pk).stage,
        (w.item.assignee_id, w.item.checked, w.item.version),
        w.work.status,
        w.proposal.status,
        FlagSnooze.objects.count(),
        Notification.objects.filter(read_at__isnull=True).count(),
    )


@pytest.mark.parametrize("method", ["get", "head"])
@pytest.mark.parametrize("name", ACTIONS)
def test_a_get_on_an_action_url_goes_to_its_page_and_says_where_the_form_is(
    client, world, name, method
):
    action = ACTIONS[name](world)
    client.force_login(world.pm)
    before = _state(world)

    response = getattr(client, method)(action.url)

    assert response.status_code == 302
    assert response["Location"] == action.page
    assert _state(world) == before  # a GET takes no action
    page = client.get(action.page)
    assert page.status_code == 200
    assert action.message in page.content.decode()


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
@pytest.mark.parametrize("name", ACTIONS)
def test_other_methods_on_an_action_url_still_answer_405(client, world, name, method):
    action = ACTIONS[name](world)
    client.force_login(world.pm)
    before = _state(world)

    response = getattr(client, method)(action.url)

    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD, POST"
    assert _state(world) == before


@pytest.mark.parametrize("name", ACTIONS)
def test_an_anonymous_get_on_an_action_url_goes_to_the_login_page(client, world, name):
    action = ACTIONS[name](world)
    response = client.get(action.url)
    assert response.status_code == 302
    assert response["Location"] == redirect_to_login(action.url).url


def test_the_redirect_is_the_same_for_anyone_and_for_rows_that_do_not_exist(client, world):
    # The address comes from the URL alone: no lookup, no permission check, so the answer
    # reveals nothing; the page it leads to decides what the person may see.
    viewer = UserFactory(username="nd-viewer", role=Role.VIEWER)
    client.force_login(viewer)
    url = reverse("proposal-decline", args=[world.slug, world.proposal.pk])
    assert client.get(url)["Location"] == reverse("initiative-reframe", args=[world.slug])
    assert client.get(reverse("initiative-reframe", args=[world.slug])).status_code == 403
    missing = reverse("initiative-decide", args=["no-such-initiative", T.WIDEN])
    assert client.get(missing)["Location"] == "/initiatives/no-such-initiative/"
    assert client.get("/initiatives/no-such-initiative/").status_code == 404


# The whole urlconf -----------------------------------------------------------------------
# Not walked: the admin (staff only, Django's own pages), the token API (machine endpoints
# that take POST from a delivery job or a script, where 405 to a GET is the right answer)
# and django-allauth's single sign-on routes (regex routes per provider; its provider login
# answers a GET with a confirmation page).
SKIPPED_PREFIXES = ("admin/", "api/v1/", "sso/")
SKIPPED_NAMES = {"api-observations"}
ARGUMENT = re.compile(r"<(?:[^>:]+:)?(?P<name>[^>]+)>")


def _routes(resolver=None, prefix: str = ""):
    """Every URL pattern as (full route, pattern), walking into includes."""
    for entry in (resolver or get_resolver()).url_patterns:
        route = prefix + str(entry.pattern)
        if route.startswith(SKIPPED_PREFIXES):
            continue
        if isinstance(entry, URLResolver):
            yield from _routes(entry, route)
        elif isinstance(entry, URLPattern) and entry.name not in SKIPPED_NAMES:
            yield route, entry


def _arguments(w) -> dict[str, str]:
    """A value from a real row for every argument a route takes."""
    return {
        "slug": w.slug,
        "review_id": str(w.review.pk),
        "item_id": str(w.item.pk),
        "proposal_id": str(w.proposal.pk),
        "feed_id": str(w.feed.pk),
        "work_item_id": str(w.work.pk),
        "flag_id": str(w.flag.pk),
        "request_id": str(w.budget.pk),
        "token_id": str(w.token.pk),
        "pk": str(w.note.pk),
        "transition": T.PASS_REVIEW.value,
        "fmt": "json",
        "uidb64": urlsafe_base64_encode(force_bytes(w.pm.pk)),
        "token": default_token_generator.make_token(w.pm),
    }


def _url(route: str, arguments: dict[str, str]) -> str:
    assert "^" not in route, f"{route}: a regex route; teach this walk to fill it"
    missing = set(ARGUMENT.findall(route)) - set(arguments)
    assert not missing, f"{route}: add a real value for {sorted(missing)} to _arguments"
    url = "/" + ARGUMENT.sub(lambda m: arguments[m["name"]], route)
    assert resolve(url).route == route, f"{url} does not reach {route}"
    return url


@pytest.mark.parametrize("signed_in", [True, False], ids=["programme-manager", "anonymous"])
def test_no_url_in_the_urlconf_answers_405_to_a_get(client, world, signed_in):
    if signed_in:
        client.force_login(world.pm)
    arguments = _arguments(world)
    answers = {}
    for route, _ in _routes():
        url = _url(route, arguments)
        answers[url] = client.get(url).status_code
    assert len(answers) > 20  # the walk reached the project's pages, not just a few
    assert [url for url, status in answers.items() if status == 405] == []


def test_every_post_only_url_is_covered_here():
    post_only = {p.name for _, p in _routes() if hasattr(p.callback, "post_only_redirect")}
    assert post_only == set(ACTIONS)
