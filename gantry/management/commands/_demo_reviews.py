"""The demo's readiness reviews: what each one found, and the evidence its items were given.

seed_demo derives the reviews from each initiative's imported history, as the gate effects
would have made them: every submit_for_review opens a review on the current checklist, and the
next pass_review or fail_review closes it. A stop while in review leaves the review open, as
the services do today (no effect runs on stop).

The history cannot say which items a failed or still-open review left unchecked: REVIEWS does,
keyed by (initiative title, number of the submission, from 1). A passed review has every item
checked, so it needs no entry. Items go to the initiative's owners: the delivery lead checks
the technical items, the business owner the cost, the operational owner the item naming them
(the business owner while nobody is named). The programme manager assigns them and is never
an assignee. Evidence is written from the initiative's own framing, feeds and COSTS, so every
review reads as that initiative's.

The demo shows, through these plans:
- open reviews: subrogation (started, one item checked then withdrawn), payroll (barely
  started), purchase-order anomalies (every item checked, operational owner and narrow audience
  named: the manager can pass it) and agent knowledge search (the `owner` login's unchecked
  items; the operational-owner item unassigned, since nobody is named yet);
- failed reviews whose work items are still open: email intent routing (back in thin slice)
  and photo estimate (its drift-alert runbook, so gate 4's no_open_work_items fails on a
  narrow launch that meets its threshold);
- failed reviews whose work was done before the resubmission: order chat, purchase orders.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.utils.text import slugify

from gantry.management.commands._demo_data import UNITS, InitiativeSpec
from gantry.management.commands._demo_observations import FEEDS
from metrics.models import FeedKind
from readiness.models import SystemEvidence

WIKI = "https://wiki.example.internal"
RUNBOOKS = "https://runbooks.example.internal"
DASHBOARDS = "https://grafana.example.internal/d"
ACCESS_REVIEWS = "https://grc.example.internal/access-reviews"
COST_MODELS = "https://finance.example.internal/cost-models"


@dataclass(frozen=True)
class ReviewPlan:
    # Item keys left unchecked when the review was decided, or as it stands if still open.
    unchecked: tuple[str, ...] = ()
    # Item keys nobody is assigned to yet (open reviews only; they are unchecked too).
    unassigned: tuple[str, ...] = ()
    # Item keys checked and then unchecked again by their assignee (open reviews only).
    withdrawn: tuple[str, ...] = ()
    # A failed review's work items still open although the initiative was resubmitted.
    work_still_open: tuple[str, ...] = ()


REVIEWS: dict[tuple[str, int], ReviewPlan] = {
    # Failed ---------------------------------------------------------------------------------
    ("Customer email intent routing", 1): ReviewPlan(
        unchecked=("monitoring_alerting", "failure_fallback", "operational_owner"),
    ),
    ("Purchase order anomaly flagging", 1): ReviewPlan(
        unchecked=("cost_per_transaction", "operational_owner"),
    ),
    ("Motor damage photo estimate", 1): ReviewPlan(
        unchecked=("monitoring_alerting", "failure_fallback"),
        work_still_open=("monitoring_alerting",),
    ),
    ("Order status chat assistant", 1): ReviewPlan(unchecked=("failure_fallback",)),
    # Open, the initiative in readiness review -----------------------------------------------
    ("Subrogation opportunity detection", 1): ReviewPlan(
        unchecked=("monitoring_alerting", "failure_fallback", "cost_per_transaction"),
        withdrawn=("monitoring_alerting",),
    ),
    ("Payroll query assistant", 1): ReviewPlan(
        unchecked=("data_pipeline", "monitoring_alerting", "failure_fallback", "operational_owner"),
    ),
    ("Purchase order anomaly flagging", 2): ReviewPlan(),
    ("Agent knowledge search", 1): ReviewPlan(
        unchecked=(
            "security_access",
            "monitoring_alerting",
            "failure_fallback",
            "operational_owner",
        ),
        unassigned=("operational_owner",),
    ),
    # Open, the initiative stopped while in review ---------------------------------------------
    ("Voice bot for first notice of loss", 1): ReviewPlan(
        unchecked=("monitoring_alerting", "failure_fallback", "operational_owner"),
    ),
}


@dataclass(frozen=True)
class CostPlan:
    cost: str  # per transaction, in `currency`
    volume: int  # expected transactions a month
    currency: str
    per: str  # what one transaction is
    per_plural: str
    basis: str  # what the cost per transaction includes


COSTS: dict[str, CostPlan] = {
    "Contract clause extraction": CostPlan(
        "0.85", 1_200, "EUR", "contract", "contracts", "inference on 40 pages, storage, hosting"
    ),
    "Customer email intent routing": CostPlan(
        "0.004", 180_000, "GBP", "email", "emails", "classification call and queue hosting"
    ),
    "Subrogation opportunity detection": CostPlan(
        "0.06", 22_000, "EUR", "settled claim", "settled claims", "scoring and hosting"
    ),
    "Payroll query assistant": CostPlan(
        "0.06", 9_000, "EUR", "query", "queries", "model calls, payslip retrieval, hosting"
    ),
    "Purchase order anomaly flagging": CostPlan(
        "0.003", 60_000, "EUR", "order", "orders", "scoring call and feature store reads"
    ),
    "Agent knowledge search": CostPlan(
        "0.012", 250_000, "EUR", "search", "searches", "embedding, retrieval and answer calls"
    ),
    "Contact-centre call summarisation": CostPlan(
        "0.021", 90_000, "EUR", "call", "calls", "transcription, summary call and hosting"
    ),
    "Motor damage photo estimate": CostPlan(
        "0.35",
        6_500,
        "EUR",
        "claim",
        "claims",
        "image model, hosting and assessor sign-off above EUR 3,000",
    ),
    "Cash application remittance matching": CostPlan(
        "0.04", 30_000, "GBP", "remittance", "remittances", "document reading, matching, hosting"
    ),
    "Inbound shipment ETA prediction": CostPlan(
        "0.002", 400_000, "EUR", "prediction", "predictions", "carrier events and model serving"
    ),
    "Sanctions screening alert triage": CostPlan(
        "0.015", 120_000, "EUR", "alert", "alerts", "ranking, rationale draft and audit storage"
    ),
    "Claims document classification": CostPlan(
        "0.008", 450_000, "EUR", "document", "documents", "OCR, classification and hosting"
    ),
    "Invoice data capture": CostPlan(
        "0.05", 80_000, "EUR", "invoice", "invoices", "extraction, validation and hosting"
    ),
    "Order status chat assistant": CostPlan(
        "0.09", 150_000, "EUR", "chat", "chats", "model calls, order look-ups, chat platform"
    ),
    "Contact-centre staffing forecast": CostPlan(
        "0.0004",
        2_200_000,
        "EUR",
        "interval forecast",
        "interval forecasts",
        "nightly training and forecast runs",
    ),
    "Transaction monitoring alert prioritisation": CostPlan(
        "0.02", 40_000, "EUR", "alert", "alerts", "scoring, explanations and seven-year storage"
    ),
    "Generative claims correspondence": CostPlan(
        "0.03", 25_000, "GBP", "letter", "letters", "drafting calls and template hosting"
    ),
    # As the stop decision says: EUR 1.90 a call at 40,000 calls a month.
    "Voice bot for first notice of loss": CostPlan(
        "1.90", 40_000, "EUR", "call", "calls", "speech, model calls and telephony minutes"
    ),
}

# What users get when the model is down or unsure, per initiative (item 4's evidence).
FALLBACKS: dict[str, str] = {
    "Contract clause extraction": (
        "If extraction fails or a clause scores below 0.8 confidence, the contract goes to the "
        "legal queue for a full manual review, as before the pilot."
    ),
    "Customer email intent routing": (
        "When classifier confidence drops below 0.7 the email is routed by the old keyword "
        "rules, which stay deployed alongside the model."
    ),
    "Subrogation opportunity detection": (
        "If scoring stops, the recoveries team works the weekly rule-based report as before."
    ),
    "Payroll query assistant": (
        "When the assistant is unsure or payroll data is unavailable it hands the question and "
        "payslip over to the payroll helpdesk; the employee sees the ticket number."
    ),
    "Purchase order anomaly flagging": (
        "If the scoring service is down, orders go through the normal approval chain unflagged "
        "and finance controls run the weekly duplicate report as before."
    ),
    "Agent knowledge search": (
        "If search is down, agents use the knowledge base's keyword search; the widget says so."
    ),
    "Contact-centre call summarisation": (
        "If transcription fails the CRM opens the blank after-call form and the agent writes the "
        "summary by hand; no call is left without a disposition code."
    ),
    "Motor damage photo estimate": (
        "If the photo service is down or the estimate's confidence is low, the claim is booked "
        "for an assessor visit automatically, as before the pilot."
    ),
    "Cash application remittance matching": (
        "Payments the model cannot match with high confidence stay on the unapplied-cash "
        "worklist for clerks; the model never writes off a difference."
    ),
    "Inbound shipment ETA prediction": (
        "When carrier events stop arriving, depots fall back to the carrier's own ETA and the "
        "receiving plan marks which arrivals are not predicted."
    ),
    "Sanctions screening alert triage": (
        "If ranking is unavailable the queue reverts to first-in, first-out order; no alert is "
        "closed without an analyst either way."
    ),
    "Claims document classification": (
        "Documents classified below 0.9 confidence, or while the service is down, go to the "
        "mailroom indexing queue for manual filing."
    ),
    "Invoice data capture": (
        "Invoices the model cannot read with confidence go to the keying team's queue; the "
        "template OCR stays available as a fallback for six months."
    ),
    "Order status chat assistant": (
        "When the assistant is unsure or the order system is down, the chat hands over to an "
        "agent with the full transcript and the order number attached."
    ),
    "Contact-centre staffing forecast": (
        "If the forecast run fails, planners get last week's forecast with a warning banner and "
        "the spreadsheet model remains available."
    ),
    "Transaction monitoring alert prioritisation": (
        "If scoring fails, alerts enter the queue in date order as before the pilot; the model "
        "never suppresses an alert."
    ),
    "Generative claims correspondence": (
        "If drafting fails, handlers get the standard letter templates as before; a handler "
        "still sends every letter."
    ),
    "Voice bot for first notice of loss": (
        "Out of hours, callers the bot cannot help are offered a call back from the claims team "
        "the next morning."
    ),
}

UNIT_NAMES = dict(UNITS)


@dataclass(frozen=True)
class Evidence:
    text: str
    url: str = ""
    cost: CostPlan | None = None

    @property
    def numbers(self) -> dict:
        """The numbers as readiness.services.check records them in the item's history."""
        if self.cost is None:
            return {}
        return {
            "cost_per_transaction": self.cost.cost,
            "monthly_volume": str(self.cost.volume),
            "currency": self.cost.currency,
        }


def evidence(
    template_item, spec: InitiativeSpec, *, names: dict[str, str], at: datetime
) -> Evidence:
    """The evidence the assignee gave when checking `template_item` at `at`.

    `names` maps usernames to full names. Keys a newer checklist added get a plain note.
    """
    slug = slugify(spec.title)
    day = f"{at.day} {at:%b %Y}"
    rota = f"{UNIT_NAMES.get(spec.unit, 'the team')} on-call rota"
    if template_item.asks_numbers:
        cost = COSTS[spec.title]
        monthly = (Decimal(cost.cost) * cost.volume).quantize(Decimal("0.01"))
        return Evidence(
            f"{cost.currency} {cost.cost} per {cost.per} ({cost.basis}), from the last four "
            f"weeks' invoices. At the expected {cost.volume:,} {cost.per_plural} a month that "
            f"is {cost.currency} {monthly:,} a month.",
            f"{COST_MODELS}/{slug}",
            cost,
        )
    key = template_item.key
    if key == "data_pipeline":
        live = next((p for p in FEEDS.get(spec.title, ()) if p.kind == FeedKind.LIVE), None)
        source = (
            f"“{live.name}” delivers from the production pipeline; Gantry flags it when a "
            f"{live.freshness_hours} h window passes without data."
            if live
            else "The production extract runs nightly."
        )
        lead = names.get(spec.delivery_lead or "", "The delivery lead")
        return Evidence(
            f"{source} Failed loads retry three times with back-off, then page the {rota}. "
            f"{lead} owns the pipeline runbook.",
            f"{RUNBOOKS}/{slug}/data-pipeline",
        )
    if key == "security_access":
        model = spec.security_model or "Access follows the data owner's standard roles."
        return Evidence(
            f"Access review signed off by information security on {day}. {model}",
            f"{ACCESS_REVIEWS}/{slug}",
        )
    if key == "monitoring_alerting":
        metric = spec.metric.name.lower() if spec.metric else "model quality"
        return Evidence(
            f"Production dashboard tracks {metric}, latency and error rate. Alerts fire when the "
            f"error rate passes 2% or p95 latency 3 s, and when the metric drifts past its "
            f"threshold for a day; they go to the {rota}.",
            f"{DASHBOARDS}/{slug}",
        )
    if key == "failure_fallback":
        fallback = FALLBACKS.get(spec.title, "Work falls back to the existing process.")
        return Evidence(f"{fallback} Fallback drill last run on {day}.", f"{RUNBOOKS}/{slug}")
    if key == "operational_owner":
        owner = names[spec.operational_owner]
        return Evidence(
            f"{owner} runs it in production and is on its out-of-hours rota; the handover "
            f"from the delivery team was signed off on {day}."
        )
    return Evidence(
        f"Reviewed against the guidance for “{template_item.title}” on {day}; notes and "
        "sign-off on the linked page.",
        f"{WIKI}/{slug}/{key}",
    )


def assignee_of(template_item, spec: InitiativeSpec) -> str | None:
    """The owner an item goes to: cost to the business owner, the operational-owner item to
    the operational owner (the business owner while none is named), the rest to the delivery
    lead."""
    if template_item.asks_numbers:
        return spec.business_owner or spec.delivery_lead
    if template_item.system_evidence == SystemEvidence.OPERATIONAL_OWNER:
        return spec.operational_owner or spec.business_owner
    return spec.delivery_lead or spec.business_owner
