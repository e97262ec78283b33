"""Notifications benchmark: the reminder pass and the weekly digest on a large portfolio, each
against raw SQL selecting the same rows in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gantry_bench \\
        .venv/bin/python -m bench.notify [--initiatives 5000] [--people 400] [--repeat 7]

In a database of its own (gantry_bench_notify by default; see bench.common) it builds

- --people people: 3% executives, 2% programme managers, 5% viewers, the rest owners; one
  owner in ten opted into the digest;
- --initiatives initiatives in every stage with their gate decisions as imported history,
  metrics and feeds (some stale), as bench.dashboard builds them;
- an open readiness review for every initiative in readiness review (the default checklist,
  most items assigned, some checked), and for a quarter of those in thin slice a failed
  review whose unchecked items became pre-launch work, due from 30 days ago to 20 ahead;
- the purgatory flags `pages.purgatory.sync_flags()` raises (heard by the notifications
  app, as in production), then dated back up to 60 days, a tenth cleared within the week
  and a twentieth snoozed.

It then times, --repeat times each after one untimed round, and prints medians and ratios:

(a) `notifications.reminders.remind()` as the day's first run (it writes the reminders; they
    are deleted again between rounds, untimed), against raw SQL that selects the same rows
    and writes the same notifications (checked column by column), and as a later hourly
    run (everything already sent), against the same selections and wording in raw SQL
    followed by the one look-up of which rows are written;
(b) `notifications.digest.build()` for every digest reader, against raw SQL selecting the
    same content (readers, flags raised and cleared, the week's decisions, conversion by
    quarter, stage limits, the readers' open checklist items and work items);

and the queries of one digest build, for every reader and for one (the same number). The goal
is 3x at most for each. Delivery is not measured: the nudge to the workers is a no-op here.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import timedelta

import numpy as np

from bench.common import (
    add_database_arguments,
    add_quick_argument,
    apply_quick,
    log,
    phase,
    ratio_line,
    run_in_own_database,
    server_version,
)

GOAL = 3.0
QUICK = {"initiatives": 1_000, "people": 100, "repeat": 3}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.notify", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--initiatives", type=int, default=5_000, help="initiatives (5,000)")
    parser.add_argument("--people", type=int, default=400, help="people (400)")
    parser.add_argument("--repeat", type=int, default=7, help="timed rounds of each pass (7)")
    parser.add_argument("--seed", type=int, default=1)
    add_quick_argument(parser, QUICK)
    add_database_arguments(parser, "notify")
    args = parser.parse_args(argv)
    apply_quick(args, QUICK)
    if args.initiatives < 10 or args.people < 40 or args.repeat < 1:
        parser.error("need at least 10 initiatives, 40 people and one round")
    return args


# The portfolio ----------------------------------------------------------------------------------
def create_people(args, rng) -> dict[str, list]:
    from django.contrib.auth.models import Group

    from bench.dashboard import FIRST, LAST
    from notifications.models import Kind, Preference
    from portfolio.models import User

    counts = {
        "executive": max(1, round(args.people * 0.03)),
        "programme_manager": max(1, round(args.people * 0.02)),
        "viewer": max(1, round(args.people * 0.05)),
    }
    counts["owner"] = args.people - sum(counts.values())
    groups = dict(Group.objects.filter(name__in=counts).values_list("name", "pk"))
    made = {}
    for role, count in counts.items():
        made[role] = User.objects.bulk_create(
            [
                User(
                    username=f"{role}-{n}",
                    first_name=FIRST[rng.integers(len(FIRST))],
                    last_name=LAST[rng.integers(len(LAST))],
                    email=f"{role}-{n}@example.com",
                    password="!",  # noqa: S106 unusable: nobody logs in
                )
                for n in range(count)
            ]
        )
    through = User.groups.through
    through.objects.bulk_create(
        [through(user_id=u.pk, group_id=groups[role]) for role, us in made.items() for u in us]
    )
    Preference.objects.bulk_create(
        [Preference(user=u, kind=Kind.DIGEST, email=True) for u in made["owner"][::10]]
    )
    return made


def create_work(rng, now, people) -> dict[str, int]:
    """Open reviews of the initiatives in readiness review; failed reviews with pre-launch
    work for a quarter of those in thin slice."""
    from portfolio.models import Initiative
    from readiness.models import (
        PreLaunchWorkItem,
        ReadinessReview,
        ReviewItem,
        ReviewOutcome,
        WorkStatus,
    )
    from readiness.services import current_template

    template = current_template()
    template_items = list(template.items.all())
    owners, managers = people["owner"], people["programme_manager"]

    def anyone(group):
        return group[rng.integers(len(group))]

    in_review = list(
        Initiative.objects.filter(stage="readiness_review").values_list("pk", "stage_entered_at")
    )
    thin = [pk for (pk,) in Initiative.objects.filter(stage="thin_slice").values_list("pk")]
    failed = [pk for pk in thin if rng.random() < 0.25]
    reviews = ReadinessReview.objects.bulk_create(
        [
            ReadinessReview(
                initiative_id=pk, template=template, opened_by=anyone(managers),
                opened_at=entered, outcome=ReviewOutcome.OPEN,
            )
            for pk, entered in in_review
        ]
        + [
            ReadinessReview(
                initiative_id=pk, template=template, opened_by=anyone(managers),
                opened_at=now - timedelta(days=int(rng.integers(20, 90))),
                outcome=ReviewOutcome.FAILED, decided_at=now - timedelta(days=10),
            )
            for pk in failed
        ],
        batch_size=2000,
    )  # fmt: skip
    items = ReviewItem.objects.bulk_create(
        [
            ReviewItem(
                review=review,
                template_item=item,
                assignee=anyone(owners) if rng.random() < 0.9 else None,
                checked=review.outcome == ReviewOutcome.OPEN and rng.random() < 0.4,
            )
            for review in reviews
            for item in template_items
        ],
        batch_size=5000,
    )
    by_review: dict[int, list] = {}
    for item in items:
        by_review.setdefault(item.review_id, []).append(item)
    work = []
    for review in reviews:
        if review.outcome != ReviewOutcome.FAILED:
            continue
        for item in by_review[review.pk][:3]:
            work.append(
                PreLaunchWorkItem(
                    initiative_id=review.initiative_id,
                    review_item=item,
                    title=f"Close the gap: item {item.template_item_id}",
                    assignee=anyone(owners),
                    due_date=(now - timedelta(days=int(rng.integers(-20, 31)))).date(),
                    status=WorkStatus.OPEN if rng.random() < 0.8 else WorkStatus.DONE,
                    created_at=now - timedelta(days=10),
                )
            )
    PreLaunchWorkItem.objects.bulk_create(work, batch_size=5000)
    return {"open reviews": len(in_review), "review items": len(items), "work items": len(work)}


def age_flags(rng, now, people) -> dict[str, int]:
    """Date the flags back up to 60 days, clear a tenth within the week, snooze a twentieth."""
    from django.db import connection

    from notifications.models import FlagSnooze
    from portfolio.models import PurgatoryFlag

    table = PurgatoryFlag._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.42)")
        cursor.execute(
            f"UPDATE {table} SET raised_at = %s - random() * interval '60 days'",
            [now],
        )
        cursor.execute(
            f"UPDATE {table} SET cleared_at = %s - random() * interval '7 days' "
            "WHERE random() < 0.1 AND raised_at < %s - interval '7 days'",
            [now, now],
        )
    open_flags = list(
        PurgatoryFlag.objects.filter(cleared_at__isnull=True).values_list("pk", flat=True)
    )
    managers = people["programme_manager"]
    snoozes = [
        FlagSnooze(
            flag_id=pk, until=(now + timedelta(days=int(rng.integers(-5, 20)))).date(),
            reason="Waiting on the vendor.", by=managers[rng.integers(len(managers))],
            at=now - timedelta(days=3),
        )
        for pk in open_flags
        if rng.random() < 0.05
    ]  # fmt: skip
    FlagSnooze.objects.bulk_create(snoozes)
    return {
        "open flags": len(open_flags),
        "cleared this week": PurgatoryFlag.objects.filter(cleared_at__isnull=False).count(),
        "snoozes": len(snoozes),
    }


def build(args, now) -> None:
    from django.db import connection

    from bench.dashboard import create_portfolio
    from notifications.models import Notification
    from pages import purgatory

    rng = np.random.default_rng(args.seed)
    with phase("people, initiatives, decisions, metrics, feeds (bulk)"):
        people = create_people(args, rng)
        create_portfolio(args, rng, now, people)
    with phase("reviews, checklist items, pre-launch work (bulk)"):
        log(f"  {create_work(rng, now, people)}")
    with phase("pages.purgatory.sync_flags() (notifies as in production)"):
        log(f"  {purgatory.sync_flags(now=now)}")
    log(f"  {age_flags(rng, now, people)}; {Notification.objects.count():,} notifications")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


# Raw SQL: the same rows ----------------------------------------------------------------------
def raw_first_run(now, *, write: bool = True) -> int:
    """The day's first reminder pass as one person would write it in SQL: the five
    selections with the same filters, each reminder worded once in Python, and every row
    written in one INSERT ... SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING that decides
    the email from the recipient and their preference, in one transaction; returns the rows
    written."""
    from django.conf import settings
    from django.db import connection, transaction
    from django.db.backends.postgresql.base import ServerBindingCursor

    from notifications import reminders
    from portfolio.models import FlagKind

    today = reminders.local_date(now)
    soon = today + timedelta(days=reminders.DUE_SOON_DAYS)
    paths = reminders.Paths()
    labels = dict(FlagKind.choices)
    rows: list[tuple] = []  # key, recipient, kind, initiative, title, body, url

    def due(what, pk, title, due_date, assignee, initiative, initiative_title, sponsor, url):
        days = (today - due_date).days
        words = (
            "due in 3 days" if days == -3 else "due today" if days == 0
            else f"overdue by {days} day{'s' if days != 1 else ''}"
        )  # fmt: skip
        shown = f"{due_date.day} {due_date:%b %Y}"
        key = f"due:{what}:{pk}:{today.isoformat()}"
        rows.append(
            (key, assignee, "due", initiative, f"{initiative_title}: “{title}” {words}"[:300],
             f"Due {shown}. It is assigned to you; close it with its evidence.", url)
        )  # fmt: skip
        if days > reminders.ESCALATE_AFTER_DAYS:
            key = f"escalate:{what}:{pk}:{today.isoformat()}"
            said = (
                f"{initiative_title}: “{title}” overdue by {days} days"[:300],
                f"Due {shown} and still open after more than "
                f"{reminders.ESCALATE_AFTER_DAYS} days. Its assignee has been reminded daily.",
            )
            for person in sorted({*pms, sponsor} - {None}):
                rows.append((key, person, "escalation", initiative, *said, url))

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT stage, days FROM portfolio_stagelimit")
        limits = {**reminders.DEFAULT_STAGE_LIMITS, **dict(cursor.fetchall())}
        review_limit = limits["readiness_review"]
        cutoff = reminders.day_start(soon + timedelta(days=1 - review_limit))
        cursor.execute(
            """
            SELECT DISTINCT u.id FROM portfolio_user u
            JOIN portfolio_user_groups ug ON ug.user_id = u.id
            JOIN auth_group g ON g.id = ug.group_id
            WHERE u.is_active AND g.name = 'programme_manager'
            """
        )
        pms = [pk for (pk,) in cursor.fetchall()]
        cursor.execute(
            """
            SELECT w.id, w.title, w.due_date, w.assignee_id, w.initiative_id, i.title, i.sponsor_id
            FROM readiness_prelaunchworkitem w
            JOIN portfolio_user u ON u.id = w.assignee_id
            JOIN portfolio_initiative i ON i.id = w.initiative_id
            WHERE w.status = 'open' AND u.is_active AND w.due_date <= %s
              AND i.stage <> 'stopped' AND (w.due_date = %s OR w.due_date <= %s)
            """,
            [soon, soon, today],
        )
        for pk, title, due_date, assignee, initiative, initiative_title, sponsor in cursor:
            due("work", pk, title, due_date, assignee, initiative, initiative_title, sponsor,
                paths.my_work)  # fmt: skip
        cursor.execute(
            """
            SELECT * FROM (
                SELECT ri.id, t.title, (r.opened_at AT TIME ZONE %s)::date + %s AS due,
                       ri.assignee_id, i.id, i.title, i.sponsor_id, i.slug, r.id
                FROM readiness_reviewitem ri
                JOIN readiness_readinessreview r ON r.id = ri.review_id
                JOIN portfolio_initiative i ON i.id = r.initiative_id
                JOIN readiness_checklistitemtemplate t ON t.id = ri.template_item_id
                JOIN portfolio_user u ON u.id = ri.assignee_id
                WHERE r.outcome = 'open' AND NOT ri.checked AND u.is_active
                  AND i.stage = 'readiness_review' AND r.opened_at < %s
            ) items WHERE due = %s OR due <= %s
            """,
            [settings.TIME_ZONE, review_limit, cutoff, soon, today],
        )
        for pk, title, due_date, assignee, initiative, i_title, sponsor, slug, review in cursor:
            due("item", pk, title, due_date, assignee, initiative, i_title, sponsor,
                paths.review(slug, review))  # fmt: skip
        cursor.execute(
            """
            SELECT f.id, f.kind, f.reason, f.raised_at, i.id, i.slug, i.title,
                   i.business_owner_id, i.delivery_lead_id, i.sponsor_id
            FROM portfolio_purgatoryflag f
            JOIN portfolio_initiative i ON i.id = f.initiative_id
            LEFT JOIN LATERAL (
                SELECT s.until FROM notifications_flagsnooze s WHERE s.flag_id = f.id
                ORDER BY s.at DESC, s.id DESC LIMIT 1
            ) s ON true
            WHERE f.cleared_at IS NULL AND f.raised_at <= %s AND i.stage <> 'stopped'
              AND (s.until IS NULL OR s.until < %s)
              AND NOT (f.kind = 'below_threshold' AND EXISTS (
                  SELECT 1 FROM metrics_datafeed d WHERE d.initiative_id = i.id
                  AND d.is_stale AND d.status = 'active'))
            """,
            [now - timedelta(days=reminders.FLAG_EVERY_DAYS), today],
        )
        for pk, kind, reason, raised_at, initiative, slug, title, *people in cursor:
            week = (now - raised_at).days // reminders.FLAG_EVERY_DAYS
            said = (
                f"{title}: still flagged “{labels[kind]}”"[:300],
                f"{reason} Flagged {week} week{'s' if week != 1 else ''} ago and not yet "
                "cleared. Clear the cause, or snooze the reminders with a reason.",
                paths.initiative(slug),
            )
            key = f"flag-reminder:{pk}:{week}"
            for person in sorted(set(people) - {None}):
                rows.append((key, person, "flag_reminder", initiative, *said))
        if not rows:
            return 0
        if not write:
            # A later run: the same selections and wording, then which rows are already
            # written (one look-up of the keys), as remind() does before it writes anything.
            cursor.execute(
                "SELECT key, recipient_id FROM notifications_notification WHERE key = ANY(%s)",
                [sorted({row[0] for row in rows})],
            )
            sent = set(cursor.fetchall())
            return sum((row[0], row[1]) not in sent for row in rows)
        rows.sort()
        # Bound apart from the statement, in binary: inlined, the arrays' quoting and
        # parsing would cost more than the insert.
        with ServerBindingCursor(connection.connection) as insert:
            insert.execute(
                """
                INSERT INTO notifications_notification
                    (recipient_id, kind, key, initiative_id, title, body, url, data,
                     created_at, read_at, email, email_attempts, email_next_at,
                     email_sent_at, email_error)
                SELECT r.recipient, r.kind, r.key, r.initiative, r.title, r.body, r.url,
                       '{}', %(now)b, NULL, CASE WHEN e.emailed THEN 'pending' ELSE 'skipped' END,
                       0, CASE WHEN e.emailed THEN %(now)b END, NULL, ''
                FROM unnest(%(key)b::text[], %(recipient)b::bigint[], %(kind)b::text[],
                            %(initiative)b::bigint[], %(title)b::text[], %(body)b::text[],
                            %(url)b::text[])
                     WITH ORDINALITY AS r(key, recipient, kind, initiative, title, body, url, n)
                CROSS JOIN LATERAL (
                    SELECT u.is_active AND u.email <> '' AND coalesce(p.email, true) AS emailed
                    FROM portfolio_user u
                    LEFT JOIN notifications_preference p
                      ON p.user_id = u.id AND p.kind = r.kind
                    WHERE u.id = r.recipient
                ) e
                ORDER BY r.n
                ON CONFLICT DO NOTHING
                """,
                {
                    "now": now,
                    **dict(
                        zip(
                            ("key", "recipient", "kind", "initiative", "title", "body", "url"),
                            (list(column) for column in zip(*rows, strict=True)),
                            strict=True,
                        )
                    ),
                },
            )
            return insert.rowcount


def raw_digest(now) -> int:
    """The digest's content for every reader, as one person would write it in SQL."""
    from django.conf import settings
    from django.db import connection

    from notifications import digest, reminders

    today = reminders.local_date(now)
    start = now - digest.PERIOD
    this = digest.quarter_of(today)
    last = digest.previous_quarter(*this)
    q_start = digest.quarter_start(*last)
    q_end = digest.quarter_start(this[0] + this[1] // 4, this[1] % 4 + 1)
    rows = 0
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT DISTINCT u.* FROM portfolio_user u
            LEFT JOIN portfolio_user_groups ug ON ug.user_id = u.id
            LEFT JOIN auth_group g ON g.id = ug.group_id
            WHERE u.is_active AND u.email <> ''
              AND (g.name IN ('executive', 'programme_manager') OR u.id IN (
                   SELECT user_id FROM notifications_preference
                   WHERE kind = 'digest' AND email))
              AND u.id NOT IN (SELECT user_id FROM notifications_preference
                               WHERE kind = 'digest' AND NOT email)
            """
        )
        readers = [row[0] for row in cursor.fetchall()]
        rows += len(readers)
        for field in ("raised_at", "cleared_at"):
            cursor.execute(
                f"""
                SELECT f.kind, f.reason, f.{field}, i.title, i.slug, count(*) OVER ()
                FROM portfolio_purgatoryflag f
                JOIN portfolio_initiative i ON i.id = f.initiative_id
                WHERE f.{field} >= %s AND f.{field} < %s
                ORDER BY f.{field} DESC, f.id DESC LIMIT %s
                """,
                [start, now, digest.SHOWN],
            )
            rows += len(cursor.fetchall())
        cursor.execute(
            """
            SELECT d.transition, d.from_stage, d.to_stage, d.decided_at, d.rationale,
                   d.stop_reason, i.title, i.slug, u.first_name, u.last_name, u.username
            FROM gates_gatedecision d
            JOIN portfolio_initiative i ON i.id = d.initiative_id
            JOIN portfolio_user u ON u.id = d.decided_by_id
            WHERE d.decided_at >= %s AND d.decided_at < %s
            ORDER BY d.decided_at DESC, d.id DESC
            """,
            [start, now],
        )
        rows += len(cursor.fetchall())
        cursor.execute(
            """
            SELECT date_trunc('quarter', c.left_at AT TIME ZONE %s) AS quarter, count(*),
                   count(*) FILTER (WHERE EXISTS (SELECT 1 FROM gates_gatedecision d
                       WHERE d.initiative_id = c.id AND d.transition = 'pass_review')),
                   count(*) FILTER (WHERE EXISTS (SELECT 1 FROM gates_gatedecision d
                       WHERE d.initiative_id = c.id AND d.transition = 'widen')),
                   count(*) FILTER (WHERE c.stage = 'stopped')
            FROM (
                SELECT i.id, i.stage, (
                    SELECT d.decided_at FROM gates_gatedecision d
                    WHERE d.initiative_id = i.id AND d.transition = 'approve_frame'
                    ORDER BY d.decided_at LIMIT 1) AS left_at
                FROM portfolio_initiative i
            ) c
            WHERE c.left_at >= %s AND c.left_at < %s
            GROUP BY 1
            """,
            [settings.TIME_ZONE, q_start, q_end],
        )
        rows += len(cursor.fetchall())
        cursor.execute("SELECT stage, days FROM portfolio_stagelimit")
        rows += len(cursor.fetchall())
        cursor.execute(
            """
            SELECT ri.assignee_id, t.title, r.id, r.opened_at, i.stage, i.title, i.slug
            FROM readiness_reviewitem ri
            JOIN readiness_readinessreview r ON r.id = ri.review_id
            JOIN portfolio_initiative i ON i.id = r.initiative_id
            JOIN readiness_checklistitemtemplate t ON t.id = ri.template_item_id
            WHERE ri.assignee_id = ANY(%s) AND NOT ri.checked AND r.outcome = 'open'
            ORDER BY r.opened_at, t.position, ri.id
            """,
            [readers],
        )
        rows += len(cursor.fetchall())
        cursor.execute(
            """
            SELECT w.assignee_id, w.title, w.due_date, i.title
            FROM readiness_prelaunchworkitem w
            JOIN portfolio_initiative i ON i.id = w.initiative_id
            WHERE w.assignee_id = ANY(%s) AND w.status = 'open'
            ORDER BY w.due_date, w.id
            """,
            [readers],
        )
        rows += len(cursor.fetchall())
    return rows


# Measurements -----------------------------------------------------------------------------------
def timed(run, *, repeat: int, before=None) -> tuple[float, object]:
    """The median seconds of `repeat` runs after one untimed one; `before` runs untimed
    ahead of each."""
    result = None
    times = []
    for round_ in range(repeat + 1):
        if before is not None:
            before()
        started = time.perf_counter()
        result = run()
        if round_:
            times.append(time.perf_counter() - started)
    return statistics.median(times), result


def count_queries(run) -> int:
    from django.db import connection

    seen = []
    with connection.execute_wrapper(lambda execute, *a: seen.append(1) or execute(*a)):
        run()
    return len(seen)


def report(label: str, orm: float, raw: float, *, name: str, ratios: list[str]) -> str:
    ratio = orm / raw if raw else float("inf")
    ratios.append(ratio_line(name, ratio, GOAL))
    mark = "ok" if ratio <= GOAL else f"above the {GOAL:g}x goal"
    line = f"{label}: {orm * 1000:8.1f} ms vs raw SQL {raw * 1000:7.1f} ms = {ratio:4.1f}x ({mark})"
    log(line)
    return line


def benchmark(args: argparse.Namespace) -> None:
    from django.db import connection
    from django.db.models import TextField
    from django.db.models.functions import Cast
    from django.utils import timezone

    from notifications import digest, preferences, reminders, services
    from notifications.models import Kind, Notification

    # Delivery is the workers' business, not this pass's: the nudge does nothing here.
    services.nudge = lambda: None
    now = timezone.now()
    log(f"PostgreSQL {server_version()}; {args.initiatives:,} initiatives, {args.people} people")
    build(args, now)

    reminder_kinds = [Kind.DUE, Kind.ESCALATION, Kind.FLAG_REMINDER]

    def forget_reminders():
        Notification.objects.filter(kind__in=reminder_kinds).delete()
        # Without the deleted rows, as in production, where nothing deletes reminders: the
        # dead rows would slow the next round's insert more with every round.
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM {Notification._meta.db_table}")

    def written():
        """Every column of the reminders written, but the id."""
        return set(
            Notification.objects.filter(kind__in=reminder_kinds).values_list(
                "recipient_id", "kind", "key", "initiative_id", "title", "body", "url",
                Cast("data", TextField()), "created_at", "read_at", "email", "email_attempts",
                "email_next_at", "email_sent_at", "email_error",
            )
        )  # fmt: skip

    lines, ratios = [], []
    with phase("(a) reminders"):
        raw_first, raw_written = timed(
            lambda: raw_first_run(now), repeat=args.repeat, before=forget_reminders
        )
        by_raw = written()
        first, counts = timed(
            lambda: reminders.remind(now=now), repeat=args.repeat, before=forget_reminders
        )
        by_remind = written()
        later, again = timed(
            lambda: reminders.remind(now=now + timedelta(minutes=5)), repeat=args.repeat
        )
        raw_later, unsent = timed(lambda: raw_first_run(now, write=False), repeat=args.repeat)
        assert unsent == 0, unsent
        candidates = len(reminders.candidates(now=now))
        log(
            f"  reminder rows: {candidates:,}; raw SQL wrote "
            f"{raw_written:,}; first run wrote {counts}"
        )
        assert by_raw == by_remind, (len(by_raw), len(by_remind), len(by_raw ^ by_remind))
        assert not any(again[k] for k in ("due", "escalation", "flag_reminder")), again
        lines.append(
            report(
                "remind(), the day's first run (raw SQL writes too)",
                first,
                raw_first,
                name="reminders_first",
                ratios=ratios,
            )
        )
        lines.append(
            report(
                "remind(), a later hourly run (raw SQL selects, checks sent)",
                later,
                raw_later,
                name="reminders_hourly",
                ratios=ratios,
            )
        )
        forget_reminders()
        first_q = count_queries(lambda: reminders.remind(now=now))
        # Once untimed: five minutes on, a flag raised just short of a whole week is due.
        reminders.remind(now=now + timedelta(minutes=5))
        later_q = count_queries(lambda: reminders.remind(now=now + timedelta(minutes=5)))
        log(f"  queries: first run {first_q}, later run {later_q}")

    with phase("(b) digest"):
        readers = list(preferences.digest_readers())
        raw_d, raw_rows = timed(lambda: raw_digest(now), repeat=args.repeat)
        built_time, built = timed(lambda: digest.build(now=now), repeat=args.repeat)
        sample = built[0].data
        log(
            f"  {len(built)} digests; raw SQL rows {raw_rows:,}; decisions "
            f"{sample['decisions']['count']}, flags raised {sample['flags_raised']['count']}, "
            f"cleared {sample['flags_cleared']['count']}, launches "
            f"{sample['launches']['count']}, stops {sample['stops']['count']}"
        )
        lines.append(
            report(
                f"digest.build() for {len(readers)} readers",
                built_time,
                raw_d,
                name="digest",
                ratios=ratios,
            )
        )
        every = count_queries(lambda: digest.build(now=now))
        one = count_queries(lambda: digest.build(now=now, users=readers[:1]))
        line = (
            f"queries per digest build: {every} for all {len(readers)} readers, "
            f"{one} (+1 reading the readers = {one + 1}) for one"
        )
        log(line)
        lines.append(line)

    print("\nSummary")
    for line in lines:
        print("  " + line)
    for line in ratios:
        print(line)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    run_in_own_database(args, "notify", benchmark)


if __name__ == "__main__":
    main()
