"""Events become notifications: who hears what, written in the transaction of the cause.

`hear` is the listener `gates.events` calls. Each kind has a builder that reads what it
needs for the whole batch at once (a purgatory sweep may raise hundreds of flags in one
event batch), names the recipients and words the message. The rows are inserted with ON
CONFLICT DO NOTHING on (key, recipient): a cause heard twice notifies nobody twice.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import reverse

from gates import clock
from gates.events import Event
from jobs import publish
from metrics.models import DataFeed, FeedStatus
from notifications import preferences, tasks, webhooks
from notifications.models import EmailState, Kind, Notification
from portfolio.models import FlagKind, Initiative
from portfolio.roles import Role
from readiness.models import PreLaunchWorkItem, ReviewItem, ReviewOutcome, WorkStatus
from readiness.queries import eligible_deciders

log = logging.getLogger(__name__)

Builder = Callable[[list[Event], "Context"], list["Said"]]
_builders: dict[str, Builder] = {}


def builds(kind: str):
    def register(builder: Builder) -> Builder:
        _builders[kind] = builder
        return builder

    return register


class Context:
    """What the builders of one batch share, each read at most once."""

    def __init__(self, events: list[Event]) -> None:
        ids = {e.initiative_id for e in events if e.initiative_id}
        self.initiatives = Initiative.objects.in_bulk(ids)
        self._managers: list[int] | None = None

    @property
    def managers(self) -> list[int]:
        if self._managers is None:
            self._managers = list(
                get_user_model()
                .objects.filter(is_active=True, groups__name=Role.PROGRAMME_MANAGER)
                .values_list("pk", flat=True)
            )
        return self._managers


def hear(events: list[Event]) -> None:
    """The listener: notify the people each event concerns, and queue it for the webhooks."""
    context = Context(events)
    by_kind: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        by_kind[event.kind].append(event)
    said: list[Said] = []
    for kind, batch in by_kind.items():
        builder = _builders.get(kind)
        if builder is not None:
            said += builder(batch, context)
    emails = create([row for message in said for row in message.rows()])
    if emails or webhooks.enqueue(said):
        nudge()


def nudge() -> None:
    """Have a worker deliver once the transaction commits. Only a nudge: if it is lost, the
    tick's sweep delivers the rows within one tick."""
    transaction.on_commit(lambda: publish.send(tasks.deliver))


def create(rows: list[Notification]) -> int:
    """Insert the rows (one per key and recipient, the first said wins), deciding for each
    whether it is emailed; returns how many are to be emailed."""
    unique: dict[tuple[str, int], Notification] = {}
    for row in rows:
        unique.setdefault((row.key, row.recipient_id), row)
    rows = list(unique.values())
    if not rows:
        return 0
    by_kind: dict[str, set[int]] = defaultdict(set)
    for row in rows:
        by_kind[row.kind].add(row.recipient_id)
    emailed = {kind: preferences.emailed(kind, ids) for kind, ids in by_kind.items()}
    for row in rows:
        wanted = row.recipient_id in emailed[row.kind]
        row.email = EmailState.PENDING if wanted else EmailState.SKIPPED
        row.email_next_at = row.created_at if wanted else None
    # Canonical order, so two transactions inserting overlapping rows wait, never deadlock.
    rows.sort(key=lambda r: (r.key, r.recipient_id))
    Notification.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
    return sum(row.email == EmailState.PENDING for row in rows)


@dataclass(frozen=True)
class Said:
    """What one event says, and to whom: the same words for every recipient and webhook."""

    event: Event
    kind: str
    recipients: tuple[int, ...]
    title: str
    body: str
    url: str

    def rows(self) -> list[Notification]:
        return [
            Notification(
                recipient_id=pk,
                kind=self.kind,
                key=self.event.key,
                initiative_id=self.event.initiative_id,
                created_at=self.event.at or clock.now(),
                title=self.title[:300],
                body=self.body,
                url=self.url,
            )
            for pk in self.recipients
        ]


def notification(
    event: Event, kind: str, recipients: Iterable[int | None], *, title: str, body: str, url: str
) -> Said:
    """The event's message for each distinct recipient, never the person who caused it."""
    people = tuple(sorted({pk for pk in recipients if pk and pk != event.actor_id}))
    return Said(event, kind, people, title, body, url)


def _named(initiative: Initiative, *fields: str) -> list[int | None]:
    return [getattr(initiative, f"{field}_id") for field in fields]


# Builders -------------------------------------------------------------------------------
@builds(Kind.FLAG_RAISED)
@builds(Kind.FLAG_CLEARED)
def _flags(events: list[Event], context: Context) -> list[Said]:
    held = _stale_initiatives({e.initiative_id for e in events})
    rows = []
    for event in events:
        initiative = context.initiatives.get(event.initiative_id)
        if initiative is None:
            continue
        raised = event.kind == Kind.FLAG_RAISED
        # The root cause is already known: the stale-feed alert said the data stopped.
        if (
            raised
            and event.data["flag_kind"] == FlagKind.BELOW_THRESHOLD
            and event.initiative_id in held
        ):
            continue
        label = event.data["label"]
        title = (
            f"{initiative.title}: flagged “{label}”"
            if raised
            else f"{initiative.title}: “{label}” cleared"
        )
        body = event.data["reason"] if raised else f"No longer flagged: {event.data['reason']}"
        recipients = _named(initiative, "business_owner", "delivery_lead", "sponsor")
        rows.append(
            notification(
                event,
                event.kind,
                recipients + context.managers,
                title=title,
                body=body,
                url=initiative.get_absolute_url(),
            )
        )
    return rows


@builds(Kind.ITEM_ASSIGNED)
def _assigned(events: list[Event], context: Context) -> list[Said]:
    rows = []
    for event in events:
        initiative = context.initiatives[event.initiative_id]
        rows.append(
            notification(
                event,
                Kind.ITEM_ASSIGNED,
                [event.data["to"]],
                title=f"{initiative.title}: “{event.data['title']}” is yours to check",
                body="Check it with its evidence on the readiness review.",
                url=_review_url(initiative, event.data["review"]),
            )
        )
    return rows


@builds(Kind.ITEM_UNASSIGNED)
def _unassigned(events: list[Event], context: Context) -> list[Said]:
    rows = []
    for event in events:
        initiative = context.initiatives[event.initiative_id]
        rows.append(
            notification(
                event,
                Kind.ITEM_UNASSIGNED,
                [event.data["from"]],
                title=f"{initiative.title}: “{event.data['title']}” is no longer yours",
                body="It was taken back or given to someone else; nothing more is asked of you.",
                url=_review_url(initiative, event.data["review"]),
            )
        )
    return rows


@builds(Kind.REVIEW_READY)
def _ready(events: list[Event], context: Context) -> list[Said]:
    rows = []
    for event in events:
        initiative = context.initiatives[event.initiative_id]
        deciders = [person.pk for person in eligible_deciders(initiative)]
        rows.append(
            notification(
                event,
                Kind.REVIEW_READY,
                deciders,
                title=f"{initiative.title}: readiness review ready to decide",
                body="Every checklist item is checked. You may decide the review.",
                url=_review_url(initiative, event.data["review"]),
            )
        )
    return rows


@builds(Kind.DECISION)
def _decisions(events: list[Event], context: Context) -> list[Said]:
    ids = {e.initiative_id for e in events}
    working = _open_work_holders(ids)
    rows = []
    for event in events:
        initiative = context.initiatives[event.initiative_id]
        recipients = _named(
            initiative, "business_owner", "operational_owner", "delivery_lead", "sponsor"
        )
        rows.append(
            notification(
                event,
                Kind.DECISION,
                recipients + sorted(working.get(initiative.pk, ())),
                title=f"{initiative.title}: gate decision recorded",
                body=event.data["summary"],
                url=initiative.get_absolute_url(),
            )
        )
    return rows


@builds(Kind.FEED_STALE)
@builds(Kind.FEED_BACK)
def _feeds(events: list[Event], context: Context) -> list[Said]:
    rows = []
    for event in events:
        initiative = context.initiatives.get(event.initiative_id)
        if initiative is None:
            continue
        name = event.data["name"]
        if event.kind == Kind.FEED_STALE:
            title = f"{initiative.title}: feed “{name}” went stale"
            body = (
                f"No fresh data for {event.data['hours']} hours. Its initiative's metrics read "
                "“stale” until it delivers again, and their below-threshold alerts are held "
                "back meanwhile: the data stopped, not necessarily the results."
            )
        else:
            title = f"{initiative.title}: feed “{name}” came back"
            body = "It delivered fresh data again; the metrics are computed from it once more."
        rows.append(
            notification(
                event,
                event.kind,
                [event.data.get("owner"), initiative.delivery_lead_id],
                title=title,
                body=body,
                url=initiative.get_absolute_url(),
            )
        )
    return rows


@builds(Kind.VERDICT)
def _verdicts(events: list[Event], context: Context) -> list[Said]:
    rows = []
    for event in events:
        initiative = context.initiatives.get(event.initiative_id)
        if initiative is None:
            continue
        data = event.data
        rows.append(
            notification(
                event,
                Kind.VERDICT,
                _named(initiative, "business_owner", "sponsor"),
                title=(
                    f"{initiative.title}: {data['name']} now {data['now_label'].lower()} "
                    f"(was {data['was_label'].lower()})"
                ),
                body=data["summary"],
                url=initiative.get_absolute_url(),
            )
        )
    return rows


# Reads the builders share ------------------------------------------------------------------
def _review_url(initiative: Initiative, review_id: int) -> str:
    return reverse("review-detail", args=[initiative.slug, review_id])


def _stale_initiatives(ids: set[int]) -> set[int]:
    return set(
        DataFeed.objects.filter(initiative_id__in=ids, is_stale=True, status=FeedStatus.ACTIVE)
        .values_list("initiative_id", flat=True)
        .distinct()
    )


def _open_work_holders(ids: set[int]) -> dict[int, set[int]]:
    """Per initiative, who holds an unchecked item of its open review or open pre-launch work."""
    holders: dict[int, set[int]] = defaultdict(set)
    items = ReviewItem.objects.filter(
        review__initiative_id__in=ids,
        review__outcome=ReviewOutcome.OPEN,
        checked=False,
        assignee__isnull=False,
    ).values_list("review__initiative_id", "assignee_id")
    work = PreLaunchWorkItem.objects.filter(
        initiative_id__in=ids, status=WorkStatus.OPEN, assignee__isnull=False
    ).values_list("initiative_id", "assignee_id")
    for initiative_id, person in [*items, *work]:
        holders[initiative_id].add(person)
    return holders
