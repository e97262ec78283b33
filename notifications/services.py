"""Events become notifications: who hears what, written in the transaction of the cause.

`hear` is the listener `gates.events` calls. Each kind has a builder that reads what it
needs for the whole batch at once (a purgatory sweep may raise hundreds of flags in one
event batch), names the recipients and words the message. The rows are inserted with ON
CONFLICT DO NOTHING on (key, recipient): a cause heard twice notifies nobody twice.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import NamedTuple

from django.contrib.auth import get_user_model
from django.db import connection, transaction
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

# A builder words one event and names its recipients, or returns None to say nothing.
Builder = Callable[[Event, Initiative, "Context"], "Said | None"]
_builders: dict[str, Builder] = {}


def builds(kind: str):
    def register(builder: Builder) -> Builder:
        _builders[kind] = builder
        return builder

    return register


class Context:
    """What the builders of one batch share, each read at most once."""

    def __init__(self, events: list[Event]) -> None:
        self.ids = {e.initiative_id for e in events if e.initiative_id}
        self.initiatives = Initiative.objects.in_bulk(self.ids)
        self._managers: list[int] | None = None
        self._stale: set[int] | None = None
        self._working: dict[int, set[int]] | None = None

    @property
    def managers(self) -> list[int]:
        if self._managers is None:
            self._managers = list(
                get_user_model()
                .objects.filter(is_active=True, groups__name=Role.PROGRAMME_MANAGER)
                .values_list("pk", flat=True)
            )
        return self._managers

    @property
    def stale(self) -> set[int]:
        """The batch's initiatives with a stale active feed."""
        if self._stale is None:
            self._stale = _stale_initiatives(self.ids)
        return self._stale

    @property
    def working(self) -> dict[int, set[int]]:
        """Per initiative of the batch, who holds open work on it."""
        if self._working is None:
            self._working = _open_work_holders(self.ids)
        return self._working


def hear(events: list[Event]) -> None:
    """The listener: notify the people each event concerns, and queue it for the webhooks."""
    context = Context(events)
    said: list[Said] = []
    for event in events:
        builder = _builders.get(event.kind)
        initiative = context.initiatives.get(event.initiative_id)
        if builder is not None and initiative is not None:
            message = builder(event, initiative, context)
            if message is not None:
                said.append(message)
    emails = create([row for message in said for row in message.rows()])
    hooked = webhooks.enqueue(said)
    if emails or hooked:
        nudge()


def nudge() -> None:
    """Have a worker deliver once the transaction commits. Only a nudge: if it is lost, the
    tick's sweep delivers the rows within one tick."""
    transaction.on_commit(lambda: publish.send(tasks.deliver))


def create(rows: Iterable[Notification]) -> int:
    """Insert the rows (one per key and recipient, the first said wins), deciding for each
    whether it is emailed; returns how many are to be emailed. A row is a Notification or
    anything with its attributes recipient_id, kind, key, initiative_id, created_at, title,
    body, url and, optionally, data: building thousands of model instances costs more than
    inserting them."""
    unique: dict[tuple[str, int], _Row] = {}
    for row in rows:
        pair = (row.key, row.recipient_id)
        if pair not in unique:
            unique[pair] = _Row(
                row.key, row.recipient_id, row.kind, row.initiative_id, row.created_at,
                row.title, row.body, row.url, getattr(row, "data", _NO_DATA),
            )  # fmt: skip
    if not unique:
        return 0
    by_kind: dict[str, set[int]] = defaultdict(set)
    for row in unique.values():
        by_kind[row.kind].add(row.recipient_id)
    emailed = preferences.emailed_by_kind(by_kind)
    # Canonical order, so two transactions inserting overlapping rows wait, never deadlock.
    ordered = [unique[pair] for pair in sorted(unique)]
    wanted = [row.recipient_id in emailed[row.kind] for row in ordered]
    if _binds_apart():
        _insert_unnest(ordered, wanted)
    else:
        Notification.objects.bulk_create(
            [
                Notification(
                    recipient_id=row.recipient_id, kind=row.kind, key=row.key,
                    initiative_id=row.initiative_id, created_at=row.created_at,
                    title=row.title, body=row.body, url=row.url,
                    data={} if row.data is _NO_DATA else row.data,
                    email=EmailState.PENDING if on else EmailState.SKIPPED,
                    email_next_at=row.created_at if on else None,
                )
                for row, on in zip(ordered, wanted, strict=True)
            ],
            ignore_conflicts=True,
            batch_size=1000,
        )  # fmt: skip
    return sum(wanted)


class _Row(NamedTuple):
    key: str
    recipient_id: int
    kind: str
    initiative_id: int | None
    created_at: datetime
    title: str
    body: str
    url: str
    data: object


_NO_DATA = object()  # not given: the field's default, {}
# The arrays sent, one element a row (_Row's fields, then whether emailed), with their types:
# text rather than varchar(n), as an explicit cast would cut an overlong value the insert
# refuses.
_ARRAYS = (
    ("key", "text"),
    ("recipient_id", "bigint"),
    ("kind", "text"),
    ("initiative_id", "bigint"),
    ("created_at", "timestamptz"),
    ("title", "text"),
    ("body", "text"),
    ("url", "text"),
    ("data", "text"),
    ("emailed", "boolean"),
)


def _binds_apart() -> bool:
    if connection.vendor != "postgresql":
        return False
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    return is_psycopg3


def _insert_unnest(rows: list[_Row], wanted: list[bool]) -> None:
    """The rows in one INSERT ... SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING, the
    arrays bound apart from the statement, in binary: inlined as literals, as the ORM's
    cursors bind, quoting and parsing thousands of strings is most of the insert's time."""
    from django.db.backends.postgresql.base import ServerBindingCursor

    meta = Notification._meta
    data_field = meta.get_field("data")
    dumps = partial(json.dumps, cls=data_field.encoder)
    empty = dumps(data_field.get_default())
    *values, data = (list(column) for column in zip(*rows, strict=True))
    arrays = [*values, [empty if d is _NO_DATA else dumps(d) for d in data], wanted]
    per_row = {name for name, _ in _ARRAYS}
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    selected, defaults = [], []
    for field in fields:
        if field.attname == "data":
            selected.append("r.data::jsonb")
        elif field.attname == "email":
            selected.append("CASE WHEN r.emailed THEN %b ELSE %b END")
            defaults += [EmailState.PENDING.value, EmailState.SKIPPED.value]
        elif field.attname == "email_next_at":
            selected.append("CASE WHEN r.emailed THEN r.created_at END")
        elif field.attname in per_row:
            selected.append(f"r.{field.attname}")
        else:
            # Left to its default, as bulk_create would write it.
            selected.append(f"CAST(%b AS {field.db_type(connection)})")
            defaults.append(field.get_db_prep_save(field.get_default(), connection))
    quote = connection.ops.quote_name
    table, columns = quote(meta.db_table), ", ".join(quote(f.column) for f in fields)
    unnest = ", ".join(f"%b::{kind}[]" for _, kind in _ARRAYS)
    names = ", ".join(name for name, _ in _ARRAYS)
    statement = (
        f"INSERT INTO {table} ({columns}) SELECT {', '.join(selected)} "  # noqa: S608 no values
        f"FROM unnest({unnest}) AS r({names}) ON CONFLICT DO NOTHING"
    )
    connection.ensure_connection()
    connection.validate_thread_sharing()
    wrap = connection.make_debug_cursor if connection.queries_logged else connection.make_cursor
    with wrap(ServerBindingCursor(connection.connection)) as cursor:
        cursor.execute(statement, [*defaults, *arrays])


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
def _flag(event: Event, initiative: Initiative, context: Context) -> Said | None:
    raised = event.kind == Kind.FLAG_RAISED
    # The root cause is already known: the stale-feed alert said the data stopped.
    if (
        raised
        and event.data["flag_kind"] == FlagKind.BELOW_THRESHOLD
        and initiative.pk in context.stale
    ):
        return None
    label = event.data["label"]
    return notification(
        event,
        event.kind,
        _named(initiative, "business_owner", "delivery_lead", "sponsor") + context.managers,
        title=(
            f"{initiative.title}: flagged “{label}”"
            if raised
            else f"{initiative.title}: “{label}” cleared"
        ),
        body=event.data["reason"] if raised else f"No longer flagged: {event.data['reason']}",
        url=initiative.get_absolute_url(),
    )


@builds(Kind.ITEM_ASSIGNED)
def _assigned(event: Event, initiative: Initiative, context: Context) -> Said:
    return notification(
        event,
        Kind.ITEM_ASSIGNED,
        [event.data["to"]],
        title=f"{initiative.title}: “{event.data['title']}” is yours to check",
        body="Check it with its evidence on the readiness review.",
        url=_review_url(initiative, event.data["review"]),
    )


@builds(Kind.ITEM_UNASSIGNED)
def _unassigned(event: Event, initiative: Initiative, context: Context) -> Said:
    return notification(
        event,
        Kind.ITEM_UNASSIGNED,
        [event.data["from"]],
        title=f"{initiative.title}: “{event.data['title']}” is no longer yours",
        body="It was taken back or given to someone else; nothing more is asked of you.",
        url=_review_url(initiative, event.data["review"]),
    )


@builds(Kind.REVIEW_READY)
def _ready(event: Event, initiative: Initiative, context: Context) -> Said:
    return notification(
        event,
        Kind.REVIEW_READY,
        [person.pk for person in eligible_deciders(initiative)],
        title=f"{initiative.title}: readiness review ready to decide",
        body="Every checklist item is checked. You may decide the review.",
        url=_review_url(initiative, event.data["review"]),
    )


@builds(Kind.DECISION)
def _decision(event: Event, initiative: Initiative, context: Context) -> Said:
    owners = _named(initiative, "business_owner", "operational_owner", "delivery_lead", "sponsor")
    return notification(
        event,
        Kind.DECISION,
        owners + sorted(context.working.get(initiative.pk, ())),
        title=f"{initiative.title}: gate decision recorded",
        body=event.data["summary"],
        url=initiative.get_absolute_url(),
    )


@builds(Kind.BUDGET_REQUESTED)
def _budget_requested(event: Event, initiative: Initiative, context: Context) -> Said:
    return notification(
        event,
        Kind.BUDGET_REQUESTED,
        [initiative.sponsor_id],
        title=f"{initiative.title}: a budget request awaits your decision",
        body=event.data["summary"],
        url=reverse("budget-request", args=[initiative.slug, event.data["request"]]),
    )


@builds(Kind.BUDGET_DECIDED)
def _budget_decided(event: Event, initiative: Initiative, context: Context) -> Said:
    people = [event.data["requested_by"], event.data["answerable"]]
    people += _named(initiative, "business_owner", "operational_owner")
    return notification(
        event,
        Kind.BUDGET_DECIDED,
        people,
        title=f"{initiative.title}: budget request {event.data['outcome']}",
        body=event.data["summary"],
        url=reverse("budget-request", args=[initiative.slug, event.data["request"]]),
    )


@builds(Kind.FEED_STALE)
@builds(Kind.FEED_BACK)
def _feed(event: Event, initiative: Initiative, context: Context) -> Said:
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
    return notification(
        event,
        event.kind,
        [event.data.get("owner"), initiative.delivery_lead_id],
        title=title,
        body=body,
        url=initiative.get_absolute_url(),
    )


@builds(Kind.VERDICT)
def _verdict(event: Event, initiative: Initiative, context: Context) -> Said:
    data = event.data
    return notification(
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
