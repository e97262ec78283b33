"""The demo portfolio that `manage.py seed_demo` loads: units, people, initiatives, history.

Days are counted back from the day the command runs, so the demo always looks current.
Every past decision is taken by someone the permission table allows: approvals, widening,
roll-backs, stops and reopens by an executive or the programme manager; submissions by the
programme manager or the initiative's delivery lead or business owner; review outcomes by the
programme manager, who owns no initiative.
"""

from dataclasses import dataclass

from gates.stages import StopReason
from gates.stages import Transition as T
from metrics.models import Aggregation, Direction
from portfolio.roles import Role

LOGS = "https://logs.example.internal"


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
    direction: Direction
    ship_threshold: str | None
    baseline: str | None = None
    window_days: int = 14
    aggregation: Aggregation = Aggregation.MEAN


@dataclass(frozen=True)
class Step:
    transition: T
    by: str
    days_ago: int
    rationale: str
    stop_reason: StopReason | str = ""


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


UNITS = [
    ("claims", "Claims"),
    ("customer-service", "Customer Service"),
    ("finance-operations", "Finance Operations"),
    ("supply-chain", "Supply Chain"),
    ("hr", "HR"),
    ("risk-compliance", "Risk & Compliance"),
]

# The four logins the demo prints, one per role.
LOGINS = [
    Person("executive", "Catherine", "Doyle", Role.EXECUTIVE),
    Person("manager", "Ravi", "Shah", Role.PROGRAMME_MANAGER),
    Person("owner", "Nora", "Lindgren", Role.OWNER),
    Person("viewer", "Sam", "Taylor", Role.VIEWER),
]

# People who sponsor and own initiatives; they appear in the portfolio but have no password.
PEOPLE = [
    Person("priya.raman", "Priya", "Raman", Role.EXECUTIVE),
    Person("marcus.holt", "Marcus", "Holt", Role.EXECUTIVE),
    Person("elena.petrova", "Elena", "Petrova", Role.EXECUTIVE),
    Person("tomas.garcia", "Tomás", "García", Role.OWNER),
    Person("aisha.bello", "Aisha", "Bello", Role.OWNER),
    Person("lukas.weber", "Lukas", "Weber", Role.OWNER),
    Person("sofia.rossi", "Sofia", "Rossi", Role.OWNER),
    Person("daniel.okoro", "Daniel", "Okoro", Role.OWNER),
    Person("mei.chen", "Mei", "Chen", Role.OWNER),
    Person("jonas.berg", "Jonas", "Berg", Role.OWNER),
]

HIGHER, LOWER = Direction.HIGHER, Direction.LOWER

INITIATIVES = [
    # Frame ---------------------------------------------------------------------------------
    InitiativeSpec(
        title="Claims triage assistant",
        unit="claims",
        summary=(
            "Reads the first notice of loss and its attachments, scores each new motor claim "
            "for complexity and routes it to fast-track settlement or a senior adjuster."
        ),
        sponsor="priya.raman",
        business_owner="owner",
        delivery_lead="mei.chen",
        decision_changed=(
            "Which new motor claims go to fast-track settlement and which to a senior "
            "adjuster. Today a team lead sorts the overnight queue by hand every morning."
        ),
        security_model=(
            "Handlers see scores only for claims in their own queue. Only claims analytics can "
            "change routing rules. Claim documents stay in the claims data platform (EU region)."
        ),
        metric=MetricSpec("Time to first handler action", "hours", LOWER, "4", "18"),
        in_frame_days=9,
    ),
    InitiativeSpec(
        title="Fraud referral summaries",
        unit="claims",
        summary=(
            "Drafts the referral note for the special investigations unit from the claim "
            "history and the fraud indicators that fired."
        ),
        sponsor="priya.raman",
        delivery_lead="owner",
        decision_changed=(
            "How a handler refers a suspicious claim: from a blank form to reviewing a "
            "drafted note with the indicators already cited."
        ),
        metric=MetricSpec("Referral notes accepted without rework", "%", HIGHER, "80"),
        in_frame_days=38,
    ),
    InitiativeSpec(
        title="Expense policy assistant",
        unit="finance-operations",
        summary=(
            "Answers employees' travel and expense questions in the intranet chat, quoting "
            "the policy paragraph it relies on."
        ),
        sponsor="marcus.holt",
        business_owner="aisha.bello",
        delivery_lead="jonas.berg",
        decision_changed=(
            "Whether an employee raises a finance helpdesk ticket or gets the policy answer "
            "directly, before submitting the claim."
        ),
        in_frame_days=21,
    ),
    InitiativeSpec(
        title="Regulatory change horizon scanning",
        unit="risk-compliance",
        summary=(
            "Reads regulator publications weekly and flags the changes that touch our "
            "policies, with the policy owners who need to act."
        ),
        sponsor="elena.petrova",
        business_owner="daniel.okoro",
        decision_changed=(
            "Which regulatory updates compliance analysts read in full; today they skim "
            "every publication from eleven regulators."
        ),
        metric=MetricSpec(
            "Relevant changes missed per quarter",
            "changes",
            LOWER,
            None,
            "3",
            window_days=90,
            aggregation=Aggregation.SUM,
        ),
        in_frame_days=14,
    ),
    InitiativeSpec(
        title="Warehouse slotting recommendations",
        unit="supply-chain",
        summary=(
            "Recommends each week where fast-moving SKUs should sit in the Rotterdam "
            "warehouse, from the last quarter's pick history."
        ),
        sponsor="elena.petrova",
        business_owner="lukas.weber",
        delivery_lead="jonas.berg",
        decision_changed="The weekly re-slotting plan the warehouse shift lead signs off.",
        metric=MetricSpec("Pick travel per order", "metres", LOWER, "120"),
        in_frame_days=5,
    ),
    InitiativeSpec(
        title="Supplier risk early warning",
        unit="supply-chain",
        summary=(
            "Combines credit-agency scores, delivery performance and news to warn buyers of "
            "suppliers likely to fail within 60 days."
        ),
        sponsor="elena.petrova",
        business_owner="lukas.weber",
        delivery_lead="mei.chen",
        decision_changed=(
            "Which suppliers category managers review each month for dual sourcing, instead "
            "of the annual risk questionnaire."
        ),
        security_model=(
            "Category managers see scores for their own categories; credit-agency data is "
            "licensed for procurement use only and never leaves the procurement workspace."
        ),
        logging_evidence=f"{LOGS}/procurement/supplier-risk",
        metric=MetricSpec(
            "Supplier failures flagged 60 days ahead", "%", HIGHER, "70", "25", window_days=28
        ),
        history=(
            Step(
                T.APPROVE_FRAME,
                "elena.petrova",
                170,
                "Clear decision, a measurable target and an owner in procurement. Approved.",
            ),
            Step(
                T.STOP,
                "manager",
                96,
                "The thin slice ran on a one-off extract from the credit agency; procurement "
                "has no contract for a live feed this year. Stopping rather than pretending.",
                StopReason.DATA_NOT_AVAILABLE,
            ),
            Step(
                T.REOPEN,
                "elena.petrova",
                12,
                "Procurement signed the credit-agency data contract with a daily feed. Reopening "
                "to reframe with the live feed in scope.",
            ),
        ),
    ),
    # Thin slice ----------------------------------------------------------------------------
    InitiativeSpec(
        title="Invoice matching",
        unit="finance-operations",
        summary=(
            "Matches supplier invoices to purchase orders and goods receipts, and proposes "
            "an exception reason when the three-way match fails."
        ),
        sponsor="marcus.holt",
        business_owner="aisha.bello",
        delivery_lead="owner",
        decision_changed=(
            "Which invoices an accounts-payable clerk touches: only the exceptions, with a "
            "proposed reason, instead of every unmatched line."
        ),
        security_model=(
            "AP clerks see invoices of their own company codes. Bank details are masked for "
            "the model. Only the AP lead can change matching tolerances."
        ),
        logging_evidence=f"{LOGS}/finance/invoice-matching",
        metric=MetricSpec("Invoices matched without manual touch", "%", HIGHER, "85", "62"),
        history=(
            Step(
                T.APPROVE_FRAME,
                "manager",
                34,
                "Framing is complete: AP owns the outcome and the touchless rate is already "
                "reported monthly. Go to a thin slice on the Benelux company codes.",
            ),
        ),
    ),
    InitiativeSpec(
        title="Contract clause extraction",
        unit="risk-compliance",
        summary=(
            "Extracts liability, termination and data-protection clauses from supplier "
            "contracts and flags deviations from the standard positions."
        ),
        sponsor="elena.petrova",
        business_owner="daniel.okoro",
        delivery_lead="jonas.berg",
        operational_owner="daniel.okoro",
        decision_changed=(
            "Which supplier contracts go to a lawyer for full review; standard ones are "
            "signed off by procurement with the extraction attached."
        ),
        security_model=(
            "Contracts stay in the contract repository; the model reads them through a "
            "service account with read-only access. Legal can override every flag."
        ),
        logging_evidence=f"{LOGS}/legal/clause-extraction",
        narrow_audience="Procurement legal team, indirect-spend contracts only",
        metric=MetricSpec("Time to review a supplier contract", "minutes", LOWER, "25", "70"),
        history=(
            Step(
                T.APPROVE_FRAME,
                "executive",
                262,
                "Legal backlog is the bottleneck on supplier onboarding; the framing is sound.",
            ),
            Step(
                T.SUBMIT_FOR_REVIEW,
                "jonas.berg",
                171,
                "Thin slice on 400 indirect-spend contracts: review time down to 22 minutes.",
            ),
            Step(
                T.PASS_REVIEW,
                "manager",
                143,
                "All six checklist items evidenced; legal ops named as operational owner.",
            ),
            Step(
                T.ROLL_BACK,
                "executive",
                112,
                "Extraction accuracy fell on the new supplier template set and lawyers started "
                "re-checking every clause; review time rose to 48 minutes. Back to thin slice "
                "to retrain on the current templates.",
            ),
        ),
    ),
    InitiativeSpec(
        title="Customer email intent routing",
        unit="customer-service",
        summary=(
            "Classifies inbound customer emails by intent and urgency and routes them to the "
            "right queue, replacing the keyword rules."
        ),
        sponsor="executive",
        business_owner="tomas.garcia",
        delivery_lead="owner",
        decision_changed="Which queue an inbound email lands in, and how soon it is answered.",
        security_model=(
            "Email bodies are processed in the contact-centre tenant; no email text is kept "
            "by the model service. Only the routing team can change queue mappings."
        ),
        logging_evidence=f"{LOGS}/contact-centre/email-routing",
        narrow_audience="Home insurance email queues, UK only",
        metric=MetricSpec("Emails routed to the right queue first time", "%", HIGHER, "90", "71"),
        history=(
            Step(
                T.APPROVE_FRAME,
                "manager",
                141,
                "Misrouted emails cost a day each; the metric is measured today. Approved.",
            ),
            Step(
                T.SUBMIT_FOR_REVIEW,
                "tomas.garcia",
                69,
                "Four weeks on live home-insurance mail: 92% routed right first time.",
            ),
            Step(
                T.FAIL_REVIEW,
                "manager",
                47,
                "Monitoring and fallback are not ready: no alert when classifier confidence "
                "drops, and the fall-back to keyword rules was never tested. Nobody is named "
                "to run it in production either. All three are now pre-launch work items.",
            ),
        ),
    ),
    InitiativeSpec(
        title="New-joiner onboarding assistant",
        unit="hr",
        summary=(
            "Answers new joiners' questions about equipment, benefits and first-week "
            "logistics from the HR knowledge base."
        ),
        sponsor="elena.petrova",
        business_owner="sofia.rossi",
        delivery_lead="jonas.berg",
        decision_changed=(
            "Whether a new joiner raises an HR ticket or finds the answer in the first week."
        ),
        security_model=(
            "Answers come from published HR articles only; no personal HR records are read."
        ),
        metric=MetricSpec(
            "HR tickets per new joiner in first 30 days", "tickets", LOWER, "1.5", "4.2", 30
        ),
        history=(
            Step(
                T.APPROVE_FRAME,
                "executive",
                128,
                "Low risk, clear owner in HR operations, ticket data available. Approved.",
            ),
        ),
    ),
    InitiativeSpec(
        title="Demand forecasting for spare parts",
        unit="supply-chain",
        summary=(
            "Forecasts weekly demand for 14,000 spare-part SKUs across three regional depots, "
            "including slow movers with intermittent demand."
        ),
        sponsor="elena.petrova",
        business_owner="lukas.weber",
        delivery_lead="mei.chen",
        decision_changed="The weekly replenishment orders planners place for each depot.",
        security_model=(
            "Planners see forecasts for their own depots; only the planning lead can "
            "override the safety-stock policy."
        ),
        logging_evidence=f"{LOGS}/supply-chain/spare-parts-forecast",
        metric=MetricSpec("Forecast error (weighted MAPE)", "%", LOWER, "22", "35", window_days=28),
        history=(
            Step(
                T.APPROVE_FRAME,
                "elena.petrova",
                19,
                "Stock-outs on spare parts cost us service-level penalties; target agreed "
                "with the planning lead.",
            ),
        ),
    ),
    InitiativeSpec(
        title="Complaint classification for conduct reporting",
        unit="risk-compliance",
        summary=(
            "Tags every customer complaint with the regulator's conduct categories and root "
            "cause, for the monthly conduct report."
        ),
        sponsor="executive",
        business_owner="daniel.okoro",
        delivery_lead="mei.chen",
        decision_changed=(
            "How complaints are categorised for the regulator: from a sampled manual review "
            "to every complaint tagged and a sample checked."
        ),
        security_model=(
            "Complaint text is pseudonymised before classification; the conduct team alone "
            "can correct tags, and every correction is kept."
        ),
        logging_evidence=f"{LOGS}/risk/complaint-classification",
        metric=MetricSpec(
            "Complaints correctly tagged for conduct reporting", "%", HIGHER, "95", "87"
        ),
        history=(
            Step(
                T.APPROVE_FRAME,
                "manager",
                63,
                "Conduct risk owns it and the accuracy target matches the audit finding.",
            ),
        ),
    ),
    # Readiness review ----------------------------------------------------------------------
    InitiativeSpec(
        title="Subrogation opportunity detection",
        unit="claims",
        summary=(
            "Spots settled claims where a third party is liable, so the recoveries team can "
            "pursue them before the limitation period runs out."
        ),
        sponsor="priya.raman",
        business_owner="priya.raman",
        delivery_lead="mei.chen",
        operational_owner="jonas.berg",
        decision_changed="Which settled claims the recoveries team investigates each week.",
        security_model=(
            "Recoveries analysts see flagged claims only; liability notes are read in the "
            "claims platform and never exported."
        ),
        logging_evidence=f"{LOGS}/claims/subrogation",
        metric=MetricSpec(
            "Recovery opportunities per 1,000 claims",
            "per 1,000 claims",
            HIGHER,
            "14",
            "9",
            window_days=28,
        ),
        history=(
            Step(
                T.APPROVE_FRAME,
                "priya.raman",
                205,
                "Recoveries left on the table are measurable in euros. Approved.",
            ),
            Step(
                T.SUBMIT_FOR_REVIEW,
                "manager",
                41,
                "Live feed from the claims platform for eight weeks; 15.2 opportunities per "
                "1,000 claims on the pilot team.",
            ),
        ),
    ),
    InitiativeSpec(
        title="Payroll query assistant",
        unit="hr",
        summary=(
            "Answers employees' payslip questions (tax codes, overtime, deductions) with "
            "their own payslip in context, and hands over to payroll when unsure."
        ),
        sponsor="executive",
        business_owner="sofia.rossi",
        delivery_lead="jonas.berg",
        operational_owner="sofia.rossi",
        decision_changed="Whether a payslip question becomes a payroll ticket.",
        security_model=(
            "An employee sees only their own payslip; the assistant runs with the employee's "
            "identity, never a service account with access to all payroll data."
        ),
        logging_evidence=f"{LOGS}/hr/payroll-assistant",
        metric=MetricSpec("Payroll queries resolved without a ticket", "%", HIGHER, "60", "15"),
        history=(
            Step(
                T.APPROVE_FRAME,
                "executive",
                110,
                "Payroll tickets peak every month-end; the target is ambitious but measurable.",
            ),
            Step(
                T.SUBMIT_FOR_REVIEW,
                "sofia.rossi",
                12,
                "Six weeks with the Madrid office: 64% resolved without a ticket.",
            ),
        ),
    ),
    InitiativeSpec(
        title="Purchase order anomaly flagging",
        unit="finance-operations",
        summary=(
            "Flags duplicate, split and unusually priced purchase orders before approval, "
            "with the comparable orders that make it look odd."
        ),
        sponsor="marcus.holt",
        business_owner="aisha.bello",
        delivery_lead="mei.chen",
        operational_owner="aisha.bello",
        decision_changed="Which purchase orders an approver looks at twice before approving.",
        security_model=(
            "Approvers see flags on orders in their approval chain only; the rules and model "
            "thresholds are changed by finance controls, with four-eyes approval."
        ),
        logging_evidence=f"{LOGS}/finance/po-anomalies",
        narrow_audience="Indirect procurement, DACH region",
        metric=MetricSpec(
            "Anomalous purchase orders caught before payment", "%", HIGHER, "90", "64"
        ),
        history=(
            Step(
                T.APPROVE_FRAME,
                "marcus.holt",
                182,
                "Audit found 0.4% duplicate spend last year; the framing addresses it directly.",
            ),
            Step(
                T.SUBMIT_FOR_REVIEW,
                "aisha.bello",
                96,
                "Catching 91% of seeded anomalies on live orders in DACH indirect spend.",
            ),
            Step(
                T.FAIL_REVIEW,
                "manager",
                81,
                "Cost per transaction was never measured and no operational owner was named. "
                "Both raised as pre-launch work items.",
            ),
            Step(
                T.SUBMIT_FOR_REVIEW,
                "aisha.bello",
                8,
                "Both work items closed: 0.3 cents per order, and I run it in production.",
            ),
        ),
    ),
    InitiativeSpec(
        title="Agent knowledge search",
        unit="customer-service",
        summary=(
            "Lets contact-centre agents ask the knowledge base in plain language during a "
            "call and get the answer with the article it came from."
        ),
        sponsor="executive",
        business_owner="tomas.garcia",
        delivery_lead="owner",
        decision_changed="How agents find the answer while the customer waits on the line.",
        security_model=(
            "Indexes published knowledge articles only; agents sign in with their contact-"
            "centre identity and searches are logged without customer data."
        ),
        logging_evidence=f"{LOGS}/contact-centre/knowledge-search",
        metric=MetricSpec("Average handle time", "seconds", LOWER, "380", "455"),
        history=(
            Step(
                T.APPROVE_FRAME,
                "manager",
                97,
                "Handle time is the contact centre's headline number; owner and target agreed.",
            ),
            Step(
                T.SUBMIT_FOR_REVIEW,
                "tomas.garcia",
                21,
                "Two teams on the live knowledge base for five weeks: 371 seconds average.",
            ),
        ),
    ),
    # Narrow launch -------------------------------------------------------------------------
    InitiativeSpec(
        title="Contact-centre call summarisation",
        unit="customer-service",
        summary=(
            "Transcribes each call and writes the after-call summary and disposition code "
            "into the CRM for the agent to check."
        ),
        sponsor="executive",
        business_owner="tomas.garcia",
        delivery_lead="mei.chen",
        operational_owner="owner",
        decision_changed="What the agent does in the after-call work: check, not write.",
        security_model=(
            "Call audio and transcripts stay in the contact-centre platform; card numbers are "
            "redacted before transcription; agents edit only their own summaries."
        ),
        logging_evidence=f"{LOGS}/contact-centre/call-summaries",
        narrow_audience="Motor claims line, Leeds contact centre (42 agents)",
        metric=MetricSpec("After-call work time", "seconds", LOWER, "45", "130"),
        history=(
            Step(
                T.APPROVE_FRAME,
                "executive",
                212,
                "After-call work is 20% of agent time; a clear number to move.",
            ),
            Step(
                T.SUBMIT_FOR_REVIEW,
                "tomas.garcia",
                121,
                "Live on one team for six weeks: after-call work down to 41 seconds.",
            ),
            Step(
                T.PASS_REVIEW,
                "manager",
                76,
                "All checklist items evidenced; cost 2.1 cents per call at 90,000 calls a month.",
            ),
        ),
    ),
    InitiativeSpec(
        title="Motor damage photo estimate",
        unit="claims",
        summary=(
            "Estimates repair cost from the customer's damage photos and authorises simple "
            "repairs at approved body shops without an assessor visit."
        ),
        sponsor="priya.raman",
        business_owner="priya.raman",
        delivery_lead="mei.chen",
        operational_owner="jonas.berg",
        decision_changed="Whether a motor claim needs an assessor visit before repair.",
        security_model=(
            "Photos are stored with the claim; the estimate is advisory above EUR 3,000 and "
            "an assessor signs off. Only claims technical can change the limit."
        ),
        logging_evidence=f"{LOGS}/claims/photo-estimate",
        narrow_audience="Approved body-shop network, Netherlands",
        metric=MetricSpec(
            "Days from first notice to repair authorisation", "days", LOWER, "2", "6.5"
        ),
        history=(
            Step(
                T.APPROVE_FRAME,
                "priya.raman",
                243,
                "Assessor capacity is our constraint; the metric is the customer's wait.",
            ),
            Step(
                T.SUBMIT_FOR_REVIEW,
                "mei.chen",
                152,
                "Live on Dutch claims for seven weeks: 1.8 days to authorisation.",
            ),
            Step(
                T.FAIL_REVIEW,
                "manager",
                129,
                "Failure behaviour unclear: what happens when the photo service is down was "
                "not defined, and no alert exists on estimate drift. Work items raised.",
            ),
            Step(
                T.SUBMIT_FOR_REVIEW,
                "mei.chen",
                71,
                "Fallback to assessor booking tested; drift alert live. Resubmitting.",
            ),
            Step(
                T.PASS_REVIEW,
                "manager",
                31,
                "Every item checked with evidence this time. Narrow launch in the Netherlands; "
                "the drift-alert runbook from the first review is still open pre-launch work "
                "and must be closed before widening.",
            ),
        ),
    ),
    InitiativeSpec(
        title="Cash application remittance matching",
        unit="finance-operations",
        summary=(
            "Reads remittance advices from email and PDF and applies incoming payments to "
            "open invoices in the receivables ledger."
        ),
        sponsor="marcus.holt",
        business_owner="aisha.bello",
        delivery_lead="jonas.berg",
        operational_owner="aisha.bello",
        decision_changed="Which incoming payments a cash-application clerk applies by hand.",
        security_model=(
            "Runs under the receivables service account with posting rights limited to cash "
            "application; clerks approve every write-off suggestion."
        ),
        logging_evidence=f"{LOGS}/finance/cash-application",
        narrow_audience="UK receivables team, top 200 customers",
        metric=MetricSpec("Remittances auto-applied", "%", HIGHER, "80", "55"),
        history=(
            Step(
                T.APPROVE_FRAME,
                "marcus.holt",
                188,
                "Days sales outstanding suffers from unapplied cash; a measured target.",
            ),
            Step(
                T.SUBMIT_FOR_REVIEW,
                "aisha.bello",
                101,
                "Live for the top 50 customers: 83% applied automatically.",
            ),
            Step(
                T.PASS_REVIEW,
                "manager",
                19,
                "Checklist complete; running cost well under the clerk hours saved.",
            ),
        ),
    ),
    InitiativeSpec(
        title="Inbound shipment ETA prediction",
        unit="supply-chain",
        summary=(
            "Predicts arrival times of inbound containers from carrier events and port "
            "congestion, so depots plan receiving slots."
        ),
        sponsor="elena.petrova",
        business_owner="lukas.weber",
        delivery_lead="mei.chen",
        operational_owner="lukas.weber",
        decision_changed="How depots book receiving slots and labour for the next 48 hours.",
        security_model=(
            "Carrier data is commercial-in-confidence; depots see only shipments addressed "
            "to them. No personal data involved."
        ),
        logging_evidence=f"{LOGS}/supply-chain/eta",
        narrow_audience="Antwerp depot, ocean freight from Asia",
        metric=MetricSpec("ETA error 48 hours out", "hours", LOWER, "6", "14"),
        history=(
            Step(
                T.APPROVE_FRAME,
                "elena.petrova",
                158,
                "Receiving overtime is driven by late ETAs; the target is the depots' ask.",
            ),
            Step(
                T.SUBMIT_FOR_REVIEW,
                "lukas.weber",
                58,
                "Live carrier feed for nine weeks; ETA error 5.1 hours at 48 hours out.",
            ),
            Step(
                T.PASS_REVIEW,
                "manager",
                6,
                "All items checked; the depot manager is the operational owner.",
            ),
        ),
    ),
    InitiativeSpec(
        title="Sanctions screening alert triage",
        unit="risk-compliance",
        summary=(
            "Ranks sanctions-screening alerts by how likely they are to be a true match and "
            "pre-fills the disposition rationale for the analyst."
        ),
        sponsor="executive",
        business_owner="daniel.okoro",
        delivery_lead="jonas.berg",
        operational_owner="daniel.okoro",
        decision_changed="The order analysts work the alert queue in; no alert is auto-closed.",
        security_model=(
            "Analysts keep every decision; the model only orders the queue. Access is limited "
            "to the financial-crime team and every ranking is retained for audit."
        ),
        logging_evidence=f"{LOGS}/risk/sanctions-triage",
        narrow_audience="Payments screening team, Dublin",
        metric=MetricSpec(
            "Alerts closed per analyst-hour", "alerts", HIGHER, "12", "7", window_days=28
        ),
        history=(
            Step(
                T.APPROVE_FRAME,
                "executive",
                231,
                "Alert backlog is a regulatory finding; the approach keeps analysts deciding.",
            ),
            Step(
                T.SUBMIT_FOR_REVIEW,
                "daniel.okoro",
                133,
                "Live on payment alerts for ten weeks: 12.8 alerts per analyst-hour.",
            ),
            Step(
                T.PASS_REVIEW,
                "manager",
                52,
                "Checklist complete; model risk management signed off the validation.",
            ),
        ),
    ),
    # Wide launch ---------------------------------------------------------------------------
    InitiativeSpec(
        title="Claims document classification",
        unit="claims",
        summary=(
            "Classifies every incoming claims document (invoices, police reports, medical "
            "notes) and files it against the right claim."
        ),
        sponsor="priya.raman",
        business_owner="priya.raman",
        delivery_lead="mei.chen",
        operational_owner="jonas.berg",
        decision_changed="Who indexes incoming documents: the model, with people on exceptions.",
        security_model=(
            "Documents never leave the claims platform; medical notes are visible only to "
            "bodily-injury handlers, as before."
        ),
        logging_evidence=f"{LOGS}/claims/document-classification",
        narrow_audience="Motor claims, Netherlands",
        metric=MetricSpec("Documents indexed without manual touch", "%", HIGHER, "90", "40"),
        history=(
            Step(T.APPROVE_FRAME, "priya.raman", 425, "Indexing backlog is 6 days. Approved."),
            Step(
                T.SUBMIT_FOR_REVIEW,
                "mei.chen",
                331,
                "Live mailroom feed for eight weeks: 93% indexed without a touch.",
            ),
            Step(T.PASS_REVIEW, "manager", 292, "All items checked; mailroom lead operates it."),
            Step(
                T.WIDEN,
                "priya.raman",
                243,
                "Pilot 94% against 41% on the baseline teams over 28 days. Widen to all lines.",
            ),
        ),
    ),
    InitiativeSpec(
        title="Invoice data capture",
        unit="finance-operations",
        summary=(
            "Extracts header and line data from supplier invoices in any layout, replacing "
            "the template-based OCR."
        ),
        sponsor="marcus.holt",
        business_owner="aisha.bello",
        delivery_lead="jonas.berg",
        operational_owner="aisha.bello",
        decision_changed="Whether an invoice is keyed by hand or captured automatically.",
        security_model=(
            "Invoices stay in the AP archive; bank details are validated against the vendor "
            "master and never taken from the invoice alone."
        ),
        logging_evidence=f"{LOGS}/finance/invoice-capture",
        narrow_audience="Benelux AP shared-service team",
        metric=MetricSpec("Invoice fields captured correctly", "%", HIGHER, "97", "92"),
        history=(
            Step(
                T.APPROVE_FRAME,
                "marcus.holt",
                384,
                "Keying cost is known to the cent. Approved.",
            ),
            Step(
                T.SUBMIT_FOR_REVIEW,
                "aisha.bello",
                301,
                "Live on Benelux invoices: 97.6% of fields correct.",
            ),
            Step(T.PASS_REVIEW, "manager", 255, "Checklist complete."),
            Step(
                T.WIDEN,
                "executive",
                204,
                "Pilot beat manual keying over 30 days with a clear margin. Widening by region.",
            ),
        ),
    ),
    InitiativeSpec(
        title="Order status chat assistant",
        unit="customer-service",
        summary=(
            "Answers 'where is my order' and delivery questions in web chat from the order "
            "and carrier systems, handing over to an agent with context."
        ),
        sponsor="executive",
        business_owner="tomas.garcia",
        delivery_lead="jonas.berg",
        operational_owner="tomas.garcia",
        decision_changed="Whether an order-status question needs an agent at all.",
        security_model=(
            "Customers see only their own orders after signing in; the assistant cannot "
            "change an order, only read it."
        ),
        logging_evidence=f"{LOGS}/contact-centre/order-chat",
        narrow_audience="Web chat, Germany",
        metric=MetricSpec("Chats resolved without an agent", "%", HIGHER, "55", "20"),
        history=(
            Step(T.APPROVE_FRAME, "executive", 362, "Top contact reason by volume. Approved."),
            Step(
                T.SUBMIT_FOR_REVIEW,
                "tomas.garcia",
                281,
                "Live on German web chat: 58% resolved without an agent.",
            ),
            Step(
                T.FAIL_REVIEW,
                "manager",
                262,
                "Hand-over to an agent loses the chat history; fallback item unchecked.",
            ),
            Step(
                T.SUBMIT_FOR_REVIEW,
                "tomas.garcia",
                231,
                "Hand-over now carries the transcript; tested with the chat team.",
            ),
            Step(T.PASS_REVIEW, "manager", 199, "All six items checked with evidence."),
            Step(
                T.WIDEN,
                "executive",
                158,
                "Pilot 57% against a 21% baseline over 14 days; no open work items. Widening.",
            ),
        ),
    ),
    InitiativeSpec(
        title="Contact-centre staffing forecast",
        unit="customer-service",
        summary=(
            "Forecasts contact volumes in 30-minute intervals per skill so workforce planners "
            "roster the right number of agents."
        ),
        sponsor="elena.petrova",
        business_owner="tomas.garcia",
        delivery_lead="mei.chen",
        operational_owner="tomas.garcia",
        decision_changed="The weekly roster and intraday overtime offers.",
        security_model="Aggregated volumes only; no customer or agent personal data.",
        logging_evidence=f"{LOGS}/contact-centre/staffing-forecast",
        narrow_audience="Motor claims skill group",
        metric=MetricSpec("Interval forecast error", "%", LOWER, "8", "14", window_days=28),
        history=(
            Step(T.APPROVE_FRAME, "manager", 402, "Overstaffing costs are measured. Approved."),
            Step(
                T.SUBMIT_FOR_REVIEW,
                "mei.chen",
                318,
                "Live telephony feed; interval error 7.4% over six weeks.",
            ),
            Step(T.PASS_REVIEW, "manager", 276, "Checklist complete; WFM team operates it."),
            Step(
                T.WIDEN,
                "elena.petrova",
                221,
                "Pilot skill group beat the spreadsheet forecast over 28 days. All skills next.",
            ),
        ),
    ),
    InitiativeSpec(
        title="Transaction monitoring alert prioritisation",
        unit="risk-compliance",
        summary=(
            "Scores anti-money-laundering alerts so investigators work the riskiest first; "
            "every alert is still reviewed."
        ),
        sponsor="executive",
        business_owner="daniel.okoro",
        delivery_lead="mei.chen",
        operational_owner="daniel.okoro",
        decision_changed="The order of the AML investigation queue.",
        security_model=(
            "Financial-crime team only; the scoring model is validated yearly by model risk "
            "and every score is retained for seven years."
        ),
        logging_evidence=f"{LOGS}/risk/aml-prioritisation",
        narrow_audience="Retail banking alerts, Ireland",
        metric=MetricSpec("High-risk alerts reviewed within 24 h", "%", HIGHER, "95", "72"),
        history=(
            Step(T.APPROVE_FRAME, "executive", 455, "Regulator expects faster review. Approved."),
            Step(
                T.SUBMIT_FOR_REVIEW,
                "daniel.okoro",
                352,
                "Live on Irish retail alerts: 96% of high-risk alerts reviewed within 24 h.",
            ),
            Step(T.PASS_REVIEW, "manager", 301, "Checklist complete; model risk signed off."),
            Step(
                T.WIDEN,
                "executive",
                262,
                "Pilot at 96% against 73% on the baseline queue over 14 days. Widening.",
            ),
        ),
    ),
    # Stopped -------------------------------------------------------------------------------
    InitiativeSpec(
        title="Generative claims correspondence",
        unit="claims",
        summary=("Drafts claim decision letters in plain language for handlers to edit and send."),
        sponsor="priya.raman",
        business_owner="priya.raman",
        delivery_lead="mei.chen",
        operational_owner="jonas.berg",
        decision_changed="How handlers write decision letters: editing a draft, not a blank page.",
        security_model="Drafts stay in the correspondence system; handlers send every letter.",
        logging_evidence=f"{LOGS}/claims/correspondence",
        narrow_audience="Home claims, UK",
        metric=MetricSpec("Complaints per 1,000 letters", "per 1,000 letters", LOWER, "1.5", "1.9"),
        history=(
            Step(T.APPROVE_FRAME, "priya.raman", 301, "Letter complaints are tracked. Approved."),
            Step(
                T.SUBMIT_FOR_REVIEW,
                "mei.chen",
                219,
                "Thin slice on UK home claims: handlers save 6 minutes a letter.",
            ),
            Step(T.PASS_REVIEW, "manager", 183, "Checklist complete."),
            Step(
                T.STOP,
                "executive",
                118,
                "After 65 days the pilot's complaint rate was 2.1 per 1,000 letters against "
                "1.9 on the baseline teams: the time saved does not justify worse letters.",
                StopReason.THRESHOLD_NOT_MET,
            ),
        ),
    ),
    InitiativeSpec(
        title="Voice bot for first notice of loss",
        unit="customer-service",
        summary="Takes the first notice of loss over the phone out of hours.",
        sponsor="executive",
        business_owner="tomas.garcia",
        delivery_lead="jonas.berg",
        decision_changed="Whether out-of-hours callers reach a person or the voice bot.",
        security_model="Calls recorded as today; the bot writes only to the draft-claim queue.",
        logging_evidence=f"{LOGS}/contact-centre/voice-fnol",
        metric=MetricSpec("Calls completed without an agent", "%", HIGHER, "40"),
        history=(
            Step(T.APPROVE_FRAME, "executive", 262, "Out-of-hours cover is costly. Approved."),
            Step(
                T.SUBMIT_FOR_REVIEW,
                "tomas.garcia",
                171,
                "Thin slice completes 44% of out-of-hours calls without an agent.",
            ),
            Step(
                T.STOP,
                "manager",
                148,
                "Cost per call is EUR 1.90 at 40,000 calls a month: EUR 76,000 a month against "
                "EUR 31,000 of agent time saved. Not worth running at today's prices.",
                StopReason.RUNNING_COST_TOO_HIGH,
            ),
        ),
    ),
    InitiativeSpec(
        title="Supplier email triage",
        unit="supply-chain",
        summary="Sorts supplier emails into order confirmations, delays and queries.",
        sponsor="elena.petrova",
        business_owner="lukas.weber",
        delivery_lead="jonas.berg",
        decision_changed="Which supplier emails a buyer reads first.",
        security_model="Runs on the procurement shared mailbox only.",
        logging_evidence=f"{LOGS}/supply-chain/supplier-email",
        metric=MetricSpec(
            "Supplier emails answered within one working day", "%", HIGHER, "90", "68"
        ),
        history=(
            Step(T.APPROVE_FRAME, "elena.petrova", 205, "Buyers drown in email. Approved."),
            Step(
                T.STOP,
                "manager",
                139,
                "The supplier portal in the new ERP release captures confirmations and delays "
                "as structured data, which removes most of these emails.",
                StopReason.SUPERSEDED,
            ),
        ),
    ),
    InitiativeSpec(
        title="CV shortlisting assistant",
        unit="hr",
        summary="Ranks applicants for high-volume roles against the job requirements.",
        sponsor="elena.petrova",
        business_owner="sofia.rossi",
        delivery_lead="mei.chen",
        decision_changed="Which applicants recruiters screen first for high-volume roles.",
        security_model="Applicant data in the recruiting system only; recruiters decide.",
        metric=MetricSpec("Time to shortlist", "days", LOWER, "3", "9"),
        history=(
            Step(T.APPROVE_FRAME, "executive", 184, "Time to hire is too long. Approved."),
            Step(
                T.STOP,
                "elena.petrova",
                151,
                "The group AI policy now treats automated ranking of applicants as high-risk; "
                "we will not use AI to rank people for hiring. Stopped by HR leadership.",
                StopReason.STRATEGY_CHANGED,
            ),
        ),
    ),
    InitiativeSpec(
        title="Broker query assistant",
        unit="customer-service",
        summary="Answers brokers' questions about policy wordings and endorsements.",
        sponsor="executive",
        delivery_lead="jonas.berg",
        decision_changed="Whether a broker's wording question goes to an underwriter.",
        history=(
            Step(
                T.STOP,
                "manager",
                58,
                "No one in the broker channel would own the outcome after six weeks of asking; "
                "without a business owner this would become another orphaned pilot.",
                StopReason.NO_BUSINESS_OWNER,
            ),
        ),
    ),
]
