"""Webhooks to a real HTTP receiver that checks the signature and fails when told to, so
that retries, backoff, giving up and attempt logging are seen from the receiving side."""

import json
from datetime import timedelta

import pytest

from gates import clock, services
from gates.stages import Transition
from notifications import webhooks
from notifications.models import (
    DeliveryState,
    EmailState,
    Notification,
    Webhook,
    WebhookDelivery,
)
from tests.factories import InitiativeFactory
from tests.faults.stack import free_port
from tests.helpers import criteria_passing
from tests.notifications.realparts import WebhookReceiver

pytestmark = pytest.mark.django_db

SECRET = "whsec-3b7f0c1e9a"


@pytest.fixture
def receiver():
    """Fails the first two requests with 500, accepts the rest."""
    with WebhookReceiver(SECRET, statuses=(500, 500)) as server:
        yield server


@pytest.fixture
def no_jitter(monkeypatch):
    """delay() without its random part: every wait is exactly its base."""

    def middle(low, high):
        assert (low, high) == (0.5, 1.5)
        return 1.0

    monkeypatch.setattr(webhooks.random, "uniform", middle)


def decide(initiative, user):
    with criteria_passing():
        return services.decide(
            initiative=initiative,
            transition=Transition.APPROVE_FRAME,
            user=user,
            rationale="The problem and its measure are agreed.",
        )


def quiet_initiative():
    """An initiative with nobody named on it: its decisions email nobody, so webhooks are
    their only channel."""
    return InitiativeFactory(title="Claims triage")


def test_failed_posts_are_retried_with_doubling_backoff_until_the_receiver_accepts(
    receiver, manager, settings, no_jitter
):
    settings.GANTRY_WEBHOOK_RETRY_SECONDS = 30
    hook = Webhook.objects.create(name="Ops channel", url=receiver.url, secret=SECRET)
    initiative = quiet_initiative()
    decision = decide(initiative, manager)
    delivery = WebhookDelivery.objects.get(webhook=hook)
    assert delivery.key == f"decision:{decision.pk}"

    assert webhooks.deliver_due() == 1
    delivery.refresh_from_db()
    first = delivery.tries.get()
    assert (delivery.state, delivery.attempts) == (DeliveryState.PENDING, 1)
    assert delivery.next_at - first.at == timedelta(seconds=30)
    assert webhooks.deliver_due() == 0  # not due before its backoff

    with clock.at(delivery.next_at):
        assert webhooks.deliver_due() == 1
    delivery.refresh_from_db()
    second = delivery.tries.last()
    assert delivery.next_at - second.at == timedelta(seconds=60)

    with clock.at(delivery.next_at):
        assert webhooks.deliver_due() == 1
    delivery.refresh_from_db()
    tries = list(delivery.tries.all())

    assert [hit.status for hit in receiver.hits] == [500, 500, 200]
    assert all(hit.verified for hit in receiver.hits)
    assert [t.status for t in tries] == [500, 500, 200]
    assert [t.error for t in tries] == ["HTTP 500 Internal Server Error"] * 2 + [""]
    assert all(t.latency_ms >= 20 for t in tries)  # the receiver takes 20 ms to answer
    assert delivery.state == DeliveryState.DELIVERED
    assert delivery.attempts == 3 and delivery.delivered_at == tries[-1].at
    assert webhooks.deliver_due() == 0  # delivered: never posted again

    accepted = receiver.hits[-1]
    assert accepted.headers["content-type"] == "application/json"
    assert accepted.headers["gantry-event"] == "decision"
    assert accepted.headers["gantry-delivery"] == str(delivery.pk)
    assert {hit.body for hit in receiver.hits} == {accepted.body}  # the same event each time
    body = accepted.json()
    link = settings.GANTRY_BASE_URL + initiative.get_absolute_url()
    assert body == {
        "id": f"decision:{decision.pk}",
        "event": "decision",
        "at": decision.decided_at.isoformat(),
        "initiative_id": initiative.pk,
        "title": "Claims triage: gate decision recorded",
        "body": decision.audit_summary(),
        "url": link,
        "text": (
            f"*Claims triage: gate decision recorded*\n{decision.audit_summary()}\n"
            f"<{link}|Open in Gantry>"
        ),
    }


def test_an_event_that_people_are_emailed_about_reaches_the_webhooks_too(receiver, manager):
    hook = Webhook.objects.create(name="Ops channel", url=receiver.url, secret=SECRET)
    initiative = InitiativeFactory(title="Invoice matching", framed=True)  # owners named
    decision = decide(initiative, manager)
    key = f"decision:{decision.pk}"
    assert Notification.objects.filter(key=key, email=EmailState.PENDING).count() == 2

    assert WebhookDelivery.objects.filter(webhook=hook, key=key).exists(), (
        "the decision was emailed to its owners but never queued for the webhook"
    )


def test_the_receiver_rejects_a_tampered_signature(manager):
    with WebhookReceiver(SECRET) as receiver:
        Webhook.objects.create(name="Ops channel", url=receiver.url, secret=SECRET)
        decide(quiet_initiative(), manager)
        assert webhooks.deliver_due() == 1
    hit = receiver.hits[-1]
    header, body = hit.headers["gantry-signature"], hit.body
    timestamp = int(dict(part.split("=", 1) for part in header.split(","))["t"])
    assert hit.verified and webhooks.verify(SECRET, header, body)

    changed = json.dumps({**hit.json(), "title": "Claims triage: stopped"}).encode()
    assert not webhooks.verify(SECRET, header, changed)
    assert not webhooks.verify(SECRET, header[:-4] + "0000", body)
    assert not webhooks.verify("another-secret", header, body)
    assert not webhooks.verify(SECRET, header.replace(f"t={timestamp}", f"t={timestamp + 1}"), body)
    assert not webhooks.verify(SECRET, header, body, now=timestamp + 301)  # replayed later
    assert not webhooks.verify(SECRET, "v1=" + header.split("v1=")[1], body)
    assert not webhooks.verify(SECRET, "", body)


def test_an_endpoint_that_never_accepts_is_given_up_after_max_attempts(manager, settings):
    settings.GANTRY_WEBHOOK_RETRY_SECONDS = 0  # every retry is due at once
    with WebhookReceiver(SECRET, then=503) as receiver:
        hook = Webhook.objects.create(name="Broken", url=receiver.url, secret=SECRET)
        decide(quiet_initiative(), manager)
        assert webhooks.deliver_due() == webhooks.MAX_ATTEMPTS
        assert webhooks.deliver_due() == 0  # given up: never tried again

    delivery = WebhookDelivery.objects.get(webhook=hook)
    assert delivery.state == DeliveryState.FAILED
    assert delivery.attempts == webhooks.MAX_ATTEMPTS and delivery.delivered_at is None
    assert [t.status for t in delivery.tries.all()] == [503] * webhooks.MAX_ATTEMPTS
    assert len(receiver.hits) == webhooks.MAX_ATTEMPTS
    assert all(hit.verified for hit in receiver.hits)


def test_failing_endpoints_do_not_hold_back_a_working_one(manager, settings, monkeypatch):
    settings.GANTRY_WEBHOOK_RETRY_SECONDS = 30
    monkeypatch.setattr(webhooks, "TIMEOUT_SECONDS", 0.3)
    refused = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    with (
        WebhookReceiver(SECRET, latency=1) as hanging,
        WebhookReceiver(SECRET) as working,
    ):
        # Created first, so queued first.
        Webhook.objects.create(name="A refused", url=refused, secret=SECRET)
        Webhook.objects.create(name="B hanging", url=hanging.url, secret=SECRET)
        Webhook.objects.create(name="C working", url=working.url, secret=SECRET)
        decide(quiet_initiative(), manager)

        assert webhooks.deliver_due() == 3

    state = {
        d.webhook.name: (d.state, d.attempts, [(t.status, bool(t.error)) for t in d.tries.all()])
        for d in WebhookDelivery.objects.select_related("webhook")
    }
    assert state == {
        "A refused": (DeliveryState.PENDING, 1, [(None, True)]),
        "B hanging": (DeliveryState.PENDING, 1, [(None, True)]),
        "C working": (DeliveryState.DELIVERED, 1, [(200, False)]),
    }
    assert len(working.hits) == 1 and working.hits[0].verified


def test_delay_doubles_from_the_base(settings, no_jitter):
    settings.GANTRY_WEBHOOK_RETRY_SECONDS = 30
    waits = [webhooks.delay(n).total_seconds() for n in range(1, webhooks.MAX_ATTEMPTS)]
    assert waits == [30, 60, 120, 240, 480, 960, 1920]


def test_delay_is_capped_at_the_longest_wait(settings, no_jitter):
    settings.GANTRY_WEBHOOK_RETRY_SECONDS = 600
    cap = timedelta(seconds=webhooks.MAX_DELAY_SECONDS)
    assert webhooks.delay(7) == cap  # 600 s doubled six times is past six hours
    assert webhooks.delay(40) == cap


@pytest.mark.parametrize("drawn, share", [(0.5, 0.5), (1.5, 1.5)])
def test_delay_jitter_stays_within_half_the_base_either_way(settings, monkeypatch, drawn, share):
    settings.GANTRY_WEBHOOK_RETRY_SECONDS = 30
    monkeypatch.setattr(webhooks.random, "uniform", lambda low, high: drawn)
    assert webhooks.delay(3) == timedelta(seconds=120 * share)


def test_delay_with_jitter_never_exceeds_the_longest_wait(settings, monkeypatch):
    settings.GANTRY_WEBHOOK_RETRY_SECONDS = 600
    monkeypatch.setattr(webhooks.random, "uniform", lambda low, high: high)
    cap = timedelta(seconds=webhooks.MAX_DELAY_SECONDS)
    too_long = {
        n: str(webhooks.delay(n))
        for n in range(1, webhooks.MAX_ATTEMPTS)
        if webhooks.delay(n) > cap
    }
    assert not too_long, f"waits after these attempts exceed {cap}: {too_long}"
