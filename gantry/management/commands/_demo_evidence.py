"""The evidence a demo review's assignees give, written from the initiative's own data.

Items go to the initiative's owners: the delivery lead checks the technical items, the
business owner the cost, the operational owner the item naming them (the business owner while
nobody is named). Evidence quotes the initiative's framing, feeds, running cost and fallback,
so every review reads as that initiative's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.utils.text import slugify

from gantry.management.commands._demo_spec import CostPlan, InitiativeSpec
from readiness.models import SystemEvidence

WIKI = "https://wiki.example.internal"
RUNBOOKS = "https://runbooks.example.internal"
DASHBOARDS = "https://grafana.example.internal/d"
ACCESS_REVIEWS = "https://grc.example.internal/access-reviews"
COST_MODELS = "https://finance.example.internal/cost-models"


@dataclass(frozen=True)
class Evidence:
    text: str
    url: str = ""
    cost: CostPlan | None = None


def evidence(
    template_item,
    spec: InitiativeSpec,
    *,
    names: dict[str, str],
    units: dict[str, str],
    at: datetime,
) -> Evidence:
    """The evidence the assignee gave when checking `template_item` at `at`.

    `names` maps usernames to full names, `units` unit slugs to names. Keys a newer
    checklist added get a plain note.
    """
    slug = slugify(spec.title)
    day = f"{at.day} {at:%b %Y}"
    rota = f"{units.get(spec.unit, 'the team')} on-call rota"
    if template_item.asks_numbers:
        cost = spec.cost
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
        live = next((p for p in spec.feeds if p.kind == "live"), None)
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
        fallback = spec.fallback or "Work falls back to the existing process."
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
