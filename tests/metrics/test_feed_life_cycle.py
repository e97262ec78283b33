"""A feed's life cycle: active, paused, retired (token revoked), with who and why recorded.

Every step is a FeedEvent sealed in the initiative's audit chain. A paused feed's token gets
409 with the reason; a retired feed's token is revoked and gets 401, like any unknown token.
Stopping an initiative pauses its active feeds; reopening resumes none.
"""

import hashlib
import re
import threading
import time
from datetime import UTC, timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from gates import audit
from gates import services as gates
from gates.models import AuditEntry
from gates.stages import Stage
from gates.stages import Transition as T
from metrics import ingest, services, status
from metrics.models import (
    Cohort,
    DataFeed,
    Delivery,
    FeedAction,
    FeedEvent,
    FeedKind,
    FeedStatus,
    Observation,
)
from metrics.services import FeedStateError
from pages.purgatory import detect
from portfolio.models import Initiative, User
from portfolio.roles import Role
from tests.factories import DataFeedFactory, InitiativeFactory, UserFactory
from tests.helpers import advance
from tests.metrics.helpers import API, item

pytestmark = pytest.mark.django_db

SERVICES = {
    "pause": services.pause_feed,
    "resume": services.resume_feed,
    "retire": services.retire_feed,
}


@pytest.fixture
def feed(live):
    return live[0]


@pytest.fixture
def token(live):
    return live[1]


@pytest.fixture
def paused(feed, manager):
    services.pause_feed(feed=feed, user=manager, reason="Vendor outage until Monday.")
    return feed


def reread(feed) -> DataFeed:
    return DataFeed.objects.get(pk=feed.pk)


def url(feed, action: str) -> str:
    return f"/initiatives/{feed.initiative.slug}/feeds/{feed.pk}/{action}/"


def chain_is_intact(initiative) -> bool:
    _, breaks = audit.verify([initiative.pk])
    return breaks == []


# The services ------------------------------------------------------------------------------------
def test_pausing_records_who_when_and_why_and_seals_it_in_the_audit_chain(feed, manager):
    event = services.pause_feed(feed=feed, user=manager, reason="  Vendor outage.  ")

    current = reread(feed)
    assert current.status == FeedStatus.PAUSED
    assert current.status_event == event
    assert (event.action, event.by, event.reason) == (FeedAction.PAUSED, manager, "Vendor outage.")
    entry = AuditEntry.objects.get(source="metrics.feedevent", source_id=event.pk)
    assert (entry.kind, entry.actor_id, entry.at) == ("feed_event", manager.pk, event.at)
    assert entry.summary == "Paused the feed “Resolution events”: Vendor outage."
    assert chain_is_intact(feed.initiative)


def test_creating_and_rotating_are_recorded_as_feed_events_too(feed, manager):
    services.rotate_token(feed=feed, user=manager, reason="Shared by mistake.")
    actions = list(feed.events.values_list("action", "by", "reason"))
    assert actions == [
        (FeedAction.CREATED, manager.pk, ""),
        (FeedAction.ROTATED, manager.pk, "Shared by mistake."),
    ]
    summaries = list(
        AuditEntry.objects.filter(kind="feed_event")
        .order_by("seq")
        .values_list("summary", flat=True)
    )
    assert summaries == [
        "Registered the live feed “Resolution events”.",
        "Rotated the token of the feed “Resolution events”: Shared by mistake.",
    ]
    assert chain_is_intact(feed.initiative)


def test_an_altered_feed_event_breaks_the_audit_chain(paused):
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE metrics_feedevent SET reason = 'Nothing happened.' WHERE id = %s",
            [reread(paused).status_event_id],
        )
    assert not chain_is_intact(paused.initiative)


def test_feed_events_are_append_only(paused):
    event = reread(paused).status_event
    event.reason = "Rewritten."
    with pytest.raises(Exception, match="cannot be changed"):
        event.save()


def test_resuming_makes_a_paused_feed_active_again(paused, manager):
    event = services.resume_feed(feed=paused, user=manager, reason="Vendor is back.")
    current = reread(paused)
    assert (current.status, current.status_event) == (FeedStatus.ACTIVE, event)
    assert list(current.events.values_list("action", flat=True)) == [
        FeedAction.CREATED,
        FeedAction.PAUSED,
        FeedAction.RESUMED,
    ]
    assert chain_is_intact(paused.initiative)


@pytest.mark.parametrize("reason", ["", "   ", None, "x" * 501, "bad\x00reason"])
@pytest.mark.parametrize("action", SERVICES)
def test_a_life_cycle_step_needs_a_reason_and_changes_nothing_without_one(
    feed, manager, action, reason
):
    if action == "resume":
        DataFeed.objects.filter(pk=feed.pk).update(status=FeedStatus.PAUSED)
    before = (reread(feed).status, FeedEvent.objects.count(), AuditEntry.objects.count())

    with pytest.raises(ValidationError) as refused:
        SERVICES[action](feed=feed, user=manager, reason=reason)

    assert "reason" in refused.value.message_dict
    after = (reread(feed).status, FeedEvent.objects.count(), AuditEntry.objects.count())
    assert after == before


def test_retiring_revokes_the_token_at_once(client, post, feed, token, manager, metric):
    services.retire_feed(feed=feed, user=manager, reason="Replaced by the new pipeline.")

    current = reread(feed)
    assert current.status == FeedStatus.RETIRED
    assert current.token_hash.startswith(services.REVOKED_PREFIX)
    assert not re.fullmatch(r"[0-9a-f]{64}", current.token_hash)  # no digest can equal it
    assert current.token_hash != hashlib.sha256(token.encode()).hexdigest()
    assert current.token_hint == ""
    response = post(client, feed, token, [item(metric)])
    assert response.status_code == 401
    assert response.json()["error"] == "A valid bearer token for this feed is required."
    assert services.authenticate_feed(feed.pk, f"Bearer {token}") is None
    assert not Observation.objects.exists() and not Delivery.objects.exists()


def test_retired_feeds_keep_their_revoked_tokens_unique(initiative, manager):
    feeds = [DataFeedFactory(initiative=initiative) for _ in range(3)]
    for feed in feeds:
        services.retire_feed(feed=feed, user=manager, reason="Gone.")
    hashes = {reread(f).token_hash for f in feeds}
    assert len(hashes) == 3


def test_a_paused_feed_may_be_retired_but_a_retired_one_stays_retired(paused, manager):
    services.retire_feed(feed=paused, user=manager, reason="Not coming back.")
    for action in SERVICES:
        with pytest.raises(FeedStateError, match="retired, which is final"):
            SERVICES[action](feed=paused, user=manager, reason="Try again.")
    with pytest.raises(FeedStateError, match="its token is revoked for good"):
        services.rotate_token(feed=paused, user=manager)
    assert reread(paused).status == FeedStatus.RETIRED
    assert list(reread(paused).events.values_list("action", flat=True))[-1] == FeedAction.RETIRED


def test_pausing_twice_and_resuming_an_active_feed_are_refused(feed, manager):
    with pytest.raises(FeedStateError, match="is active, not paused"):
        services.resume_feed(feed=feed, user=manager, reason="Why not.")
    services.pause_feed(feed=feed, user=manager, reason="Outage.")
    with pytest.raises(FeedStateError, match="is already paused"):
        services.pause_feed(feed=feed, user=manager, reason="Outage again.")
    assert feed.events.filter(action=FeedAction.PAUSED).count() == 1


def test_the_state_is_read_under_the_lock_not_from_the_caller_s_copy(feed, manager):
    stale_copy = DataFeed.objects.get(pk=feed.pk)
    services.pause_feed(feed=feed, user=manager, reason="Outage.")
    with pytest.raises(FeedStateError, match="already paused"):
        services.pause_feed(feed=stale_copy, user=manager, reason="Outage.")


# Who may change a feed ---------------------------------------------------------------------------
@pytest.fixture
def viewer_named_owner(initiative):
    someone = UserFactory(username="viewer-owner", role=Role.VIEWER)
    Initiative.objects.filter(pk=initiative.pk).update(operational_owner=someone)
    return someone


@pytest.fixture
def outsider(owner):
    InitiativeFactory(framed=True, business_owner=owner)
    return owner


OTHERS = ["executive", "viewer", "outsider", "viewer_named_owner"]


@pytest.mark.parametrize("who", OTHERS)
def test_only_people_who_manage_feeds_change_them(request, feed, who):
    someone = request.getfixturevalue(who)
    for action in SERVICES:
        with pytest.raises(PermissionDenied):
            SERVICES[action](feed=feed, user=someone, reason="Because.")
    assert reread(feed).status == FeedStatus.ACTIVE
    assert feed.events.count() == 1


@pytest.mark.parametrize("who", ["manager", "delivery_lead"])
def test_the_programme_manager_and_the_initiative_s_owners_change_feeds(request, feed, who):
    someone = (
        feed.initiative.delivery_lead if who == "delivery_lead" else request.getfixturevalue(who)
    )
    services.pause_feed(feed=feed, user=someone, reason="Because.")
    services.resume_feed(feed=feed, user=someone, reason="Back.")
    services.retire_feed(feed=feed, user=someone, reason="Done.")
    assert reread(feed).status == FeedStatus.RETIRED


# The pages ---------------------------------------------------------------------------------------
def test_the_pause_page_asks_for_a_reason(client, manager, feed):
    client.force_login(manager)
    response = client.get(url(feed, "pause"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Pause “Resolution events”" in body and 'name="reason"' in body


def test_pausing_from_the_page_redirects_to_the_initiative_which_shows_who_and_why(
    client, manager, feed
):
    client.force_login(manager)

    response = client.post(url(feed, "pause"), {"reason": "Vendor outage."})

    assert response.status_code == 302
    assert response["Location"] == feed.initiative.get_absolute_url()
    assert reread(feed).status == FeedStatus.PAUSED
    page = client.get(response["Location"]).content.decode()
    panel = re.search(r"<strong>Resolution events</strong>.*?</li>", page, re.S).group(0)
    assert '<span class="verdict verdict-stale">Paused</span>' in panel
    assert re.search(rf"Paused just now by {manager}: Vendor outage\.", panel)
    assert "“Resolution events” is paused: its token is refused with 409" in page
    assert url(feed, "resume") in panel and url(feed, "pause") not in panel


@pytest.mark.parametrize("action", SERVICES)
def test_a_step_without_a_reason_is_a_field_error_with_status_400(client, manager, feed, action):
    if action == "resume":
        DataFeed.objects.filter(pk=feed.pk).update(status=FeedStatus.PAUSED)
    client.force_login(manager)

    response = client.post(url(feed, action), {"reason": "  "})

    assert response.status_code == 400
    assert response.context["form"].errors["reason"] == ["This field is required."]
    assert feed.events.count() == 1
    assert client.post(url(feed, action), {}).status_code == 400


@pytest.mark.parametrize("reason", ["x" * 501, "a\x00b"], ids=["too-long", "nul"])
@pytest.mark.parametrize("action", ["pause", "retire", "rotate"])
def test_a_bad_reason_is_a_field_error_and_changes_nothing(client, manager, feed, action, reason):
    before = reread(feed).token_hash
    client.force_login(manager)

    response = client.post(url(feed, action), {"reason": reason})

    assert response.status_code == 400
    assert "reason" in response.context["form"].errors
    assert (reread(feed).status, reread(feed).token_hash) == (FeedStatus.ACTIVE, before)
    assert feed.events.count() == 1


def test_an_unknown_feed_is_not_found(client, manager, feed):
    client.force_login(manager)
    for action in ("pause", "resume", "retire", "rotate", "token"):
        missing = f"/initiatives/{feed.initiative.slug}/feeds/{feed.pk + 1000}/{action}/"
        assert client.post(missing, {"reason": "Because."}).status_code == 404


def test_resuming_a_retired_feed_from_the_page_is_a_form_error(client, manager, feed):
    services.retire_feed(feed=feed, user=manager, reason="Done.")
    client.force_login(manager)

    response = client.post(url(feed, "resume"), {"reason": "Please."})

    assert response.status_code == 400
    assert "retired, which is final" in response.content.decode()
    assert reread(feed).status == FeedStatus.RETIRED


def test_a_retired_feed_offers_no_rotation_and_its_page_says_why(client, manager, feed):
    services.retire_feed(feed=feed, user=manager, reason="Done.")
    client.force_login(manager)

    confirm = client.get(url(feed, "rotate")).content.decode()
    post = client.post(url(feed, "rotate"))
    page = client.get(feed.initiative.get_absolute_url()).content.decode()

    assert "is retired: its token is revoked for good" in confirm
    assert "Rotate token</button>" not in confirm
    assert post.status_code == 400
    panel = re.search(r"<strong>Resolution events</strong>.*?</li>", page, re.S).group(0)
    assert '<span class="verdict verdict-none">Retired</span>' in panel
    assert "token revoked" in panel
    assert "Rotate token" not in panel and "<form" not in panel


@pytest.mark.parametrize("who", ["executive", "viewer", "outsider"])
def test_others_get_403_on_every_life_cycle_page(client, request, feed, who):
    client.force_login(request.getfixturevalue(who))
    for action in ("pause", "resume", "retire"):
        assert client.get(url(feed, action)).status_code == 403
        assert client.post(url(feed, action), {"reason": "Because."}).status_code == 403
    assert reread(feed).status == FeedStatus.ACTIVE
    page = client.get(feed.initiative.get_absolute_url()).content.decode()
    assert url(feed, "pause") not in page and url(feed, "retire") not in page


def test_anonymous_visitors_are_sent_to_log_in(client, feed):
    response = client.post(url(feed, "pause"), {"reason": "Because."})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert reread(feed).status == FeedStatus.ACTIVE


def test_a_feed_of_another_initiative_is_not_found_through_this_one(client, manager, feed):
    other = InitiativeFactory()
    client.force_login(manager)
    response = client.post(
        f"/initiatives/{other.slug}/feeds/{feed.pk}/pause/", {"reason": "Because."}
    )
    assert response.status_code == 404
    assert reread(feed).status == FeedStatus.ACTIVE


def test_the_page_queries_do_not_grow_with_paused_and_retired_feeds(
    client, manager, initiative, django_assert_num_queries
):
    DataFeedFactory(initiative=initiative)
    client.force_login(manager)
    client.get(initiative.get_absolute_url())
    with CaptureQueriesContext(connection) as captured:
        client.get(initiative.get_absolute_url())
    for n in range(4):
        other = DataFeedFactory(initiative=initiative, name=f"Halted {n}")
        step = services.pause_feed if n % 2 else services.retire_feed
        step(feed=other, user=UserFactory(role=Role.PROGRAMME_MANAGER), reason=f"Reason {n}.")
    with django_assert_num_queries(len(captured)):
        body = client.get(initiative.get_absolute_url()).content.decode()
    assert len(re.findall(r'class="small feed-status">[^<]*: Reason \d\.', body)) == 4


# The API -----------------------------------------------------------------------------------------
def test_a_paused_feed_s_token_gets_409_saying_since_when_by_whom_and_why(
    client, post, paused, token, manager, metric
):
    response = post(client, paused, token, [item(metric)])

    assert response.status_code == 409
    error = response.json()["error"]
    since = reread(paused).status_event.at.astimezone(UTC)
    assert error == (
        f"The feed “Resolution events” is paused since {since:%Y-%m-%d %H:%M} UTC by "
        f"{manager.get_full_name()}: Vendor outage until Monday. Nothing was stored. Someone "
        "who manages the feed can resume it on the initiative's page."
    )
    assert not Observation.objects.exists() and not Delivery.objects.exists()


def test_a_paused_feed_s_token_gets_409_even_with_a_bad_body(client, post, paused, token):
    assert post(client, paused, token, "not json").status_code == 409


def test_a_resumed_feed_takes_deliveries_with_its_token_again(
    client, post, paused, token, manager, metric
):
    services.resume_feed(feed=paused, user=manager, reason="Vendor is back.")
    assert post(client, paused, token, [item(metric)]).status_code == 201


def test_storing_to_a_paused_feed_is_refused_under_the_lock(paused, metric):
    """The API's early check aside, ingest.store reads the status itself."""
    copy_seen_as_active = DataFeed.objects.get(pk=paused.pk)
    copy_seen_as_active.status = FeedStatus.ACTIVE
    with pytest.raises(ingest.FeedNotActive, match="is paused since"):
        ingest.store(copy_seen_as_active, [(metric.pk, Cohort.PILOT, timezone.now(), 1.0)])
    assert not Observation.objects.exists() and not Delivery.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_stop_committing_while_a_delivery_is_under_way_is_seen_by_the_delivery(
    require_postgres,
):
    """The delivery authenticated while the feed was active; the stop that pauses it commits
    while the delivery waits for the initiative's share lock. The delivery reads the status
    under that lock, so it answers 409 and stores nothing."""
    manager = UserFactory(username="pm-stopper", role=Role.PROGRAMME_MANAGER)
    initiative = InitiativeFactory(framed=True)
    feed, token = services.create_feed(
        initiative=initiative, user=manager, name="Events", kind=FeedKind.LIVE, owner=manager,
        freshness_hours=24,
    )  # fmt: skip
    metric = initiative.primary_metric
    stopped, release = threading.Event(), threading.Event()
    outcome: dict = {}

    def stop() -> None:
        try:
            with transaction.atomic():
                gates.decide(
                    initiative=Initiative.objects.get(pk=initiative.pk),
                    transition=T.STOP,
                    user=User.objects.get(pk=manager.pk),
                    rationale="Superseded by the vendor's tool.",
                    stop_reason="superseded",
                )
                stopped.set()
                release.wait(20)  # the pause is written, not yet committed
        except Exception as exc:
            outcome["stop"] = exc
            stopped.set()
        finally:
            connection.close()

    def deliver() -> None:
        try:
            outcome["response"] = Client().post(
                API.format(feed.pk),
                data=[item(metric)],
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {token}",
            )
        finally:
            connection.close()

    stopper = threading.Thread(target=stop)
    stopper.start()
    assert stopped.wait(20) and "stop" not in outcome, outcome
    delivery = threading.Thread(target=deliver)
    delivery.start()
    waited = _wait_for_a_lock_wait()
    release.set()
    stopper.join(20)
    delivery.join(20)

    assert waited, "the delivery never waited for the initiative's lock"
    response = outcome["response"]
    assert response.status_code == 409, response.content
    assert "Initiative stopped: Superseded by the vendor's tool." in response.json()["error"]
    assert not Observation.objects.exists() and not Delivery.objects.exists()
    assert reread(feed).status == FeedStatus.PAUSED


def _wait_for_a_lock_wait(timeout: float = 10) -> bool:
    """Whether another connection is waiting for a row lock, polled until `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"
            )
            if cursor.fetchone()[0]:
                return True
        time.sleep(0.05)
    return False


# Stopping an initiative --------------------------------------------------------------------------
def test_stopping_an_initiative_pauses_its_active_feeds_in_the_decider_s_name(
    initiative, manager, executive
):
    active = DataFeedFactory(initiative=initiative, name="Active")
    already = DataFeedFactory(initiative=initiative, name="Already paused")
    services.pause_feed(feed=already, user=manager, reason="Earlier outage.")
    gone = DataFeedFactory(initiative=initiative, name="Gone")
    services.retire_feed(feed=gone, user=manager, reason="Replaced.")
    elsewhere = DataFeedFactory(initiative=InitiativeFactory())

    decision = gates.decide(
        initiative=initiative,
        transition=T.STOP,
        user=executive,
        rationale="The vendor's tool does this better.",
        stop_reason="superseded",
    )

    event = reread(active).status_event
    assert reread(active).status == FeedStatus.PAUSED
    assert (event.action, event.by, event.at) == (FeedAction.PAUSED, executive, decision.decided_at)
    assert event.reason == "Initiative stopped: The vendor's tool does this better."
    assert reread(already).status_event.reason == "Earlier outage."
    assert reread(gone).status == FeedStatus.RETIRED
    assert reread(elsewhere).status == FeedStatus.ACTIVE
    assert chain_is_intact(initiative)


def test_reopening_an_initiative_resumes_none_of_its_feeds(initiative, manager, executive):
    feed = DataFeedFactory(initiative=initiative)
    advance(initiative, Stage.STOPPED, user=executive)
    gates.decide(
        initiative=Initiative.objects.get(pk=initiative.pk),
        transition=T.REOPEN,
        user=executive,
        rationale="A new sponsor wants another try.",
    )
    assert reread(feed).status == FeedStatus.PAUSED


# CSV uploads -------------------------------------------------------------------------------------
def _upload(client, feed, metric):
    from django.core.files.uploadedfile import SimpleUploadedFile

    moment = timezone.now().isoformat()
    text = f"metric,cohort,observed_at,value\n{metric.slug},pilot,{moment},91\n"
    return client.post(
        f"/initiatives/{feed.initiative.slug}/upload/",
        {"feed": feed.pk, "file": SimpleUploadedFile("a.csv", text.encode())},
    )


@pytest.mark.parametrize("step", ["pause", "retire"])
def test_an_upload_to_a_paused_or_retired_feed_is_a_form_error(client, manager, feed, metric, step):
    SERVICES[step](feed=feed, user=manager, reason="Vendor outage.")
    client.force_login(manager)

    response = _upload(client, feed, metric)

    assert response.status_code == 400
    assert "feed" in response.context["form"].errors
    assert f"is {step}d since" in response.content.decode()
    assert not Observation.objects.exists()


def test_an_upload_confirmed_after_the_feed_was_paused_stores_nothing(
    client, manager, feed, metric
):
    client.force_login(manager)
    payload = _upload(client, feed, metric).context["payload"]
    services.pause_feed(feed=feed, user=manager, reason="Vendor outage.")

    response = client.post(f"/initiatives/{feed.initiative.slug}/upload/", {"payload": payload})

    assert response.status_code == 400
    assert "is paused since" in response.context["form"].errors["feed"][0]
    assert not Observation.objects.exists() and not Delivery.objects.exists()


# What reads the status ---------------------------------------------------------------------------
def _outcome(initiative, key):
    from gates.criteria import registry

    fresh = Initiative.objects.get(pk=initiative.pk)
    return {o.key: o for o in registry.evaluate(fresh, T.SUBMIT_FOR_REVIEW)}[key]


def test_gate_two_counts_only_active_live_feeds(initiative, manager):
    feed = DataFeedFactory(initiative=initiative, name="Claims events")
    assert _outcome(initiative, "live_feed").passed
    services.pause_feed(feed=feed, user=manager, reason="Vendor outage.")

    result = _outcome(initiative, "live_feed")

    assert not result.passed
    assert result.reason.startswith("No live feed is active: “Claims events” is paused since ")
    assert result.reason.endswith(f"by {manager.get_full_name()}: Vendor outage.")


def test_the_stale_check_leaves_paused_and_retired_feeds_alone(initiative, manager):
    long_ago = timezone.now() - timedelta(days=30)
    feeds = [DataFeedFactory(initiative=initiative, name=f"Feed {n}") for n in range(3)]
    DataFeed.objects.update(created_at=long_ago, is_stale=True)
    services.pause_feed(feed=feeds[1], user=manager, reason="Outage.")
    services.retire_feed(feed=feeds[2], user=manager, reason="Gone.")
    DataFeed.objects.filter(pk=feeds[1].pk).update(is_stale=False)

    status.mark_stale_feeds()

    assert [reread(f).is_stale for f in feeds] == [True, False, False]


def test_a_resumed_feed_has_a_full_window_before_it_can_be_stale(paused, manager):
    DataFeed.objects.filter(pk=paused.pk).update(created_at=timezone.now() - timedelta(days=30))
    services.resume_feed(feed=paused, user=manager, reason="Back.")
    status.mark_stale_feeds()
    assert not reread(paused).is_stale
    status.mark_stale_feeds(now=timezone.now() + timedelta(hours=25))
    assert reread(paused).is_stale


def test_a_paused_feed_is_not_what_makes_a_metric_stale(initiative, manager, metric):
    active = DataFeedFactory(initiative=initiative)
    halted = DataFeedFactory(initiative=initiative, is_stale=True)
    services.pause_feed(feed=halted, user=manager, reason="Outage.")
    DataFeed.objects.filter(pk=halted.pk).update(is_stale=True)
    status.recompute(metric_ids=[metric.pk])
    assert metric.snapshots.get().verdict != "stale"
    DataFeed.objects.filter(pk=active.pk).update(is_stale=True)
    status.recompute(metric_ids=[metric.pk])
    assert metric.snapshots.first().verdict == "stale"


def test_purgatory_flags_borrowed_data_when_the_only_live_feed_is_paused(initiative, manager):
    advance(initiative, Stage.THIN_SLICE, user=manager)
    feed = DataFeedFactory(initiative=initiative)
    assert "borrowed_data" not in detect().get(initiative.pk, {})
    services.pause_feed(feed=feed, user=manager, reason="Outage.")
    assert detect()[initiative.pk]["borrowed_data"] == (
        "No live data feed: its data is borrowed, not integrated."
    )


def test_purgatory_counts_only_active_live_feeds_as_stale(initiative, manager):
    advance(initiative, Stage.THIN_SLICE, user=manager)
    DataFeedFactory(initiative=initiative, is_stale=True)
    halted = DataFeedFactory(initiative=initiative)
    services.pause_feed(feed=halted, user=manager, reason="Outage.")
    DataFeed.objects.filter(pk=halted.pk).update(is_stale=True)
    DataFeedFactory(initiative=initiative)
    assert detect()[initiative.pk]["borrowed_data"] == (
        "1 of 2 live feed(s) missed their freshness window."
    )


def test_a_second_feed_of_the_same_name_is_a_field_error_not_a_crash(initiative, manager):
    from django.core.exceptions import ValidationError

    services.create_feed(
        initiative=initiative,
        user=manager,
        name="Claims events",
        kind="live",
        owner=manager,
        freshness_hours=24,
    )
    # As the second of two people submitting at once would meet it, past the form's check.
    with pytest.raises(ValidationError) as error:
        services.create_feed(
            initiative=initiative,
            user=manager,
            name="claims events ",
            kind="live",
            owner=manager,
            freshness_hours=24,
        )
    assert "already has a feed of that name" in str(error.value.message_dict["name"])
    assert initiative.feeds.count() == 1
