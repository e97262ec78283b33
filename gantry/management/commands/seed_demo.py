"""`manage.py seed_demo`: load a realistic AI portfolio to click through.

The portfolio is data (demo_portfolio.json, read by _demo_spec): business units, one login per
role (executive, manager, owner, viewer), the people who sponsor and own initiatives, and
about thirty initiatives across every stage with their history. The command replays that
history through the same services people use, each called at the moment it happened
(`now=`), in time order across the portfolio:

- the programme manager frames each initiative (`save_framing`), its primary metric with the
  value model (what a unit of improvement is worth, and its monthly volume);
- gate decisions are taken by the people the history names (`gates.services.decide`), so
  every criterion is evaluated against the evidence as it stood that day, and a history the
  evidence does not support stops the command;
- feeds are registered when the thin slice starts, and deliver their observations through
  the ingestion service every morning; the beat jobs (stale feeds, metric status) run daily;
- submitting for review opens a review; the manager assigns its items, the assignees check
  them with evidence, a failed review's unchecked items become work the assignees complete;
- budget is requested by an owner or the programme manager (`value.services.request_budget`,
  so the evidence is frozen as it stood that day) and decided by the initiative's sponsor,
  an approval opening the budget line; some requests are still awaiting the sponsor;
- today, a narrow launch is reframed and its owner proposes another change; then purgatory
  flags are detected as the beat job would.

Running it again creates nothing twice: units, people and initiatives that already exist (by
slug or username) are left exactly as they are. Feed tokens are random and never shown:
whoever wants to push data rotates a feed's token. The logins' password comes from the
DEMO_PASSWORD environment variable (default gantry-demo, which only DEBUG accepts: with DEBUG
off the command refuses to create logins anyone could guess from the README).
"""

from __future__ import annotations

import heapq
import itertools
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import slugify

from gantry.management.commands._demo_evidence import RUNBOOKS, assignee_of, evidence
from gantry.management.commands._demo_observations import (
    WEEKLY,
    batches,
    delivery_times,
    points,
)
from gantry.management.commands._demo_spec import (
    BudgetPlan,
    FeedPlan,
    InitiativeSpec,
    Person,
    Portfolio,
    ReviewPlan,
    Step,
    load,
)
from gates import clock
from gates.services import GateRefused, decide
from gates.stages import Transition
from metrics import ingest
from metrics.forms import PrimaryMetricForm
from metrics.models import DataFeed, Metric
from metrics.services import create_feed, store_delivery
from metrics.status import mark_stale_feeds, recompute
from notifications import digest, reminders
from notifications.models import Notification
from pages import purgatory
from portfolio import services as portfolio_services
from portfolio.forms import InitiativeForm
from portfolio.models import BusinessUnit, Initiative, User
from portfolio.roles import role_of
from readiness import services as readiness_services
from readiness.models import PreLaunchWorkItem, ReadinessReview, ReviewOutcome
from readiness.services import current_template
from value import services as value_services
from value.models import BudgetDecision, BudgetLine, BudgetRequest, Outcome

LOGIN_URL = "http://127.0.0.1:8000/accounts/login/"
DEFAULT_PASSWORD = "gantry-demo"  # noqa: S105 - the documented demo password, not a secret
# Days between creating an initiative and its first decision: framing takes a while.
FRAMING_DAYS = 14
# Days after gate 1 at which the thin slice registers its feeds.
FEED_AFTER_DAYS = 2
# The beat jobs' run, after the feeds' morning deliveries and before anyone decides: daily
# for the last SNAPSHOT_DAYS (the trend charts), weekly before, on the weekly delivery's day.
BEAT_HOUR = 7
SNAPSHOT_DAYS = 30
# Feeds deliver daily for this many days back and in the days before each decision.
DAILY_DAYS = 60
DAILY_BEFORE_DECISION = timedelta(days=3)


class Command(BaseCommand):
    help = "Load a demo portfolio: units, one login per role, ~30 initiatives with history."

    def handle(self, *args, **options):
        demo = load()
        password = os.environ.get("DEMO_PASSWORD") or DEFAULT_PASSWORD
        _refuse_a_published_password(demo, chosen=bool(os.environ.get("DEMO_PASSWORD")))
        now = timezone.now().replace(microsecond=0)
        with transaction.atomic():
            units, new_units = self._business_units(demo)
            people, new_people = self._people(demo, password)
            specs = [
                spec
                for spec in demo.initiatives
                if not Initiative.objects.filter(slug=slugify(spec.title)).exists()
            ]
            replay = Replay(demo, units, people, now)
            for spec in specs:
                replay.plan(spec)
            replay.run()
            # What the beat job finds today: the dashboard reads stored flags.
            flags = purgatory.sync_flags(now=now)
            # And what the reminder job and Monday's digest would send today.
            reminded = reminders.remind(now=now)
            digests = digest.send(now=now)

        counts = replay.counts
        self._line("Business units", new_units, len(demo.units))
        self._line("People", len(new_people), len(demo.logins) + len(demo.people))
        self._line("Initiatives", len(specs), len(demo.initiatives))
        self.stdout.write(f"Gate decisions taken: {counts['decisions']}")
        self.stdout.write(
            f"Data feeds created: {counts['feeds']}; deliveries: {counts['deliveries']}; "
            f"observations stored: {counts['observations']}; "
            f"metric snapshots computed: {counts['snapshots']}"
        )
        reviews = Counter(
            ReadinessReview.objects.filter(initiative__in=replay.initiatives).values_list(
                "outcome", flat=True
            )
        )
        work = PreLaunchWorkItem.objects.filter(initiative__in=replay.initiatives)
        self.stdout.write(
            f"Readiness reviews opened: {reviews.total()} ({reviews[ReviewOutcome.OPEN]} open, "
            f"{reviews[ReviewOutcome.PASSED]} passed, {reviews[ReviewOutcome.FAILED]} failed, "
            f"{reviews[ReviewOutcome.WITHDRAWN]} withdrawn); items assigned: "
            f"{counts['assigned']}, checked: {counts['checked']}, unchecked again: "
            f"{counts['unchecked']}; pre-launch work items: {work.count()} "
            f"({work.filter(status='open').count()} open)"
        )
        requests = BudgetRequest.objects.filter(initiative__in=replay.initiatives)
        decided = Counter(
            BudgetDecision.objects.filter(request__in=requests).values_list("outcome", flat=True)
        )
        lines = BudgetLine.objects.filter(initiative__in=replay.initiatives).count()
        self.stdout.write(
            f"Budget requests made: {requests.count()} ({decided[Outcome.APPROVED]} approved, "
            f"{decided[Outcome.REJECTED]} rejected, {requests.count() - decided.total()} "
            f"awaiting the sponsor); budget lines opened: {lines}"
        )
        self.stdout.write(f"Purgatory flags: {flags['raised']} raised, {flags['cleared']} cleared")
        told = Notification.objects.filter(initiative__in=replay.initiatives).count()
        reminded = sum(n for kind, n in reminded.items() if kind != "emailed")
        mail = settings.EMAIL_HOST or getattr(settings, "EMAIL_FILE_PATH", "")
        self.stdout.write(
            f"Notifications: {told} from the replay, {reminded} reminders today, {digests} "
            f"weekly digests; mail goes to {mail}"
        )
        self.stdout.write(
            f"Reframes recorded today: {counts['reframes']}; proposals open: {counts['proposals']}"
        )
        if counts["feeds"]:
            self.stdout.write(
                "Feed tokens are not shown: rotate a feed's token on its initiative page to "
                "push data to it."
            )
        self._login_instructions(demo, people, new_people, password)

    # Reference data ------------------------------------------------------------------------
    def _business_units(self, demo: Portfolio) -> tuple[dict[str, BusinessUnit], int]:
        units, created = {}, 0
        for slug, name in demo.units:
            unit = BusinessUnit.objects.filter(Q(slug=slug) | Q(name=name)).first()
            if unit is None:
                unit = BusinessUnit.objects.create(slug=slug, name=name)
                created += 1
            units[slug] = unit
        return units, created

    def _people(self, demo: Portfolio, password: str) -> tuple[dict[str, User], set[str]]:
        """Users by username, and the usernames created now.

        An existing user keeps its password and groups: the username may belong to a real
        person, and the demo must not reset anyone's password or widen their rights.
        """
        logins = {person.username for person in demo.logins}
        people, created = {}, set()
        for person in [*demo.logins, *demo.people]:
            user = User.objects.filter(username=person.username).first()
            if user is None:
                user = _create_user(person, password if person.username in logins else None)
                created.add(person.username)
            people[person.username] = user
        return people, created

    # Output --------------------------------------------------------------------------------
    def _line(self, what: str, created: int, total: int) -> None:
        self.stdout.write(f"{what}: {created} created, {total - created} already present.")

    def _login_instructions(self, demo, people, created: set[str], password: str) -> None:
        self.stdout.write(self.style.SUCCESS(f"Demo ready. Log in at {LOGIN_URL} as:"))
        width = max(len(person.username) for person in demo.logins)
        for person in demo.logins:
            role = role_of(people[person.username])
            line = f"  {person.username:<{width}}  {role.label if role else 'no role'}"
            if person.username not in created:
                line += " (existing user: password unchanged)"
            self.stdout.write(line)
        self.stdout.write(f"Password: {password}")


def _refuse_a_published_password(demo: Portfolio, *, chosen: bool) -> None:
    """Outside DEBUG, logins with the password printed in the README would let anyone in:
    refuse to create them unless DEMO_PASSWORD names one. Logins that exist already keep
    their password, so a run that creates none needs no password."""
    if settings.DEBUG or chosen:
        return
    usernames = [person.username for person in demo.logins]
    if User.objects.filter(username__in=usernames).count() < len(usernames):
        raise CommandError(
            "DEBUG is off: the demo logins would get the published default password. "
            "Set DEMO_PASSWORD to a password of your own, or run with DEBUG=1."
        )


def _create_user(person: Person, password: str | None) -> User:
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


@dataclass
class Story:
    """One initiative being replayed: its spec and what the replay has made of it so far."""

    spec: InitiativeSpec
    initiative: Initiative | None = None
    feeds: dict[str, DataFeed] = field(default_factory=dict)
    review: ReadinessReview | None = None
    metric: Metric | None = None  # the primary metric, once framed
    # The budget requests made so far, by their position in the spec's budget.
    requests: dict[int, BudgetRequest] = field(default_factory=dict)


@dataclass(order=True)
class Event:
    at: datetime
    seq: int
    act: Callable[[datetime], None] = field(compare=False)


class Replay:
    """The demo's history as events in time order, each acted through a service at its time."""

    def __init__(self, demo: Portfolio, units, people, now: datetime) -> None:
        self.units, self.people, self.now = units, people, now
        self.unit_names = dict(demo.units)
        self.names = {username: str(user) for username, user in people.items()}
        self.manager = people["manager"]
        self.midnight = now.replace(hour=0, minute=0, second=0)
        self.today_date = timezone.localdate(now)
        self.events: list[Event] = []
        self.seq = itertools.count()
        self.stories: list[Story] = []
        self.counts = Counter()
        self.template_items = list(current_template().items.all())

    @property
    def initiatives(self) -> list[Initiative]:
        return [s.initiative for s in self.stories if s.initiative is not None]

    def add(self, at: datetime, act: Callable[[datetime], None]) -> None:
        heapq.heappush(self.events, Event(min(at, self.now), next(self.seq), act))

    def day(self, days_ago: float) -> datetime:
        """A time in office hours `days_ago` days back, varied so decisions do not share one."""
        whole = int(days_ago)
        return (
            self.midnight
            - timedelta(days=whole)
            + timedelta(hours=9 + whole % 8, minutes=whole * 7 % 60)
        )

    # Planning ------------------------------------------------------------------------------
    def plan(self, spec: InitiativeSpec) -> None:
        story = Story(spec)
        self.stories.append(story)
        first = spec.history[0].days_ago + FRAMING_DAYS if spec.history else spec.in_frame_days
        self.add(self.day(first) - timedelta(hours=1), lambda at: self.frame(story, at))
        times = [self.day(step.days_ago) for step in spec.history]
        for step, at in zip(spec.history, times, strict=True):
            self.add(at, lambda at, step=step: self.decide(story, step, at))
        approved = next(
            (
                at
                for s, at in zip(spec.history, times, strict=True)
                if s.transition == Transition.APPROVE_FRAME
            ),
            None,
        )
        if approved is not None:
            stopped = next(
                (
                    at
                    for s, at in zip(spec.history, times, strict=True)
                    if s.transition == Transition.STOP and at > approved
                ),
                None,
            )
            for plan in spec.feeds:
                self._plan_feed(story, plan, approved, stopped)
        self._plan_reviews(story, times)
        self._plan_budget(story)

    def _plan_feed(self, story: Story, plan: FeedPlan, approved: datetime, stopped) -> None:
        end = self.now - timedelta(days=plan.silent_days)
        if stopped is not None:  # a stop pauses the feeds: the last delivery came before it
            end = min(end, stopped - timedelta(hours=2))
        if plan.kind == "live":
            registered = _office_hours(approved + timedelta(days=FEED_AFTER_DAYS), 3)
        else:
            registered = end - timedelta(minutes=20)
        self.add(registered, lambda at: self.register(story, plan, at))
        metric = story.spec.metric
        delivered = points(story.spec.title, plan, unit=metric.unit, start=registered, end=end)
        decisions = [self.day(step.days_ago) for step in story.spec.history]

        def daily(moment: datetime) -> bool:
            return moment >= self.now - timedelta(days=DAILY_DAYS) or any(
                timedelta(0) <= d - moment <= DAILY_BEFORE_DECISION for d in decisions
            )

        times = delivery_times(plan, start=registered, end=end, daily=daily)
        for at, batch in batches(delivered, times):
            self.add(at, lambda at, batch=batch: self.deliver(story, plan, batch, at))

    def _plan_reviews(self, story: Story, times: list[datetime]) -> None:
        """A review per submission: assigned, checked as its plan says, closed by the history."""
        history, number = story.spec.history, 0
        for index, step in enumerate(history):
            if step.transition != Transition.SUBMIT_FOR_REVIEW:
                continue
            number += 1
            following = history[index + 1] if index + 1 < len(history) else None
            plan = story.spec.reviews.get(number)
            if plan is None:
                if following is None or following.transition != Transition.PASS_REVIEW:
                    raise CommandError(
                        f"{story.spec.title}: review {number} is not passed, so the demo data "
                        "must say which items it left unchecked."
                    )
                plan = ReviewPlan()
            start = times[index]
            until = times[index + 1] if following else self.now
            self._plan_review(story, plan, start, until)
            if following is not None and following.transition == Transition.FAIL_REVIEW:
                later = [
                    at
                    for s, at in zip(history[index + 2 :], times[index + 2 :], strict=True)
                    if s.transition == Transition.SUBMIT_FOR_REVIEW
                ]
                self._plan_work(story, plan, times[index + 1], later[0] if later else None)

    def _plan_review(self, story: Story, plan: ReviewPlan, start: datetime, until: datetime):
        span = until - start
        assigned = _office_hours(
            start + min(timedelta(days=1), span / 10), 1, lo=start, hi=start + span / 5
        )
        keys = [t.key for t in self.template_items]
        worked = [k for k in keys if k not in plan.unchecked or k in plan.withdrawn]
        checked_at = dict(
            zip(worked, _spread(assigned, until - timedelta(hours=6), len(worked)), strict=True)
        )
        for position, template_item in enumerate(self.template_items):
            key = template_item.key
            if key in plan.unassigned:
                continue
            username = assignee_of(template_item, story.spec)
            self.add(
                assigned + timedelta(minutes=position),
                lambda at, key=key, username=username: self.assign(story, key, username, at),
            )
            if key in checked_at:
                at = checked_at[key]
                self.add(at, lambda at, item=template_item: self.check(story, item, at))
                if key in plan.withdrawn:
                    self.add(
                        at + (until - at) / 2, lambda at, key=key: self.uncheck(story, key, at)
                    )

    def _plan_work(self, story: Story, plan: ReviewPlan, failed: datetime, resubmitted) -> None:
        """The failed review's work, done before the resubmission unless the plan keeps it open."""
        if resubmitted is None:
            return
        gap = resubmitted - failed
        for position, key in enumerate(k for k in self._keys() if k in plan.unchecked):
            if key in plan.work_still_open:
                continue
            at = _office_hours(
                failed + gap * (0.5 + 0.08 * min(position, 5)), position, lo=failed, hi=resubmitted
            )
            self.add(at, lambda at, key=key: self.complete(story, key, at))

    def _plan_budget(self, story: Story) -> None:
        """Each request on its day after any gate decision taken that day, and the sponsor's
        decision after it: later the same day or on a later one."""
        for index, plan in enumerate(story.spec.budget):
            requested = self.day(plan.days_ago) + timedelta(minutes=75)
            self.add(
                requested,
                lambda at, index=index, plan=plan: self.request_budget(story, index, plan, at),
            )
            if plan.decision is None:
                continue
            if plan.decision.days_ago > plan.days_ago:
                raise CommandError(
                    f"{story.spec.title}: a budget request is decided before it is made."
                )
            self.add(
                self.day(plan.decision.days_ago) + timedelta(minutes=150),
                lambda at, index=index, plan=plan: self.decide_budget(story, index, plan, at),
            )

    def _keys(self) -> list[str]:
        return [t.key for t in self.template_items]

    def _plan_beat(self) -> None:
        """The beat jobs: weekly from the first event, daily for the last SNAPSHOT_DAYS.

        Gate 4 and a roll back read the primary metric's status: it is brought up to date
        just before them, as the hourly recompute would have.
        """
        if not self.events:
            return
        first = min(e.at for e in self.events)
        moment = first.replace(hour=BEAT_HOUR, minute=0, second=0) + timedelta(days=1)
        daily_from = self.midnight - timedelta(days=SNAPSHOT_DAYS)
        while moment < self.now:
            if moment >= daily_from or moment.weekday() == WEEKLY:
                self.add(moment, self.beat)
            moment += timedelta(days=1)

    # Running -------------------------------------------------------------------------------
    def run(self) -> None:
        self._plan_beat()
        while self.events:
            event = heapq.heappop(self.events)
            event.act(event.at)
        self.beat(self.now)
        for story in self.stories:
            self.today(story)

    def frame(self, story: Story, at: datetime) -> None:
        spec = story.spec

        def pk(username):
            return self.people[username].pk if username else ""

        data = {
            "title": spec.title,
            "summary": spec.summary,
            "business_unit": self.units[spec.unit].pk,
            "sponsor": pk(spec.sponsor),
            "business_owner": pk(spec.business_owner),
            "operational_owner": pk(spec.operational_owner),
            "delivery_lead": pk(spec.delivery_lead),
            "decision_changed": spec.decision_changed,
            "security_model": spec.security_model,
            "logging_evidence": spec.logging_evidence,
            "narrow_audience": spec.narrow_audience,
        }
        # As the framing page posts it: the metric's fields are always sent, empty or not.
        m = spec.metric
        data |= {
            "metric-name": m.name if m else "",
            "metric-unit": m.unit if m else "",
            "metric-direction": m.direction if m else "higher",
            "metric-ship_threshold": (m.ship_threshold if m else None) or "",
            "metric-baseline": (m.baseline if m else None) or "",
            "metric-aggregation": m.aggregation if m else "mean",
            "metric-comparison_window_days": m.window_days if m else 14,
            "metric-unit_value": (m.unit_value if m else None) or "",
            "metric-value_currency": m.value_currency if m else "",
            "metric-monthly_volume": (m.monthly_volume if m else None) or "",
            "metric-volume_source": m.volume_source if m else "",
        }
        form = InitiativeForm(data)
        metric_form = PrimaryMetricForm(data, prefix="metric")
        if not (form.is_valid() and metric_form.is_valid()):
            raise CommandError(
                f"{spec.title}: {form.errors.as_text()} {metric_form.errors.as_text()}"
            )
        story.initiative = portfolio_services.save_framing(
            initiative_form=form, metric_form=metric_form, user=self.manager, now=at
        )
        story.metric = story.initiative.primary_metric

    def decide(self, story: Story, step: Step, at: datetime) -> None:
        if step.transition in (Transition.WIDEN, Transition.ROLL_BACK):
            before = at - timedelta(minutes=30)
            mark_stale_feeds(now=before)
            self.counts["snapshots"] += recompute(metric_ids=[story.metric.pk], now=before)
        try:
            decide(
                initiative=story.initiative,
                transition=step.transition,
                user=self.people[step.by],
                rationale=step.rationale,
                stop_reason=step.stop_reason,
                now=at,
            )
        except GateRefused as exc:
            raise CommandError(f"{story.spec.title}, {step.days_ago} days ago: {exc}") from exc
        self.counts["decisions"] += 1
        if step.transition == Transition.SUBMIT_FOR_REVIEW:
            story.review = story.initiative.reviews.order_by("-opened_at", "-pk").first()

    def register(self, story: Story, plan: FeedPlan, at: datetime) -> None:
        feed, _token = create_feed(
            initiative=story.initiative,
            user=self.manager,
            name=plan.name,
            kind=plan.kind,
            owner=self.people[plan.owner],
            freshness_hours=plan.freshness_hours,
            now=at,
        )
        story.feeds[plan.name] = feed
        self.counts["feeds"] += 1

    def deliver(self, story: Story, plan: FeedPlan, batch, at: datetime) -> None:
        """One delivery, as the feed's client would post it to the ingestion API."""
        feed = story.feeds[plan.name]
        slug = story.metric.slug
        items = [
            {
                "metric": slug,
                "cohort": p.cohort,
                "observed_at": p.observed_at.isoformat(),
                "value": p.value,
            }
            for p in batch
        ]
        with clock.at(at):
            checked = ingest.validate(items, feed)
        if not checked.ok:
            raise CommandError(
                f"{story.spec.title}: a delivery was refused: {checked.problems[:3]}"
            )
        # The replay runs the beat jobs at their times: no recompute is queued per delivery.
        stored = store_delivery(feed=feed, batch=checked, now=at, schedule=False)
        self.counts["deliveries"] += 1
        self.counts["observations"] += stored.created

    def beat(self, at: datetime) -> None:
        """What beat runs: flag stale feeds, then recompute the demo's metrics."""
        mark_stale_feeds(now=at)
        ids = [s.metric.pk for s in self.stories if s.metric is not None]
        self.counts["snapshots"] += recompute(metric_ids=ids, now=at) if ids else 0

    def _item(self, story: Story, key: str):
        return story.review.items.select_related("template_item", "assignee").get(
            template_item__key=key
        )

    def assign(self, story: Story, key: str, username: str, at: datetime) -> None:
        readiness_services.assign(
            item=self._item(story, key), assignee=self.people[username], user=self.manager, now=at
        )
        self.counts["assigned"] += 1

    def check(self, story: Story, template_item, at: datetime) -> None:
        item = self._item(story, template_item.key)
        given = evidence(template_item, story.spec, names=self.names, units=self.unit_names, at=at)
        cost = given.cost
        try:
            readiness_services.check(
                item=item,
                user=item.assignee,
                evidence_text=given.text,
                evidence_url=given.url,
                cost_per_transaction=Decimal(cost.cost) if cost else None,
                monthly_volume=Decimal(cost.volume) if cost else None,
                currency=cost.currency if cost else "",
                now=at,
            )
        except ValidationError as exc:
            raise CommandError(f"{story.spec.title}: {template_item.key}: {exc}") from exc
        self.counts["checked"] += 1

    def uncheck(self, story: Story, key: str, at: datetime) -> None:
        item = self._item(story, key)
        readiness_services.uncheck(item=item, user=item.assignee, now=at)
        self.counts["unchecked"] += 1

    def complete(self, story: Story, key: str, at: datetime) -> None:
        work = PreLaunchWorkItem.objects.select_related("assignee").get(
            review_item__review__initiative=story.initiative,
            review_item__template_item__key=key,
            status="open",
        )
        readiness_services.complete_work_item(
            work_item=work,
            user=work.assignee or self.manager,
            evidence_text=f"Done: {work.title.lower()} is in place; walked through with the team.",
            evidence_url=f"{RUNBOOKS}/{story.initiative.slug}/{key}",
            now=at,
        )

    def request_budget(self, story: Story, index: int, plan: BudgetPlan, at: datetime) -> None:
        spec = story.spec
        metric, cost = spec.metric, spec.cost
        currency = (
            plan.currency
            or (metric.value_currency if metric else "")
            or (cost.currency if cost else "")
            or "EUR"
        )
        answerable = plan.answerable or (
            spec.business_owner if plan.by == self.manager.username else plan.by
        )
        values = {
            "kind": plan.kind,
            "amount": Decimal(plan.amount),
            "currency": currency,
            "starts_on": self.today_date + timedelta(days=plan.from_day),
            "ends_on": self.today_date + timedelta(days=plan.to_day),
            "purpose": plan.purpose,
            "answerable": self.people[answerable],
        }
        try:
            story.requests[index] = value_services.request_budget(
                initiative=story.initiative, user=self.people[plan.by], values=values, now=at
            )
        except ValidationError as exc:
            raise CommandError(
                f"{spec.title}, budget requested {plan.days_ago} days ago: {exc}"
            ) from exc

    def decide_budget(self, story: Story, index: int, plan: BudgetPlan, at: datetime) -> None:
        decision = plan.decision
        try:
            value_services.decide(
                request=story.requests[index],
                user=self.people[decision.by],
                outcome=decision.outcome,
                rationale=decision.rationale,
                now=at,
            )
        except ValidationError as exc:
            raise CommandError(
                f"{story.spec.title}, budget decided {decision.days_ago} days ago: {exc}"
            ) from exc

    def today(self, story: Story) -> None:
        """Today's reframe and an owner's open proposal, as the data asks."""
        spec, initiative = story.spec, story.initiative
        if spec.reframe is not None:
            portfolio_services.reframe(
                initiative=initiative,
                user=self.people[spec.reframe.by],
                values=_cleaned(spec.reframe.values),
                rationale=spec.reframe.rationale,
                now=self.now,
            )
            # As the worker does once the reframe commits: the status against the new definition.
            self.counts["snapshots"] += recompute(
                metric_ids=[initiative.primary_metric.pk], now=self.now
            )
            self.counts["reframes"] += 1
        if spec.proposal is not None:
            portfolio_services.propose_reframe(
                initiative=initiative,
                user=self.people[spec.proposal.by],
                values=_cleaned(spec.proposal.values),
                reason=spec.proposal.rationale,
                now=self.now,
            )
            self.counts["proposals"] += 1


def _cleaned(values: dict) -> dict:
    """A success definition's values as a form cleans them: numbers as Decimal or int."""
    return {k: Decimal(v) if isinstance(v, str) else v for k, v in values.items()}


def _office_hours(
    moment: datetime, k: int, *, lo: datetime | None = None, hi: datetime | None = None
) -> datetime:
    """`moment` moved into office hours on its day (varied by k), unless that leaves (lo, hi)."""
    moved = moment.replace(hour=9 + k % 8, minute=k * 17 % 60, second=0, microsecond=0)
    if (lo is None or lo < moved) and (hi is None or moved < hi):
        return moved
    return moment.replace(microsecond=0)


def _spread(start: datetime, end: datetime, count: int) -> list[datetime]:
    """`count` increasing times strictly between start and end, in office hours if possible."""
    times, previous = [], start
    for i in range(count):
        moment = start + (end - start) * (i + 1) / (count + 1)
        moved = _office_hours(moment, i * 3 + 2, lo=previous, hi=end)
        previous = moved if moved > previous else previous + timedelta(minutes=1)
        times.append(previous)
    return times
