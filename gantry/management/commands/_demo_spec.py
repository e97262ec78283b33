"""The demo portfolio as data: `demo_portfolio.json` beside this module, read into dataclasses.

The file holds what the demo says, per initiative: its framing and primary metric, the
decisions of its history (each `days_ago`, counted back from the day seed_demo runs, by a
username), the feeds it registered with the observations they deliver, what each readiness
review found, the running cost and fallback its owners report, and the budget its people
asked for and its sponsor decided. seed_demo replays it through the services; nothing here
writes to the database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from portfolio.roles import Role

DATA = Path(__file__).with_name("demo_portfolio.json")


@dataclass(frozen=True)
class Person:
    username: str
    first_name: str
    last_name: str
    role: Role


@dataclass(frozen=True)
class MetricSpec:
    name: str
    unit: str
    direction: str
    ship_threshold: str | None
    baseline: str | None = None
    window_days: int = 14
    aggregation: str = "mean"
    # The value model, framed with the metric and frozen with it at gate 1: what one unit of
    # improvement is worth (in `value_currency`) for each of `monthly_volume` cases a month.
    unit_value: str | None = None
    value_currency: str = ""
    monthly_volume: str | None = None
    volume_source: str = ""


@dataclass(frozen=True)
class Step:
    transition: str
    by: str
    days_ago: int
    rationale: str
    stop_reason: str = ""


@dataclass(frozen=True)
class Series:
    """Observations of the primary metric for one cohort, `per_day` a day.

    They run for `days` days up to the feed's last delivery, or since the feed was registered
    when `days` is not given. The typical value drifts linearly from `mean` to `drift_to`.
    """

    cohort: str
    mean: float
    noise: float  # standard deviation of one observation around the typical value
    drift_to: float | None = None
    days: int | None = None
    per_day: int = 4


@dataclass(frozen=True)
class FeedPlan:
    name: str
    owner: str  # username of the person who answers for the feed
    series: tuple[Series, ...]
    kind: str = "live"
    freshness_hours: int = 24
    # A live feed's last delivery, or a one-off extract's only one, this many days ago.
    silent_days: float = 0


@dataclass(frozen=True)
class ReviewPlan:
    """What one review found: by item key, as the review was decided (or stands, if open)."""

    unchecked: tuple[str, ...] = ()
    unassigned: tuple[str, ...] = ()  # nobody assigned yet (open reviews; unchecked too)
    withdrawn: tuple[str, ...] = ()  # checked, then unchecked again by the assignee
    work_still_open: tuple[str, ...] = ()  # a failed review's work not yet done


@dataclass(frozen=True)
class CostPlan:
    cost: str  # per transaction, in `currency`
    volume: int  # expected transactions a month
    currency: str
    per: str  # what one transaction is
    per_plural: str
    basis: str  # what the cost per transaction includes


@dataclass(frozen=True)
class Change:
    by: str
    values: dict
    rationale: str


@dataclass(frozen=True)
class BudgetDecisionPlan:
    """The sponsor's decision on a budget request, `days_ago`."""

    by: str
    days_ago: int
    outcome: str  # approved (which opens the budget line) or rejected
    rationale: str


@dataclass(frozen=True)
class BudgetPlan:
    """A budget request made `days_ago` by `by`, for the period from `from_day` to `to_day`
    (days counted from today: negative in the past); open while `decision` is None."""

    kind: str  # build or run
    amount: str
    by: str
    days_ago: int
    from_day: int
    to_day: int
    purpose: str
    # The metric's value currency when not given, else the running cost's, else EUR.
    currency: str = ""
    # Who answers for the money: the requester when not given, the business owner when the
    # requester is the programme manager.
    answerable: str | None = None
    decision: BudgetDecisionPlan | None = None


@dataclass(frozen=True)
class InitiativeSpec:
    title: str
    unit: str
    summary: str
    sponsor: str | None = None
    business_owner: str | None = None
    delivery_lead: str | None = None
    operational_owner: str | None = None
    decision_changed: str = ""
    security_model: str = ""
    logging_evidence: str = ""
    narrow_audience: str = ""
    metric: MetricSpec | None = None
    history: tuple[Step, ...] = ()
    # For an initiative with no history: how long ago it was created, still in frame.
    in_frame_days: int = 1
    feeds: tuple[FeedPlan, ...] = ()
    # By the number of the submission for review that opened it, from 1. A review the
    # history passes needs no plan: every item was checked.
    reviews: dict[int, ReviewPlan] = field(default_factory=dict)
    cost: CostPlan | None = None
    fallback: str = ""
    # A change to the success definition recorded today, and one an owner proposes.
    reframe: Change | None = None
    proposal: Change | None = None
    # Budget requests, in the order they were made.
    budget: tuple[BudgetPlan, ...] = ()


@dataclass(frozen=True)
class Portfolio:
    units: tuple[tuple[str, str], ...]
    logins: tuple[Person, ...]  # the logins the demo prints, one per role
    people: tuple[Person, ...]  # who sponsor and own initiatives, without a password
    initiatives: tuple[InitiativeSpec, ...]


def _person(raw: dict) -> Person:
    return Person(**{**raw, "role": Role(raw["role"])})


def _feed(raw: dict) -> FeedPlan:
    return FeedPlan(**{**raw, "series": tuple(Series(**s) for s in raw["series"])})


def _budget(raw: dict) -> BudgetPlan:
    decision = raw.get("decision")
    return BudgetPlan(**{**raw, "decision": BudgetDecisionPlan(**decision) if decision else None})


def _initiative(raw: dict) -> InitiativeSpec:
    plans = {
        int(n): ReviewPlan(**{k: tuple(v) for k, v in p.items()})
        for n, p in raw.get("reviews", {}).items()
    }
    return InitiativeSpec(
        **{
            **raw,
            "metric": MetricSpec(**raw["metric"]) if raw.get("metric") else None,
            "history": tuple(Step(**s) for s in raw.get("history", ())),
            "feeds": tuple(_feed(f) for f in raw.get("feeds", ())),
            "reviews": plans,
            "cost": CostPlan(**raw["cost"]) if raw.get("cost") else None,
            "reframe": Change(**raw["reframe"]) if raw.get("reframe") else None,
            "proposal": Change(**raw["proposal"]) if raw.get("proposal") else None,
            "budget": tuple(_budget(b) for b in raw.get("budget", ())),
        }
    )


@cache
def load(path: Path = DATA) -> Portfolio:
    raw = json.loads(path.read_text(encoding="utf-8"))
    return Portfolio(
        units=tuple((u["slug"], u["name"]) for u in raw["units"]),
        logins=tuple(_person(p) for p in raw["logins"]),
        people=tuple(_person(p) for p in raw["people"]),
        initiatives=tuple(_initiative(i) for i in raw["initiatives"]),
    )
