"""Version 1 of the readiness checklist: DESIGN.md's six items.

Installed by migration readiness 0002. Never edit it: a changed checklist is a new version,
made in the admin, so that reviews keep the version they started with.
"""

# (key, title, guidance, asks for numbers, system evidence)
VERSION_1 = [
    (
        "data_pipeline",
        "Data pipeline reliability",
        "Show that the pilot's data arrives from the production pipeline on schedule: the feed's "
        "delivery record, how failures are retried, and who is paged when it stops.",
        False,
        "feed_deliveries",
    ),
    (
        "security_access",
        "Security and access controls",
        "Link the access review: who can read and change the data and the model's outputs, how "
        "access is granted and removed, and where personal data is masked.",
        False,
        "",
    ),
    (
        "monitoring_alerting",
        "Monitoring and alerting",
        "Link the dashboard and the alert rules: model quality, latency and error rates, with "
        "thresholds and the on-call rota that receives the alerts.",
        False,
        "",
    ),
    (
        "failure_fallback",
        "Failure and fallback behaviour",
        "Describe what users get when the model is down or unsure, how work falls back to the "
        "existing process, and when this was last tested.",
        False,
        "",
    ),
    (
        "cost_per_transaction",
        "Cost per transaction at expected volume",
        "Give the cost per transaction (inference, infrastructure and human review) and the "
        "expected monthly volume; Gantry computes the monthly running cost.",
        True,
        "monthly_cost",
    ),
    (
        "operational_owner",
        "A named operational owner",
        "Name the person who runs the system in production and answers for it out of hours; "
        "the initiative's operational owner must be set.",
        False,
        "operational_owner",
    ),
]


def install_version_1(template_model, item_model):
    """Create checklist version 1 with the given (historical or current) models."""
    template, created = template_model.objects.get_or_create(
        version=1, defaults={"notes": "The default checklist."}
    )
    if created:
        for position, (key, title, guidance, numbers, evidence) in enumerate(VERSION_1, start=1):
            item_model.objects.create(
                template=template,
                key=key,
                title=title,
                guidance=guidance,
                asks_numbers=numbers,
                system_evidence=evidence,
                position=position,
            )
    return template
