"""`manage.py seed_demo`: load a realistic AI portfolio to click through.

Creates business units, one login per role (executive, manager, owner, viewer), the people who
sponsor and own initiatives, and about thirty initiatives across every stage, each with its
primary metric and its past gate decisions (through `gates.services.import_history`, the only
way the demo moves a stage). Initiatives from thin slice on get their data feeds and weeks of
observations (see _demo_observations), and every metric of a new initiative gets a daily
history of status snapshots for its trend chart, ending with one computed now. Every
submission for review in an initiative's history gets the readiness review it would have
opened, closed by the pass or fail decision that followed, with its items' assignments, checks
and evidence, and a failed review's pre-launch work (see _demo_reviews). Running it again
creates nothing twice: units, people and initiatives that already exist (by slug or username)
are left exactly as they are, feeds, observations, snapshots and reviews included.

Feed tokens are random and never shown: whoever wants to push data rotates a feed's token.

The logins' password comes from the DEMO_PASSWORD environment variable (default gantry-demo).
"""

import os
import secrets
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import slugify

from gantry.management.commands._demo_data import (
    INITIATIVES,
    LOGINS,
    PEOPLE,
    UNITS,
    InitiativeSpec,
    Person,
)
from gantry.management.commands._demo_observations import FEEDS, FeedPlan, points
from gantry.management.commands._demo_reviews import (
    REVIEWS,
    ReviewPlan,
    assignee_of,
    evidence,
)
from gates import audit
from gates.models import GateDecision
from gates.services import import_history
from gates.stages import Transition
from metrics.models import DataFeed, FeedKind, Metric, Observation
from metrics.services import TOKEN_PREFIX, hash_token, record_past_deliveries
from metrics.status import mark_stale_feeds, recompute
from pages import purgatory
from portfolio import services as portfolio_services
from portfolio.models import BusinessUnit, Initiative, User
from portfolio.roles import role_of
from readiness.models import (
    ItemAction,
    PreLaunchWorkItem,
    ReadinessReview,
    ReviewItem,
    ReviewItemEvent,
    ReviewOutcome,
    SystemEvidence,
    WorkStatus,
)
from readiness.services import WORK_ITEM_DUE_DAYS, current_template

LOGIN_URL = "http://127.0.0.1:8000/accounts/login/"
DEFAULT_PASSWORD = "gantry-demo"  # noqa: S105 - the documented demo password, not a secret
# Days between creating an initiative and its first decision: framing takes a while.
FRAMING_DAYS = 14
# The narrow launch whose success definition the demo reframes today.
REFRAMED = "Contact-centre call summarisation"
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
            reviews = self._reviews(new_initiatives, people, now)
            # The demo's history is written in bulk, not through the services that seal each
            # record as they write it: seal it now, as an upgrade seals earlier records.
            sealed = audit.seal_unsealed()
            reframed = self._reframes(new_initiatives, people)
            # What the beat job would find: the dashboard reads stored flags.
            flags = purgatory.sync_flags(now=now)

        self._line("Business units", new_units, len(UNITS))
        self._line("People", len(new_people), len(LOGINS) + len(PEOPLE))
        self._line("Initiatives", len(new_initiatives), len(INITIATIVES))
        self.stdout.write(f"Gate decisions imported: {decisions}")
        self.stdout.write(
            f"Data feeds created: {len(feeds)}; observations stored: {observations}; "
            f"metric snapshots computed: {snapshots}"
        )
        self.stdout.write(
            f"Readiness reviews created: {reviews['reviews']} ({reviews[ReviewOutcome.OPEN]} open, "
            f"{reviews[ReviewOutcome.PASSED]} passed, {reviews[ReviewOutcome.FAILED]} failed, "
            f"{reviews[ReviewOutcome.WITHDRAWN]} withdrawn); "
            f"checklist items: {reviews['items']}; item events: {reviews['events']}; "
            f"pre-launch work items: {reviews['work']} ({reviews['open_work']} open)"
        )
        self.stdout.write(f"Purgatory flags: {flags['raised']} raised, {flags['cleared']} cleared")
        self.stdout.write(f"Earlier records sealed in the audit chains: {sealed}")
        self.stdout.write(f"Reframes recorded today: {reframed[0]}; proposals open: {reframed[1]}")
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
        # Written in bulk, not through ingest.store: record the deliveries they amount to, so
        # gate 2, the stale check and the delivery record see the demo's fresh data.
        record_past_deliveries(feed_ids=[f.pk for f in feeds])
        fresh_at = dict(
            DataFeed.objects.filter(pk__in=[f.pk for f in feeds]).values_list("pk", "last_fresh_at")
        )
        for feed in feeds:
            feed.last_fresh_at = fresh_at[feed.pk]
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

    def _reframes(self, created, people) -> tuple[int, int]:
        """Today's reframe and an owner's open proposal, through the real services: the
        success definition of a narrow launch, tightened with a recorded rationale."""
        initiative = next((i for _, i in created if i.title == REFRAMED), None)
        if initiative is None:
            return 0, 0
        metric = initiative.primary_metric
        portfolio_services.reframe(
            initiative=initiative,
            user=people["manager"],
            values={"ship_threshold": metric.ship_threshold - 3},
            rationale=(
                "Finance now prices the summariser at three seconds of agent time per call: the "
                "threshold moves from 45 to 42 seconds so the saving still covers its cost."
            ),
        )
        # As the worker would on commit: the status against the new definition.
        recompute(metric_ids=[metric.pk])
        portfolio_services.propose_reframe(
            initiative=initiative,
            user=initiative.business_owner,
            values={"comparison_window_days": 21},
            reason="Call volumes swing weekly; three weeks smooth out the month-end peak.",
        )
        return 1, 1

    def _reviews(self, created, people, now: datetime) -> Counter:
        """The readiness reviews of the initiatives created now, as their history made them.

        Rows are written directly, not through readiness.services, which stamp every write now
        and check the writer's permission: the demo's reviews ran months ago. They follow the
        services' rules all the same: a review per submission on the current checklist, closed
        by the decision that followed and linked to it; the programme manager assigns, only the
        assignee checks, always with evidence (and the numbers, for the cost item); the
        operational-owner item only when one is named; a failed review's unchecked items become
        pre-launch work due 14 days later.
        """
        counts = Counter()
        if not created:
            return counts
        template = current_template()
        template_items = list(template.items.all())
        history = defaultdict(list)
        for decision in GateDecision.objects.filter(
            initiative__in=[initiative for _, initiative in created]
        ).order_by("decided_at", "id"):
            history[decision.initiative_id].append(decision)

        drafts = [
            draft
            for spec, initiative in created
            for draft in _review_drafts(spec, initiative, history[initiative.pk], now)
        ]
        names = {username: str(user) for username, user in people.items()}
        reviews, items, events, work = [], [], [], []
        for draft in drafts:
            review, review_items = self._review(draft, template, template_items, people, names)
            reviews.append(review)
            for item, item_events, work_item in review_items:
                items.append(item)
                events += item_events
                if work_item is not None:
                    work.append(work_item)
        ReadinessReview.objects.bulk_create(reviews)
        ReviewItem.objects.bulk_create(items)
        ReviewItemEvent.objects.bulk_create(events)
        # created_at is auto_now_add, which bulk_create sets to now: backdate it to the failed
        # review's decision (bulk_update writes the value as it is).
        created_at = {id(w): w.created_at for w in work}
        PreLaunchWorkItem.objects.bulk_create(work)
        for w in work:
            w.created_at = created_at[id(w)]
        PreLaunchWorkItem.objects.bulk_update(work, ["created_at"])

        counts.update(review.outcome for review in reviews)
        counts.update(
            reviews=len(reviews),
            items=len(items),
            events=len(events),
            work=len(work),
            open_work=sum(1 for w in work if w.status == WorkStatus.OPEN),
        )
        return counts

    def _review(self, draft, template, template_items, people, names):
        """One review and, per item, the item, its history and its pre-launch work (or None)."""
        spec, initiative, plan = draft.spec, draft.initiative, draft.plan
        manager = people["manager"]
        closing = draft.closing
        review = ReadinessReview(
            initiative=initiative,
            template=template,
            opened_by=draft.opening.decided_by,
            opened_at=draft.opening.decided_at,
            outcome=draft.outcome,
            decided_by=closing.decided_by if closing else None,
            decided_at=closing.decided_at if closing else None,
            decision=closing,
        )
        start, until = draft.opening.decided_at, draft.until
        span = until - start
        assigned_at = _office_hours(
            start + min(timedelta(days=1), span / 10), 1, lo=start, hi=start + span / 5
        )
        worked = [
            t for t in template_items if t.key not in plan.unchecked or t.key in plan.withdrawn
        ]
        check_times = dict(
            zip(
                [t.key for t in worked],
                _spread(assigned_at, until - timedelta(hours=6), len(worked)),
                strict=True,
            )
        )

        result = []
        for position, template_item in enumerate(template_items):
            key = template_item.key
            username = None if key in plan.unassigned else assignee_of(template_item, spec)
            if username == manager.username:
                raise CommandError(f"{spec.title}: the programme manager may not hold an item.")
            assignee = people[username] if username else None
            item = ReviewItem(review=review, template_item=template_item, assignee=assignee)
            item_events = []
            if assignee is not None:
                item_events.append(
                    ReviewItemEvent(
                        item=item,
                        action=ItemAction.ASSIGNED,
                        user=manager,
                        at=assigned_at + timedelta(minutes=position),
                        assignee=assignee,
                    )
                )
            if key in check_times:
                if assignee is None:
                    raise CommandError(f"{spec.title}: “{template_item.title}” has no assignee.")
                at = check_times[key]
                given = evidence(template_item, spec, names=names, at=at)
                item.evidence_text, item.evidence_url = given.text, given.url
                if given.cost is not None:
                    item.cost_per_transaction = Decimal(given.cost.cost)
                    item.monthly_volume = Decimal(given.cost.volume)
                    item.currency = given.cost.currency
                item_events.append(
                    ReviewItemEvent(
                        item=item,
                        action=ItemAction.CHECKED,
                        user=assignee,
                        at=at,
                        evidence_text=given.text,
                        evidence_url=given.url,
                        numbers=given.numbers,
                    )
                )
                if key in plan.withdrawn:
                    item_events.append(
                        ReviewItemEvent(
                            item=item,
                            action=ItemAction.UNCHECKED,
                            user=assignee,
                            at=at + (until - at) / 2,
                            evidence_text=given.text,
                            evidence_url=given.url,
                        )
                    )
                else:
                    item.checked, item.checked_by, item.checked_at = True, assignee, at
            if (
                item.checked
                and template_item.system_evidence == SystemEvidence.OPERATIONAL_OWNER
                and initiative.operational_owner_id is None
            ):
                raise CommandError(f"{spec.title}: no operational owner, yet the item is checked.")
            if draft.outcome == ReviewOutcome.PASSED and not item.checked:
                raise CommandError(f"{spec.title}: a passed review with an unchecked item.")
            # Each write through the services bumps the item's optimistic-lock version.
            item.version = 1 + len(item_events)
            work_item = None
            if draft.outcome == ReviewOutcome.FAILED and not item.checked:
                work_item = self._work_item(draft, item, position, people)
            result.append((item, item_events, work_item))
        if draft.outcome == ReviewOutcome.FAILED and not any(w for _, _, w in result):
            raise CommandError(f"{spec.title}: a failed review with every item checked.")
        return review, result

    def _work_item(self, draft, item: ReviewItem, position: int, people) -> PreLaunchWorkItem:
        """Pre-launch work for an unchecked item of a failed review: done before the
        initiative was resubmitted, unless the plan keeps it open."""
        failed_at = draft.closing.decided_at
        work_item = PreLaunchWorkItem(
            initiative=draft.initiative,
            review_item=item,
            title=item.template_item.title,
            assignee=item.assignee,
            due_date=(failed_at + timedelta(days=WORK_ITEM_DUE_DAYS)).date(),
            created_at=failed_at,
        )
        resubmitted = draft.next_submission
        if resubmitted is not None and item.template_item.key not in draft.plan.work_still_open:
            gap = resubmitted.decided_at - failed_at
            work_item.status = WorkStatus.DONE
            work_item.done_by = item.assignee or people["manager"]
            work_item.done_at = _office_hours(
                failed_at + gap * (0.5 + 0.08 * min(position, 5)),
                position,
                lo=failed_at,
                hi=resubmitted.decided_at,
            )
        return work_item

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


@dataclass(frozen=True)
class _ReviewDraft:
    """One review to write: the submission that opened it and what followed."""

    spec: InitiativeSpec
    initiative: Initiative
    plan: ReviewPlan
    opening: GateDecision
    closing: GateDecision | None  # the pass or fail decision; None while open
    until: datetime  # when work on it stopped: its decision, a stop, or now
    next_submission: GateDecision | None

    @property
    def outcome(self) -> str:
        if self.closing is None:
            return ReviewOutcome.OPEN
        if self.closing.transition == Transition.PASS_REVIEW:
            return ReviewOutcome.PASSED
        if self.closing.transition == Transition.STOP:
            return ReviewOutcome.WITHDRAWN
        return ReviewOutcome.FAILED


def _review_drafts(spec, initiative, decisions: list[GateDecision], now) -> list[_ReviewDraft]:
    """A review per submit_for_review, closed by the pass or fail decision right after it.

    A stop right after it withdraws the review, as the services do.
    """
    drafts, number = [], 0
    for index, decision in enumerate(decisions):
        if decision.transition != Transition.SUBMIT_FOR_REVIEW:
            continue
        number += 1
        later = decisions[index + 1 :]
        following = later[0] if later else None
        closes = following is not None and following.transition in (
            Transition.PASS_REVIEW,
            Transition.FAIL_REVIEW,
            Transition.STOP,
        )
        plan = REVIEWS.get((spec.title, number))
        if plan is None:
            if not closes or following.transition != Transition.PASS_REVIEW:
                raise CommandError(
                    f"{spec.title}: review {number} is not passed, so _demo_reviews.REVIEWS "
                    "must say which items it left unchecked."
                )
            plan = ReviewPlan()
        drafts.append(
            _ReviewDraft(
                spec=spec,
                initiative=initiative,
                plan=plan,
                opening=decision,
                closing=following if closes else None,
                until=following.decided_at if following else now,
                next_submission=next(
                    (d for d in later if d.transition == Transition.SUBMIT_FOR_REVIEW), None
                ),
            )
        )
    return drafts


def _office_hours(moment: datetime, k: int, *, lo: datetime, hi: datetime) -> datetime:
    """`moment` moved into office hours on its day (varied by k), unless that leaves (lo, hi)."""
    moved = moment.replace(hour=9 + k % 8, minute=k * 17 % 60, second=0, microsecond=0)
    return moved if lo < moved < hi else moment.replace(microsecond=0)


def _spread(start: datetime, end: datetime, count: int) -> list[datetime]:
    """`count` increasing times strictly between start and end, in office hours if possible."""
    times, previous = [], start
    for i in range(count):
        moment = start + (end - start) * (i + 1) / (count + 1)
        moved = _office_hours(moment, i * 3 + 2, lo=previous, hi=end)
        previous = moved if moved > previous else previous + timedelta(minutes=1)
        times.append(previous)
    return times


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
            (feed.last_fresh_at or feed.created_at) < moment - feed.freshness_window
        )
    DataFeed.objects.bulk_update(feeds, ["is_stale"])


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)
