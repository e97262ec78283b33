"""System checks of how the apps are put together.

A gate's criteria come from several apps. A criterion whose app is not installed, or does not
register it when ready, is simply absent, and an absent criterion cannot block its gate. So
`manage.py check` fails while any criterion a gate relies on is missing, and so do
`runserver` and `migrate`, which the web container runs before it starts.
"""

from django.core import checks

from gates.criteria import Registry, registry
from gates.stages import Transition as T

# Every criterion each transition relies on, in the order pages show them.
EXPECTED_CRITERIA: dict[str, tuple[str, ...]] = {
    T.APPROVE_FRAME: (
        "decision_defined",
        "primary_metric_defined",
        "ship_threshold_set",
        "business_owner_named",
        "baseline_recorded",
    ),
    T.SUBMIT_FOR_REVIEW: ("live_feed", "fresh_data", "logging_attested", "security_model"),
    T.PASS_REVIEW: ("checklist_complete", "operational_owner_named", "narrow_audience_defined"),
    T.WIDEN: (
        "window_elapsed",
        "pilot_meets_threshold",
        "pilot_beats_baseline",
        "no_open_work_items",
    ),
    T.ROLL_BACK: ("numbers_no_longer_hold",),
}


@checks.register()
def gate_criteria_registered(
    app_configs=None, *, registry: Registry = registry, **kwargs
) -> list[checks.CheckMessage]:
    """gantry.E001 for each expected criterion missing from `registry` (a parameter so tests
    can pass a registry of their own)."""
    errors = []
    for transition, keys in EXPECTED_CRITERIA.items():
        registered = {criterion.key for criterion in registry.criteria_for(transition)}
        errors.extend(
            checks.Error(
                f"Gate criterion '{key}' of transition '{transition}' is not registered.",
                hint="Install the app that registers it (gates, metrics or readiness) and "
                "make sure its AppConfig.ready() imports its criteria module.",
                id="gantry.E001",
            )
            for key in keys
            if key not in registered
        )
    return errors
