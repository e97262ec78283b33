"""Notification email over real SMTP: aiosmtpd receives it, the test reads it as a mail
client would, follows its link in Chromium and presses its one-click unsubscribe."""

import html
import re
import urllib.request
from collections import Counter
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from gates import clock
from gates.stages import Stage
from notifications import delivery, preferences
from notifications.models import EmailState, Kind, Notification
from portfolio.roles import Role
from readiness import services
from readiness.models import ReviewOutcome
from tests.e2e import conftest as e2e
from tests.e2e.conftest import login
from tests.factories import InitiativeFactory, UserFactory
from tests.helpers import advance
from tests.notifications.realparts import PASSWORD, MailServer, Received, message_id_of

# The journeys' Chromium page fixture, to follow the mail's link in.
browser_page = e2e.browser_page


@pytest.fixture
def smtp(settings):
    """A real SMTP server on a free port, and Django's SMTP backend pointed at it."""
    server = MailServer().start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = server.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 10
    yield server
    server.stop()


@pytest.fixture
def linked(live_server, settings):
    """Links in mail point at the live server. Requested before `assignment`: without a
    broker the mail leaves as soon as the assignment commits."""
    settings.GANTRY_BASE_URL = live_server.url
    return live_server


@pytest.fixture
def assignment():
    """A checklist item of an open readiness review assigned to Ada, who holds no other part
    in the initiative: her one notification is the assignment."""
    manager = UserFactory(username="pm", role=Role.PROGRAMME_MANAGER)
    ada = UserFactory(username="ada", first_name="Ada", last_name="Okafor", role=Role.OWNER)
    initiative = InitiativeFactory(title="Invoice matching", framed=True)
    advance(initiative, Stage.READINESS_REVIEW, user=manager)
    review = initiative.reviews.get(outcome=ReviewOutcome.OPEN)
    first, second = review.items.select_related("template_item", "review__initiative")[:2]
    services.assign(item=first, assignee=ada, user=manager)
    return SimpleNamespace(
        manager=manager,
        person=ada,
        initiative=initiative,
        review=review,
        item=first,
        other_item=second,
        note=Notification.objects.get(recipient=ada, kind=Kind.ITEM_ASSIGNED),
    )


def mail_to(server: MailServer, person) -> Received:
    mine = [r for r in server.messages() if r.rcpt_tos == (person.email,)]
    assert len(mine) == 1, f"{len(mine)} messages to {person.email}"
    return mine[0]


def header(message, name: str) -> str:
    """A header's value as a mail client shows it: a long value is folded onto the next
    line, and the parser keeps the fold's leading space."""
    return str(message[name]).strip()


def unsubscribe_url(message) -> str:
    """The URL of the List-Unsubscribe header (folded onto its own line when long)."""
    found = re.fullmatch(r"<(https?://[^>]+)>", header(message, "List-Unsubscribe"))
    assert found, message["List-Unsubscribe"]
    return found.group(1)


def one_click(url: str) -> int:
    """POST as a mail client's unsubscribe button does (RFC 8058): no cookie, no token."""
    request = urllib.request.Request(  # noqa: S310 - the live server's own URL
        url,
        data=b"List-Unsubscribe=One-Click",
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return response.status


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_assignment_email_has_both_parts_and_its_link_opens_the_review(
    browser_page, linked, smtp, settings, assignment
):
    live_server = linked
    delivery.deliver()

    received = mail_to(smtp, assignment.person)
    message = received.message
    note = assignment.note
    review_url = live_server.url + reverse(
        "review-detail", args=[assignment.initiative.slug, assignment.review.pk]
    )
    assert header(message, "Subject") == f"[Gantry] {note.title}"
    assert assignment.item.template_item.title in header(message, "Subject")
    assert header(message, "To") == assignment.person.email
    assert header(message, "From") == settings.DEFAULT_FROM_EMAIL
    assert header(message, "Message-ID") == message_id_of(note.pk)
    assert message.get_content_type() == "multipart/alternative"
    text, page_html = received.part("text/plain"), received.part("text/html")
    assert f"Open it in Gantry: {review_url}" in text
    links = [html.unescape(href) for href in re.findall(r'href="([^"]+)"', page_html)]
    assert review_url in links
    unsubscribe = unsubscribe_url(message)
    assert unsubscribe.startswith(f"{live_server.url}/notifications/unsubscribe/")
    assert header(message, "List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"
    assert unsubscribe in links and unsubscribe in text
    note.refresh_from_db()
    assert (note.email, note.email_attempts, note.email_error) == (EmailState.SENT, 1, "")

    page = browser_page
    login(page, "ada", PASSWORD)
    page.set_content(page_html)  # the mail as a mail client shows it
    page.click("text=Open in Gantry")
    page.wait_for_url(review_url)
    expect(page.locator("h1")).to_contain_text("Readiness review")
    expect(page.locator(f"#item-{assignment.item.pk}")).to_contain_text(
        assignment.item.template_item.title
    )


@pytest.mark.django_db(transaction=True)
def test_one_click_unsubscribe_from_the_mail_turns_that_kind_of_email_off(
    linked, smtp, settings, assignment
):
    delivery.deliver()
    person = assignment.person
    url = unsubscribe_url(mail_to(smtp, person).message)

    # A link scanner following the link unsubscribes nobody: the page only asks.
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
        assert response.status == 200
    assert preferences.choices_of(person)[Kind.ITEM_ASSIGNED] is True

    assert one_click(url) == 200

    chosen = preferences.choices_of(person)
    assert chosen[Kind.ITEM_ASSIGNED] is False
    assert chosen[Kind.DECISION] is True  # only the kind the mail was about
    services.assign(item=assignment.other_item, assignee=person, user=assignment.manager)
    later = Notification.objects.exclude(pk=assignment.note.pk).get(
        recipient=person, kind=Kind.ITEM_ASSIGNED
    )
    assert later.email == EmailState.SKIPPED  # in the app only
    smtp.clear()
    delivery.deliver()
    assert not smtp.messages()


@pytest.mark.django_db
def test_mail_waits_while_the_smtp_server_is_down_and_is_sent_once_it_is_back(
    smtp, settings, assignment
):
    settings.GANTRY_MAIL_RETRY_SECONDS = 60
    smtp.stop()
    pending = list(Notification.objects.filter(email=EmailState.PENDING).order_by("pk"))
    assert assignment.note in pending and len(pending) > 1  # the decisions' mail too
    before = clock.now()

    delivery.deliver()

    for note in pending:
        note.refresh_from_db()
        assert note.email == EmailState.PENDING
        assert note.email_attempts == 1
        assert note.email_error.startswith("ConnectionRefusedError"), note.email_error
        assert note.email_next_at >= before + timedelta(seconds=60)
    assert delivery.deliver() == 0  # nothing is due before its backoff

    # Still down when the retry comes: the next wait is twice as long.
    first_retry = max(note.email_next_at for note in pending)
    with clock.at(first_retry):
        delivery.deliver()
    for note in pending:
        note.refresh_from_db()
        assert (note.email, note.email_attempts) == (EmailState.PENDING, 2)
        assert note.email_next_at >= first_retry + timedelta(seconds=120)

    smtp.start()
    assert delivery.deliver() == 0  # back, but the rows wait for their time
    with clock.at(max(note.email_next_at for note in pending)):
        assert delivery.deliver() == len(pending)

    assert smtp.message_ids() == Counter({message_id_of(note.pk): 1 for note in pending})
    for note in pending:
        note.refresh_from_db()
        assert (note.email, note.email_attempts, note.email_error) == (EmailState.SENT, 3, "")
