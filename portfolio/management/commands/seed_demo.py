"""`manage.py seed_demo`: load a realistic AI portfolio to click through.

Creates business units, one login per role (executive, manager, owner, viewer), the people who
sponsor and own initiatives, and about thirty initiatives across every stage, each with its
primary metric and its past gate decisions (through `gates.services.import_history`, the only
way the demo moves a stage). Initiatives from thin slice on get their data feeds and weeks of
observations (see _demo_observations), and every metric of a new initiative gets a daily
history of status snapshots for its trend chart, ending with one computed now. Running it
again creates nothing twice: units, people and initiatives that already exist (by slug or
username) are left exactly as they are, feeds, observations and snapshots included.

Feed tokens are random and never shown: whoever wants to push data rotates a feed's token.

The logins' password comes from the DEMO_PASSWORD environment variable (default gantry-demo).
"""

import os
import secrets
from datetime import datetime, timedelta
from decimal import Decimal

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import slugify

from gates.services import import_history
from gates.stages import Transition
from metrics.models import DataFeed, FeedKind, Metric, Observation
from metrics.services import TOKEN_PREFIX, hash_token
from metrics.status import mark_stale_feeds, recompute
from portfolio.management.commands._demo_data import (
    INITIATIVES,
    LOGINS,
    PEOPLE,
    UNITS,
    InitiativeSpec,
    Person,
)
from portfolio.management.commands._demo_observations import FEEDS, FeedPlan, points
from portfolio.models import BusinessUnit, Initiative, User
from portfolio.roles import role_of

LOGIN_URL = "http://127.0.0.1:8000/accounts/login/"
DEFAULT_PASSWORD = "gantry-demo"  # noqa: S105 - the documented demo password, not a secret
# Days between creating an initiative and its first decision: framing takes a while.
FRAMING_DAYS = 14
# Days of daily status snapshots before the current one, for the trend charts.
SNAPSHOT_DAYS = 20


class Command(BaseCommand):
    help = "Load a demo portfolio: units, one login per role, ~30 initiatives with history."

    def handle(self, *args, **options):
        password = os.environ.get("DEMO_PASSWORD") or DEFAULT_PASSWORD
        now = timezone.now()
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        with transaction.atomic():
            units, new_units = self._business_units()
            people, new_people = self._people(password)
            new_initiatives, decisions = self._initiatives(units, people, midnight)
            feeds, observations = self._feeds(new_initiatives, people, midnight, now)
            snapshots = self._snapshots([i for _, i in new_initiatives], feeds, now)

        self._line("Business units", new_units, len(UNITS))
        self._line("People", len(new_people), len(LOGINS) + len(PEOPLE))
        self._line("Initiatives", len(new_initiatives), len(INITIATIVES))
        self.stdout.write(f"Gate decisions imported: {decisions}")
        self.stdout.write(
            f"Data feeds created: {len(feeds)}; observations stored: {observations}; "
            f"metric snapshots computed: {snapshots}"
        )
        if feeds:
            self.stdout.write(
                "Feed tokens are not shown: rotate a feed's token on its initiative page to "
                "push data to it."
            )
        self._login_instructions(people, new_people, password)

    # Writes --------------------------------------------------------------------------------
    def _business_units(self) -> tuple[dict[str, BusinessUnit], int]:
        units, created = {}, 0
        for slug, name in UNITS:
            unit = BusinessUnit.objects.filter(Q(slug=slug) | Q(name=name)).first()
            if unit is None:
                unit = BusinessUnit.objects.create(slug=slug, name=name)
                created += 1
            units[slug] = unit
        return units, created

    def _people(self, password: str) -> tuple[dict[str, User], set[str]]:
        """Users by username, and the usernames created now.

        An existing user keeps its password and groups: the username may belong to a real
        person, and the demo must not reset anyone's password or widen their rights.
        """
        logins = {person.username for person in LOGINS}
        people, created = {}, set()
        for person in [*LOGINS, *PEOPLE]:
            user = User.objects.filter(username=person.username).first()
            if user is None:
                user = self._create_user(person, password if person.username in logins else None)
                created.add(person.username)
            people[person.username] = user
        return people, created

    def _create_user(self, person: Person, password: str | None) -> User:
        user = User(
            username=person.username,
            first_name=person.first_name,
            last_name=person.last_name,
            email=f"{person.username}@example.com",
        )
        if password is None:
            user.set_unusable_password()
        else:
            user.set_password(password)
        user.save()
        user.groups.add(Group.objects.get_or_create(name=person.role.value)[0])
        return user

    def _initiatives(
        self, units, people, midnight: datetime
    ) -> tuple[list[tuple[InitiativeSpec, Initiative]], int]:
        """The initiatives created now, with their specs, and the decisions imported."""
        created, decisions = [], 0
        for spec in INITIATIVES:
            slug = slugify(spec.title)
            if Initiative.objects.filter(slug=slug).exists():
                continue
            created.append((spec, self._create_initiative(spec, slug, units, people, midnight)))
            decisions += len(spec.history)
        return created, decisions

    def _create_initiative(self, spec: InitiativeSpec, slug, units, people, midnight) -> Initiative:
        def person(username):
            return people[username] if username else None

        if spec.history:
            created_days_ago = spec.history[0].days_ago + FRAMING_DAYS
        else:
            created_days_ago = spec.in_frame_days
        initiative = Initiative.objects.create(
            title=spec.title,
            slug=slug,
            summary=spec.summary,
            business_unit=units[spec.unit],
            sponsor=person(spec.sponsor),
            business_owner=person(spec.business_owner),
            delivery_lead=person(spec.delivery_lead),
            operational_owner=person(spec.operational_owner),
            decision_changed=spec.decision_changed,
            security_model=spec.security_model,
            logging_evidence=spec.logging_evidence,
            narrow_audience=spec.narrow_audience,
            stage_entered_at=_at(midnight, created_days_ago),
            created_by=people["manager"],
        )
        # created_at is auto_now_add; backdate it so the portfolio's ages agree with history.
        Initiative.objects.filter(pk=initiative.pk).update(
            created_at=_at(midnight, created_days_ago)
        )

        if spec.metric is not None:
            m = spec.metric
            Metric.objects.create(
                initiative=initiative,
                name=m.name,
                unit=m.unit,
                direction=m.direction,
                ship_threshold=_decimal(m.ship_threshold),
                baseline=_decimal(m.baseline),
                aggregation=m.aggregation,
                comparison_window_days=m.window_days,
                is_primary=True,
            )

        import_history(
            initiative=initiative,
            decisions=[
                {
                    "transition": step.transition,
                    "user": people[step.by],
                    "rationale": step.rationale,
                    "decided_at": _at(midnight, step.days_ago),
                    "stop_reason": step.stop_reason,
                }
                for step in spec.history
            ],
        )
        return initiative

    def _feeds(self, created, people, midnight, now) -> tuple[list[DataFeed], int]:
        """Feeds of the initiatives created now, and the observations they delivered.

        Rows are written directly, not through `ingest.store`, which dates every delivery
        now: the demo's deliveries are spread over weeks, and a stale feed's ended days ago.
        """
        feeds, rows = [], []
        for spec, initiative in created:
            plans = FEEDS.get(spec.title, ())
            metric = Metric.objects.filter(initiative=initiative, is_primary=True).first()
            if not plans or metric is None:
                continue
            # Feeds are registered once the thin slice starts (at its first approval).
            approved = next(s for s in spec.history if s.transition == Transition.APPROVE_FRAME)
            thin_slice_from = _at(midnight, approved.days_ago)
            for plan in plans:
                delivered = points(spec.title, plan, unit=metric.unit, now=now)
                feed = self._create_feed(
                    initiative, plan, people[plan.owner], delivered, thin_slice_from
                )
                feeds.append(feed)
                rows += [
                    Observation(
                        metric=metric,
                        feed=feed,
                        cohort=p.cohort,
                        observed_at=p.observed_at,
                        value=p.value,
                        ingested_at=p.ingested_at,
                    )
                    for p in delivered
                ]
        Observation.objects.bulk_create(rows, batch_size=1000)
        return feeds, len(rows)

    def _create_feed(self, initiative, plan: FeedPlan, owner, delivered, thin_slice_from):
        last_delivery = max(p.ingested_at for p in delivered)
        if plan.kind == FeedKind.LIVE:
            first_delivery = min(p.ingested_at for p in delivered)
            registered = min(
                first_delivery - timedelta(hours=1), thin_slice_from + timedelta(days=2)
            )
        else:
            registered = last_delivery - timedelta(minutes=20)
        # A random token nobody sees: the demo prints none, and rotating gives a new one.
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        feed = DataFeed.objects.create(
            initiative=initiative,
            name=plan.name,
            kind=plan.kind,
            owner=owner,
            freshness_hours=plan.freshness_hours,
            token_hash=hash_token(token),
            token_hint=token[:10],
            token_rotated_at=registered,
            last_delivery_at=last_delivery,
        )
        # created_at is auto_now_add; backdate it to when the feed was registered.
        DataFeed.objects.filter(pk=feed.pk).update(created_at=registered)
        feed.created_at = registered
        return feed

    def _snapshots(self, initiatives, feeds: list[DataFeed], now: datetime) -> int:
        """A daily status history of the new initiatives' metrics, oldest first, then now.

        Each past day sees the feeds' staleness as it was that day, so a feed that went quiet
        turns its metric stale only from then on. The last step is what beat does: flag the
        stale feeds, then recompute.
        """
        metrics = list(
            Metric.objects.filter(initiative__in=initiatives).values_list(
                "pk", "initiative__created_at"
            )
        )
        if not metrics:
            return 0
        computed = 0
        for days_ago in range(SNAPSHOT_DAYS, 0, -1):
            day = now - timedelta(days=days_ago)
            existing = [pk for pk, created_at in metrics if created_at <= day]
            if existing:
                _flag_stale_as_of(feeds, day)
                computed += recompute(metric_ids=existing, now=day)
        mark_stale_feeds(now=now)
        computed += recompute(metric_ids=[pk for pk, _ in metrics], now=now)
        return computed

    # Output --------------------------------------------------------------------------------
    def _line(self, what: str, created: int, total: int) -> None:
        self.stdout.write(f"{what}: {created} created, {total - created} already present.")

    def _login_instructions(self, people, created: set[str], password: str) -> None:
        self.stdout.write(self.style.SUCCESS(f"Demo ready. Log in at {LOGIN_URL} as:"))
        width = max(len(person.username) for person in LOGINS)
        for person in LOGINS:
            user = people[person.username]
            role = role_of(user)
            line = f"  {person.username:<{width}}  {role.label if role else 'no role'}"
            if person.username not in created:
                line += " (existing user: password unchanged)"
            self.stdout.write(line)
        self.stdout.write(f"Password: {password}")


def _at(midnight: datetime, days_ago: int) -> datetime:
    """A time in office hours `days_ago` days back, varied so decisions do not all share one."""
    return (
        midnight
        - timedelta(days=days_ago)
        + timedelta(hours=9 + days_ago % 8, minutes=days_ago * 7 % 60)
    )


def _flag_stale_as_of(feeds: list[DataFeed], moment: datetime) -> None:
    """Flag the demo's live feeds that were stale at `moment` (as mark_stale_feeds would)."""
    for feed in feeds:
        feed.is_stale = feed.is_live and (
            (feed.last_delivery_at or feed.created_at) < moment - feed.freshness_window
        )
    DataFeed.objects.bulk_update(feeds, ["is_stale"])


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)
