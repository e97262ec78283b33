"""Gate criteria: small named functions, each answering pass/fail with a sentence.

A registry maps each transition to its criteria. The state machine asks the registry (see
`gate_open`), so later modules add or replace criteria without touching the machine: a
criterion registered again under the same key replaces the earlier one.

Pages and decisions list a transition's criteria by their `order`, so the criteria an app
registers sit among the gates' own wherever their numbers put them, whatever order the apps
load in. The numbers step by ten to leave room between them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from decimal import Decimal

from gates import clock
from gates.stages import Transition


@dataclass(frozen=True)
class Result:
    passed: bool
    reason: str


@dataclass(frozen=True)
class Criterion:
    key: str
    label: str
    check: Callable[[object], Result]
    advisory: bool = False  # shown on the page, never blocks the gate
    order: int | None = None  # None: after every ordered criterion, in registration order


@dataclass(frozen=True)
class Outcome:
    """What one criterion said about one initiative: rendered on pages, stored in decisions."""

    key: str
    label: str
    passed: bool
    reason: str
    advisory: bool

    @property
    def blocks(self) -> bool:
        return not self.passed and not self.advisory

    def as_json(self) -> dict:
        return asdict(self)


class Registry:
    def __init__(self) -> None:
        self._criteria: dict[str, dict[str, Criterion]] = {t.value: {} for t in Transition}

    def register(
        self,
        transition: str,
        *,
        key: str,
        label: str,
        advisory: bool = False,
        order: int | None = None,
    ):
        """Decorator: register `check(initiative) -> Result` as a criterion of `transition`.

        A key registered again replaces its criterion; with no `order` the replacement keeps
        the earlier one's place, so replacing a check never moves it on the page.
        """

        def decorate(check: Callable[[object], Result]):
            criteria = self._criteria[str(transition)]
            earlier = criteria.get(key)
            placed = earlier.order if order is None and earlier is not None else order
            # Assigning an existing key keeps its slot in the dict, and so its registration
            # sequence, which breaks ties between equal orders.
            criteria[key] = Criterion(key, label, check, advisory, placed)
            return check

        return decorate

    @contextmanager
    def override(
        self, check: Callable[[object], Result] | None = None, *, keep: tuple[str, ...] = ()
    ) -> Iterator[Registry]:
        """For tests: every criterion answers with `check` except the keys in `keep`, which
        keep their real checks. With no `check` nothing is replaced. Whatever is registered
        inside the block is gone after it, and the registry is as it was."""
        saved = self._criteria
        self._criteria = {
            transition: {
                key: criterion if check is None or key in keep else replace(criterion, check=check)
                for key, criterion in criteria.items()
            }
            for transition, criteria in saved.items()
        }
        try:
            yield self
        finally:
            self._criteria = saved

    def criteria_for(self, transition: str) -> list[Criterion]:
        """The criteria of `transition` by order, then by registration (the sort is stable)."""
        return sorted(
            self._criteria[str(transition)].values(),
            key=lambda c: (c.order is None, c.order or 0),
        )

    def evaluate(self, initiative, transition: str) -> list[Outcome]:
        outcomes = []
        for criterion in self.criteria_for(transition):
            result = criterion.check(initiative)
            outcomes.append(
                Outcome(
                    key=criterion.key,
                    label=criterion.label,
                    passed=bool(result.passed),
                    reason=result.reason,
                    advisory=criterion.advisory,
                )
            )
        return outcomes


registry = Registry()


def blocking(outcomes: list[Outcome]) -> list[Outcome]:
    return [outcome for outcome in outcomes if outcome.blocks]


def gate_open(transition: str) -> Callable[[object], bool]:
    """A django-fsm condition that holds when no blocking criterion of `transition` fails."""

    def condition(initiative) -> bool:
        return not blocking(registry.evaluate(initiative, transition))

    condition.__name__ = f"gate_open_{transition}"
    return condition


def _person(user) -> str:
    return str(user)  # the user model says how a person is named


def _number(value: Decimal | None, unit: str = "") -> str:
    if value is None:
        return ""
    text = f"{value.normalize():f}"
    return f"{text} {unit}".strip()


# Gate 1: frame -> thin slice ---------------------------------------------------------------
T = Transition


@registry.register(
    T.APPROVE_FRAME, key="decision_defined", label="Decision or workflow it changes", order=10
)
def decision_defined(initiative) -> Result:
    if initiative.decision_changed.strip():
        return Result(True, "The decision or workflow it changes is written down.")
    return Result(False, "Nobody has written down which decision or workflow this will change.")


@registry.register(
    T.APPROVE_FRAME, key="primary_metric_defined", label="Primary success metric", order=20
)
def primary_metric_defined(initiative) -> Result:
    metric = initiative.primary_metric
    if metric is None:
        return Result(False, "No primary success metric is defined.")
    if not metric.unit.strip():
        return Result(False, f"The primary metric “{metric.name}” has no unit.")
    return Result(
        True,
        f"Primary metric: {metric.name} ({metric.unit}, {metric.get_direction_display()}).",
    )


@registry.register(T.APPROVE_FRAME, key="ship_threshold_set", label="Ship threshold", order=30)
def ship_threshold_set(initiative) -> Result:
    metric = initiative.primary_metric
    if metric is None or metric.ship_threshold is None:
        return Result(False, "No ship threshold is set on a primary metric.")
    comparison = "at least" if metric.higher_is_better else "at most"
    return Result(
        True,
        f"Ship when {metric.name} is {comparison} {_number(metric.ship_threshold, metric.unit)}.",
    )


@registry.register(
    T.APPROVE_FRAME, key="business_owner_named", label="Named business owner", order=40
)
def business_owner_named(initiative) -> Result:
    if initiative.business_owner_id is None:
        return Result(False, "No business owner is named.")
    return Result(True, f"Business owner: {_person(initiative.business_owner)}.")


@registry.register(
    T.APPROVE_FRAME,
    key="baseline_recorded",
    label="Baseline of the existing process",
    advisory=True,
    order=50,
)
def baseline_recorded(initiative) -> Result:
    metric = initiative.primary_metric
    if metric is None or metric.baseline is None:
        return Result(False, "No baseline of the existing process is recorded (advisory).")
    return Result(True, f"Existing process: {_number(metric.baseline, metric.unit)}.")


# Gate 2: thin slice -> readiness review ----------------------------------------------------
# metrics' live_feed (10) and fresh_data (20) come before these.
@registry.register(T.SUBMIT_FOR_REVIEW, key="logging_attested", label="Logging in place", order=30)
def logging_attested(initiative) -> Result:
    if initiative.logging_evidence:
        return Result(True, f"Logging attested: {initiative.logging_evidence}")
    return Result(False, "No evidence link shows that logging is in place.")


@registry.register(
    T.SUBMIT_FOR_REVIEW, key="security_model", label="Security model sketched", order=40
)
def security_model_sketched(initiative) -> Result:
    if initiative.security_model.strip():
        return Result(True, "The security model is sketched.")
    return Result(False, "Nobody has sketched who can see and change what data.")


# Gate 3: readiness review -> narrow launch -------------------------------------------------
# readiness' checklist_complete (10) comes before these.
@registry.register(
    T.PASS_REVIEW, key="operational_owner_named", label="Named operational owner", order=20
)
def operational_owner_named(initiative) -> Result:
    if initiative.operational_owner_id is None:
        return Result(False, "No operational owner is named.")
    return Result(True, f"Operational owner: {_person(initiative.operational_owner)}.")


@registry.register(
    T.PASS_REVIEW, key="narrow_audience_defined", label="Narrow audience defined", order=30
)
def narrow_audience_defined(initiative) -> Result:
    if initiative.narrow_audience.strip():
        return Result(True, f"Narrow audience: {initiative.narrow_audience.strip()}")
    return Result(False, "The narrow audience (one team, region or product line) is not defined.")


# Gate 4: narrow launch -> wide launch ------------------------------------------------------
# metrics' pilot_meets_threshold (20) and pilot_beats_baseline (30), then readiness'
# no_open_work_items (40), come after this one.
@registry.register(
    T.WIDEN, key="window_elapsed", label="Launch ran for the comparison window", order=10
)
def window_elapsed(initiative) -> Result:
    metric = initiative.primary_metric
    if metric is None:
        return Result(False, "No primary metric, so there is no comparison window.")
    days = (clock.now() - initiative.stage_entered_at).days
    window = metric.comparison_window_days
    if days >= window:
        return Result(True, f"The narrow launch has run {days} days; the window is {window}.")
    return Result(False, f"The narrow launch has run {days} of {window} days.")
