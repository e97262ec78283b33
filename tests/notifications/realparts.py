"""Real counterparts for the notification tests: an SMTP server, a webhook receiver, a cause.

`MailServer` is aiosmtpd on a free local port, keeping every message it accepted, parsed
with the `email` package; it can hold the next message unanswered (a delivery caught in
the middle) and be stopped and started again on the same port. `WebhookReceiver` is
http.server in a thread that checks each request's `Gantry-Signature` the way a receiver
would and answers with the statuses the test scripts.

    python -m tests.notifications.realparts decide --initiative ID --user ID

records the frame gate's approval of an initiative in frame (criteria passing) in
DATABASE_URL's database through gates.services.decide, as the web process would: its
notifications are written in the decision's transaction and the nudge is published to
CELERY_BROKER_URL. Prints {"decision", "notifications": [ids]} as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import email
import json
import logging
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

from tests.faults.stack import free_port, wait_for

PASSWORD = "correct-horse-battery"
# aiosmtpd logs every SMTP command at INFO: a failing test's report would drown in them.
logging.getLogger("mail.log").setLevel(logging.WARNING)


# SMTP --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """One message the server accepted: the envelope and the parsed message."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    def part(self, content_type: str) -> str:
        """The text of the message's part of this type (text/plain or text/html)."""
        found = self.message.get_body(preferencelist=(content_type.split("/")[1],))
        assert found is not None and found.get_content_type() == content_type, (
            f"no {content_type} part in {self.message_id}"
        )
        return found.get_content()


class _Handler:
    def __init__(self, server: MailServer) -> None:
        self.server = server

    async def handle_DATA(self, smtp, session, envelope) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=policy.default)
        received = Received(envelope.mail_from, tuple(envelope.rcpt_tos), message)
        if self.server._take_hold():
            with self.server._lock:
                self.server.held.append(received)
            self.server.holding.set()
            # Answer nothing until released: the sender sits between sending the message
            # and hearing it was accepted. Then refuse it, so it never counts as received.
            # (A sender that goes away meanwhile cancels this wait.)
            while not self.server._released.is_set():
                await asyncio.sleep(0.02)
            return "451 4.3.0 Held by the test and not accepted"
        with self.server._lock:
            self.server.received.append(received)
        return "250 2.0.0 Accepted"


class MailServer:
    """aiosmtpd on 127.0.0.1, started and stopped at will on the same port."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.received: list[Received] = []
        # Messages held unanswered (`hold_next`): never accepted.
        self.held: list[Received] = []
        self._lock = threading.Lock()
        self._holds = 0
        self._released = threading.Event()
        # Set once a held message arrived: its sender waits for the answer.
        self.holding = threading.Event()
        self._controller: Controller | None = None

    def start(self) -> MailServer:
        self._controller = Controller(
            _Handler(self), hostname="127.0.0.1", port=self.port, ready_timeout=10
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._released.set()  # a held handler must not keep the loop from stopping
            self._controller.stop()
            self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def hold_next(self) -> None:
        """Keep the next message unanswered until `release()`, then refuse it."""
        with self._lock:
            self._holds += 1
            self._released.clear()
            self.holding.clear()

    def release(self) -> None:
        self._released.set()

    def _take_hold(self) -> bool:
        with self._lock:
            if self._holds:
                self._holds -= 1
                return True
            return False

    def messages(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def message_ids(self) -> Counter:
        """How many times each Message-ID arrived."""
        return Counter(received.message_id for received in self.messages())

    def wait_for_messages(self, count: int, *, timeout: float = 60) -> list[Received]:
        try:
            wait_for(lambda: len(self.messages()) >= count, timeout=timeout,
                     what=f"{count} message(s) at the SMTP server")  # fmt: skip
        except TimeoutError as exc:
            got = [r.message["Subject"] for r in self.messages()]
            raise AssertionError(f"{exc}; received {len(got)}: {got}") from None
        return self.messages()

    def clear(self) -> None:
        with self._lock:
            self.received.clear()
            self.held.clear()

    def __enter__(self) -> MailServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def message_id_of(pk: int) -> str:
    """The Message-ID the email of notification `pk` carries."""
    from django.conf import settings

    return f"<notification-{pk}@{settings.GANTRY_MAIL_DOMAIN}>"


# Webhooks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    """One request the receiver got, whether its signature held, and what it answered."""

    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    status: int

    def json(self) -> dict:
        return json.loads(self.body)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # A sender that gave up waiting (a timeout under test) closed its end: not an error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class WebhookReceiver:
    """A webhook endpoint on a free local port.

    Each request's signature is checked with the endpoint's secret (401 when it does not
    hold); a signed request gets the next of `statuses`, then `then` once they run out.
    Every answer takes `latency` seconds, so the sender's measured latency is visible.
    """

    def __init__(
        self,
        secret: str,
        *,
        statuses: tuple[int, ...] = (),
        then: int = 200,
        latency: float = 0.02,
    ) -> None:
        self.secret = secret
        self.statuses = list(statuses)
        self.then = then
        self.latency = latency
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver._answer(self)

            def log_message(self, format, *args) -> None:
                pass

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/gantry"

    def _answer(self, request: BaseHTTPRequestHandler) -> None:
        from notifications.webhooks import verify

        body = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        verified = verify(self.secret, request.headers.get("Gantry-Signature", ""), body)
        with self._lock:
            if not verified:
                status = 401
            elif self.statuses:
                status = self.statuses.pop(0)
            else:
                status = self.then
            self.hits.append(
                Hit(request.path, {k.lower(): v for k, v in request.headers.items()}, body,
                    verified, status)
            )  # fmt: skip
        time.sleep(self.latency)
        answer = b'{"ok": true}' if 200 <= status < 300 else b'{"error": "try again"}'
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(answer)))
        request.end_headers()
        request.wfile.write(answer)

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# A cause in a process of its own ------------------------------------------------------------


def _decide_here(initiative_id: int, user_id: int) -> dict:
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    django.setup()
    from django.contrib.auth import get_user_model

    from gates import services
    from gates.stages import Transition
    from jobs import publish
    from notifications.models import Notification
    from portfolio.models import Initiative
    from tests.helpers import criteria_passing

    initiative = Initiative.objects.get(pk=initiative_id)
    user = get_user_model().objects.get(pk=user_id)
    with criteria_passing():
        decision = services.decide(
            initiative=initiative,
            transition=Transition.APPROVE_FRAME,
            user=user,
            rationale="Decided in a process of its own.",
        )
    # The nudge is published from a background thread: see it reach the broker first.
    if not publish.flush(timeout=10):
        raise RuntimeError("the nudge did not reach the broker within 10 s")
    notes = Notification.objects.filter(key=f"decision:{decision.pk}").order_by("pk")
    return {"decision": decision.pk, "notifications": list(notes.values_list("pk", flat=True))}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.notifications.realparts")
    commands = parser.add_subparsers(dest="command", required=True)
    deciding = commands.add_parser("decide", help="approve the frame gate of an initiative")
    deciding.add_argument("--initiative", type=int, required=True)
    deciding.add_argument("--user", type=int, required=True)
    args = parser.parse_args(argv)
    if args.command == "decide":
        print(json.dumps(_decide_here(args.initiative, args.user)))


if __name__ == "__main__":
    main()
