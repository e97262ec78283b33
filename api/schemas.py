"""What the API answers, as pydantic models: the OpenAPI document is generated from these."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from ninja import Schema
from pydantic import Field


class ItemProblem(Schema):
    index: int | None = None
    field: str | None = None
    message: str


class ProblemOut(Schema):
    """application/problem+json (RFC 9457)."""

    type: str = Field(examples=["about:blank"])
    title: str
    status: int
    detail: str = Field(description="What went wrong and what to do.")
    error: str = Field(description="The detail again, for clients of the first API.")
    errors: dict[str, list[str]] | list[ItemProblem] | None = Field(
        default=None,
        description="Field errors by field (non_field_errors for the whole), or for an "
        "observation batch the problems of each item by index.",
    )


class PersonOut(Schema):
    username: str
    name: str


class FlagOut(Schema):
    kind: str
    reason: str
    raised_at: datetime
    since: datetime | None
    cleared_at: datetime | None


class InitiativeSummary(Schema):
    slug: str
    title: str
    stage: str
    stage_label: str
    business_unit: str
    business_owner: str = Field(description="A name, or empty when nobody is named.")
    delivery_lead: str
    days_in_stage: int
    primary_verdict: str | None
    active_flags: list[str] = Field(description="Kinds of the active purgatory flags.")
    url: str


class InitiativePage(Schema):
    results: list[InitiativeSummary]
    next: str | None = Field(description="The URL of the next page; null on the last.")
    next_cursor: str | None


class SnapshotOut(Schema):
    computed_at: datetime
    window_start: datetime
    window_end: datetime
    verdict: str
    summary: str
    pilot_value: float | None
    pilot_count: int
    baseline_value: float | None
    baseline_count: int
    lift: float | None
    confidence: float | None


class MetricOut(Schema):
    name: str
    slug: str
    unit: str
    is_primary: bool
    direction: str
    aggregation: str
    ship_threshold: Decimal | None
    comparison_window_days: int
    latest_snapshot: SnapshotOut | None


class OutcomeOut(Schema):
    key: str
    label: str
    passed: bool
    blocks: bool
    reason: str


class TransitionOut(Schema):
    transition: str
    label: str
    you_may: bool = Field(description="Whether the token's person holds this permission.")
    criteria: list[OutcomeOut]


class DecisionOut(Schema):
    transition: str
    from_stage: str
    to_stage: str
    decided_by: str
    decided_at: datetime
    rationale: str
    stop_reason: str


class ItemOut(Schema):
    id: int
    key: str
    title: str
    assignee: str | None
    checked: bool
    checked_by: str | None
    checked_at: datetime | None
    evidence_text: str
    evidence_url: str
    version: int


class ReviewOut(Schema):
    id: int
    opened_at: datetime
    outcome: str
    decided_at: datetime | None
    checklist_version: int
    items: list[ItemOut]


class InitiativeDetail(Schema):
    slug: str
    title: str
    summary: str
    stage: str
    stage_label: str
    stage_entered_at: datetime
    stop_reason: str
    business_unit: str
    sponsor: PersonOut | None
    business_owner: PersonOut | None
    operational_owner: PersonOut | None
    delivery_lead: PersonOut | None
    framing: dict[str, str] = Field(description="The framing fields as recorded.")
    metrics: list[MetricOut]
    transitions: list[TransitionOut] = Field(
        description="The transitions from the current stage, each with its criteria now."
    )
    flags: list[FlagOut]
    decisions: list[DecisionOut] = Field(description="The audit history, oldest first.")
    reviews: list[ReviewOut]
    url: str


class DecisionIn(Schema):
    rationale: str = Field(max_length=5000)
    expected_stage: str = Field(
        description="The stage you saw: if it has moved since, the decision is refused (409)."
    )
    stop_reason: str = Field(default="", description="Required when stopping.")


class DecisionResult(Schema):
    transition: str
    from_stage: str
    to_stage: str
    decided_at: datetime
    initiative: str


class AssignIn(Schema):
    assignee: str | None = Field(description="A username; null unassigns.")
    version: int = Field(description="The item's version you saw (409 if it changed).")
    confirm: bool = Field(
        default=False, description="Assign even if nobody would be left to decide the review."
    )


class CheckIn(Schema):
    evidence_text: str = Field(default="", max_length=5000)
    evidence_url: str = Field(default="", max_length=500)
    cost_per_transaction: Decimal | None = None
    monthly_volume: Decimal | None = None
    currency: str = ""
    version: int


class UncheckIn(Schema):
    version: int


class BudgetRequestIn(Schema):
    kind: str = Field(description="build, run or scale.")
    amount: Decimal = Field(description="In the currency, to the cent, e.g. 24000.00.")
    currency: str = Field(description="Three letters (ISO 4217), e.g. EUR.")
    starts_on: date
    ends_on: date
    purpose: str = Field(max_length=2000)
    answerable: str = Field(description="The username of whoever answers for the money.")


class BudgetRequestOut(Schema):
    id: int
    initiative: str
    kind: str
    amount: Decimal
    currency: str
    starts_on: date
    ends_on: date
    purpose: str
    answerable: str
    requested_by: str
    requested_at: datetime
    evidence: dict = Field(description="The evidence as it stood when requested, frozen.")
    url: str


class ObservationIn(Schema):
    metric: str = Field(description="The metric's slug or id, within the feed's initiative.")
    cohort: str = Field(description="pilot, baseline or production.")
    observed_at: datetime = Field(description="ISO 8601 with a timezone; not in the future.")
    value: float


class IngestOut(Schema):
    created: int
    duplicates: int
    fresh: int
