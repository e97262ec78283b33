"""Passes over both delivery queues, email then webhooks, until they are empty or the time
given is spent (the next nudge or tick carries on)."""

import time

from notifications import mail, webhooks


def deliver(*, seconds: float = 30.0) -> int:
    started = time.monotonic()
    total = 0
    while True:
        done = mail.send_due() + webhooks.deliver_due()
        total += done
        if not done or time.monotonic() - started > seconds:
            return total
