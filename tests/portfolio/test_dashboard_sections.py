"""The dashboard's sections are cached apart, each under the versions of what it reads: every
section follows its data at once (the metric status within the recompute debounce), and a
change recomputes only the sections that read it."""

from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from gates.services import decide, import_history
from gates.stages import Stage, StopReason
from gates.stages import Transition as T
from metrics.models import Verdict
from pages import dashboard as dashboard_module
from pages import purgatory, versions
from pages.models import Change, Source
from portfolio.models import FlagKind, PurgatoryFlag, StageLimit
from portfolio.roles import Role
from tests.factories import BusinessUnitFactory, MetricSnapshotFactory, UserFactory
from tests.helpers import criteria_passing
from tests.portfolio.test_dashboard import dashboard, funnel, in_stage, kpi, with_primary

pytestmark = pytest.mark.django_db


def status_rows(response) -> list[tuple[str, str, str]]:
    return [
        (row["initiative"].title, row["snapshot"].verdict, row["value"])
        for row in response.context["verdicts"]["rows"]
    ]


def verdict_count(response, verdict: str) -> int:
    [found] = [c for c in response.context["verdicts"]["counts"] if c["verdict"] == verdict]
    return found["count"]


# Served from the cache, and recomputed where the data changed ---------------------------------
def test_an_unchanged_dashboard_is_one_query_and_no_section_computed(
    client, executive, manager, computed
):
    launched = in_stage(Stage.NARROW_LAUNCH, user=manager, title="Launched")
    with_primary(launched, verdict=Verdict.MEETING, pilot=90)
    dashboard(client, executive)
    assert set(computed) == set(dashboard_module.SECTIONS)
    computed.clear()

    with CaptureQueriesContext(connection) as queries:
        response = dashboard(client, executive)

    assert computed == {}
    figures = [q["sql"] for q in queries.captured_queries if "pages_change" in q["sql"]]
    assert len(figures) == 1  # the versions of every source, in one query
    assert funnel(response)[Stage.NARROW_LAUNCH] == 1


def test_a_change_recomputes_only_the_sections_that_read_it(
    client, executive, manager, computed, settings
):
    settings.GANTRY_RECOMPUTE_DEBOUNCE_SECONDS = 0
    owner = UserFactory(first_name="Ada", last_name="Lovelace", role=Role.OWNER)
    launched = in_stage(Stage.NARROW_LAUNCH, user=manager, business_owner=owner)
    with_primary(launched, verdict=Verdict.MEETING, pilot=90)
    dashboard(client, executive)

    def after(change) -> set[str]:
        computed.clear()
        change()
        dashboard(client, executive)
        return set(computed)

    metric = launched.metrics.get(is_primary=True)
    assert after(lambda: MetricSnapshotFactory(metric=metric, latest=True)) == {"status", "value"}
    assert after(lambda: owner.save()) == {"flags", "decisions", "filters"}
    assert after(lambda: versions.changed(Source.FLAGS)) == {"flags", "status"}
    assert after(
        lambda: StageLimit.objects.update_or_create(stage=Stage.FRAME, defaults={"days": 12})
    ) == {"portfolio"}
    assert after(lambda: None) == set()


# Each section follows its data -------------------------------------------------------------
def test_a_flag_the_job_rewords_shows_its_new_reason_at_once(client, executive, manager):
    stuck = in_stage(Stage.THIN_SLICE, user=manager, days_ago=100, title="Stuck")
    purgatory.sync_flags()
    flag = PurgatoryFlag.objects.get(initiative=stuck, kind=FlagKind.STUCK)
    body = dashboard(client, executive).content.decode()
    assert "100 days in thin slice; the limit is 90." in body

    # A day later the job rewords the same flag: same row, same id, a new reason.
    assert purgatory.sync_flags(now=timezone.now() + timedelta(days=1))["updated"] >= 1
    reworded = PurgatoryFlag.objects.get(initiative=stuck, kind=FlagKind.STUCK)
    assert reworded.pk == flag.pk and reworded.reason != flag.reason

    body = dashboard(client, executive).content.decode()
    assert "101 days in thin slice; the limit is 90." in body
    assert "100 days in thin slice; the limit is 90." not in body


def test_a_flag_raised_or_cleared_by_the_job_shows_at_once(client, executive, manager):
    stuck = in_stage(Stage.THIN_SLICE, user=manager, days_ago=100, title="Stuck")
    response = dashboard(client, executive)
    assert response.context["flagged_count"] == 0

    purgatory.sync_flags()
    response = dashboard(client, executive)
    assert [i.title for i in response.context["flagged"]] == ["Stuck"]
    assert FlagKind.STUCK in {f.kind for f in response.context["flagged"][0].active_flags}
    assert kpi(response, "stuck")["count"] == 1

    StageLimit.objects.update_or_create(stage=Stage.THIN_SLICE, defaults={"days": 365})
    purgatory.sync_flags()
    response = dashboard(client, executive)
    assert kpi(response, "stuck")["count"] == 0
    [shown] = response.context["flagged"]  # still borrowing its data: no live feed
    assert [f.kind for f in shown.active_flags] == [FlagKind.BORROWED_DATA]
    assert stuck.flags.get(kind=FlagKind.STUCK).cleared_at is not None


def test_a_verdict_change_shows_once_recomputed(client, executive, manager, settings):
    settings.GANTRY_RECOMPUTE_DEBOUNCE_SECONDS = 0
    launched = in_stage(Stage.NARROW_LAUNCH, user=manager, title="Launched")
    with_primary(launched, verdict=Verdict.MEETING, pilot=90)
    response = dashboard(client, executive)
    assert verdict_count(response, Verdict.MEETING) == 1
    assert status_rows(response) == [("Launched", Verdict.MEETING, "90.0 %")]

    # As metrics.status.recompute writes it: a new snapshot, pointed at by a queryset update.
    metric = launched.metrics.get(is_primary=True)
    MetricSnapshotFactory(metric=metric, verdict=Verdict.BELOW, pilot_value=70, latest=True)

    response = dashboard(client, executive)
    assert verdict_count(response, Verdict.MEETING) == 0
    assert verdict_count(response, Verdict.BELOW) == 1
    assert status_rows(response) == [("Launched", Verdict.BELOW, "70.0 %")]
    assert kpi(response, "of 1 launched")["count"] == 0


def test_the_status_lags_a_new_snapshot_by_at_most_the_recompute_debounce(
    client, executive, manager, settings, monkeypatch
):
    settings.GANTRY_RECOMPUTE_DEBOUNCE_SECONDS = 10
    launched = in_stage(Stage.NARROW_LAUNCH, user=manager, title="Launched")
    with_primary(launched, verdict=Verdict.MEETING, pilot=90)
    first = dashboard(client, executive)
    metric = launched.metrics.get(is_primary=True)
    MetricSnapshotFactory(metric=metric, verdict=Verdict.BELOW, pilot_value=70, latest=True)

    # Within the debounce of the status computed before it, the new snapshot may wait...
    within = dashboard(client, executive)
    assert verdict_count(within, Verdict.MEETING) == 1
    assert within.context["as_of"] == first.context["as_of"]

    # ...and not a moment longer.
    later = first.context["as_of"] + timedelta(seconds=11)
    monkeypatch.setattr(timezone, "now", lambda: later)
    after = dashboard(client, executive)
    assert verdict_count(after, Verdict.BELOW) == 1


@pytest.fixture
def asked(monkeypatch):
    """Celery not eager, and the refreshes the dashboard asks a worker for, recorded instead
    of sent: [(unit id, sponsor id)]."""
    from django.core.cache import cache

    from gantry.celery import app

    changes = app.conf.changes
    had, before = "task_always_eager" in changes, changes.get("task_always_eager")
    app.conf.task_always_eager = False
    cache.clear()
    sent = []
    monkeypatch.setattr(
        "pages.dashboard.publish.send", lambda task, *, args=(), countdown=0: sent.append(args)
    )
    yield sent
    cache.clear()
    if had:
        changes["task_always_eager"] = before
    else:
        changes.pop("task_always_eager", None)


def test_a_worker_refreshes_a_lagging_status_so_requests_need_not(
    client, executive, manager, settings, monkeypatch, asked, computed
):
    from pages import tasks

    settings.GANTRY_RECOMPUTE_DEBOUNCE_SECONDS = 10
    launched = in_stage(Stage.NARROW_LAUNCH, user=manager, title="Launched")
    with_primary(launched, verdict=Verdict.MEETING, pilot=90)
    first = dashboard(client, executive)
    start = first.context["as_of"]
    metric = launched.metrics.get(is_primary=True)
    MetricSnapshotFactory(metric=metric, verdict=Verdict.BELOW, pilot_value=70, latest=True)
    computed.clear()

    # Before half the debounce nobody is asked; past it the cached status is still served,
    # and a worker is asked, once however many requests come.
    monkeypatch.setattr(timezone, "now", lambda: start + timedelta(seconds=4))
    dashboard(client, executive)
    assert asked == []
    monkeypatch.setattr(timezone, "now", lambda: start + timedelta(seconds=6))
    served = dashboard(client, executive)
    dashboard(client, executive)
    assert verdict_count(served, Verdict.MEETING) == 1
    assert computed == {}
    assert asked == [[None, None]]

    # The worker computes the lagging sections; the next request shows the new verdict
    # without computing anything itself.
    assert set(tasks.refresh_dashboard(*asked[0])) == {"status", "value"}
    computed.clear()
    after = dashboard(client, executive)
    assert verdict_count(after, Verdict.BELOW) == 1
    assert status_rows(after) == [("Launched", Verdict.BELOW, "70.0 %")]
    assert computed == {}


def test_without_a_worker_the_request_computes_the_status_at_the_debounce(
    client, executive, manager, settings, monkeypatch, asked, computed
):
    settings.GANTRY_RECOMPUTE_DEBOUNCE_SECONDS = 10
    launched = in_stage(Stage.NARROW_LAUNCH, user=manager, title="Launched")
    with_primary(launched, verdict=Verdict.MEETING, pilot=90)
    start = dashboard(client, executive).context["as_of"]
    metric = launched.metrics.get(is_primary=True)
    MetricSnapshotFactory(metric=metric, verdict=Verdict.BELOW, pilot_value=70, latest=True)
    monkeypatch.setattr(timezone, "now", lambda: start + timedelta(seconds=6))
    dashboard(client, executive)
    assert len(asked) == 1
    computed.clear()

    # The refresh never came (the worker is down, or the message lost).
    monkeypatch.setattr(timezone, "now", lambda: start + timedelta(seconds=11))
    after = dashboard(client, executive)

    assert verdict_count(after, Verdict.BELOW) == 1
    assert computed["status"] == 1


def test_each_scope_asks_for_its_own_refresh(
    client, executive, manager, settings, monkeypatch, asked
):
    settings.GANTRY_RECOMPUTE_DEBOUNCE_SECONDS = 10
    unit = BusinessUnitFactory(name="Claims", slug="claims")
    launched = in_stage(Stage.NARROW_LAUNCH, user=manager, title="Launched", business_unit=unit)
    with_primary(launched, verdict=Verdict.MEETING, pilot=90)
    start = dashboard(client, executive).context["as_of"]
    dashboard(client, executive, "unit=claims")
    metric = launched.metrics.get(is_primary=True)
    MetricSnapshotFactory(metric=metric, verdict=Verdict.BELOW, pilot_value=70, latest=True)
    monkeypatch.setattr(timezone, "now", lambda: start + timedelta(seconds=6))

    dashboard(client, executive)
    dashboard(client, executive, "unit=claims")

    assert asked == [[None, None], [unit.pk, None]]


def test_a_refresh_for_a_scope_that_went_away_does_nothing(manager):
    from pages import tasks

    assert tasks.refresh_dashboard(987654, None) == []
    assert tasks.refresh_dashboard(None, 987654) == []


def test_a_snapshot_changes_nothing_else_than_the_status(client, executive, manager, settings):
    """Data flowing (a new snapshot every few seconds) leaves the other sections cached:
    their figures keep the moment they were computed."""
    settings.GANTRY_RECOMPUTE_DEBOUNCE_SECONDS = 0
    launched = in_stage(Stage.NARROW_LAUNCH, user=manager)
    with_primary(launched, verdict=Verdict.MEETING, pilot=90)
    first = dashboard(client, executive)
    metric = launched.metrics.get(is_primary=True)
    MetricSnapshotFactory(metric=metric, verdict=Verdict.BELOW, pilot_value=70, latest=True)

    second = dashboard(client, executive)

    assert second.context["stages"] == first.context["stages"]
    assert second.context["recent_decisions"] == first.context["recent_decisions"]
    assert verdict_count(second, Verdict.BELOW) == 1


def test_a_stage_transition_moves_every_figure_at_once(client, executive, manager):
    initiative = in_stage(Stage.FRAME, user=manager, title="Moving on")
    response = dashboard(client, executive)
    assert funnel(response)[Stage.FRAME] == 1
    assert response.context["conversion"].left_frame == 0

    with criteria_passing():
        decide(initiative=initiative, transition=T.APPROVE_FRAME, user=manager, rationale="Go.")

    response = dashboard(client, executive)
    assert funnel(response)[Stage.FRAME] == 0
    assert funnel(response)[Stage.THIN_SLICE] == 1
    assert response.context["conversion"].left_frame == 1
    in_stage_counts = {t["stage"]: t["count"] for t in response.context["time_in_stage"]}
    assert in_stage_counts[Stage.THIN_SLICE] == 1
    newest = response.context["recent_decisions"][0]
    assert (newest.initiative.title, newest.transition) == ("Moving on", T.APPROVE_FRAME)
    decided = {c["key"]: c["count"] for c in response.context["recent_changes"]}["decided"]
    assert decided == 1


def test_a_new_decision_imported_with_its_history_shows_at_once(client, executive, manager):
    """`import_history` moves the stage by a queryset update (no model signal): the new gate
    decisions carry the change."""
    initiative = in_stage(Stage.THIN_SLICE, user=manager, title="Imported")
    response = dashboard(client, executive)
    assert response.context["stopped"] == []

    import_history(
        initiative=initiative,
        decisions=[
            {
                "transition": T.STOP,
                "user": manager,
                "rationale": "Superseded by the group's platform.",
                "decided_at": timezone.now() - timedelta(minutes=5),
                "stop_reason": StopReason.SUPERSEDED,
            }
        ],
    )

    response = dashboard(client, executive)
    assert funnel(response)[Stage.STOPPED] == 1
    assert [(r["reason"], r["count"]) for r in response.context["stopped"]] == [
        (StopReason.SUPERSEDED, 1)
    ]
    assert response.context["recent_decisions"][0].transition == T.STOP


def test_renaming_a_person_renames_them_wherever_the_dashboard_names_them(
    client, executive, manager
):
    owner = UserFactory(first_name="Olu", last_name="Adeyemi", role=Role.OWNER)
    sponsor = UserFactory(first_name="Priya", last_name="Raman", role=Role.EXECUTIVE)
    in_stage(Stage.THIN_SLICE, user=manager, days_ago=100, business_owner=owner, sponsor=sponsor)
    purgatory.sync_flags()
    body = dashboard(client, executive).content.decode()
    assert "Business owner: Olu Adeyemi" in body
    assert f"{manager} · " in body  # who took the recent decisions

    owner.last_name = "Adeyemi-Okafor"
    owner.save()
    sponsor.first_name = "Priyanka"
    sponsor.save()
    manager.first_name, manager.last_name = "Pat", "Morgan"
    manager.save()

    response = dashboard(client, executive)
    body = response.content.decode()
    assert "Business owner: Olu Adeyemi-Okafor" in body
    assert "Sponsor: Priyanka Raman" in body
    assert "Pat Morgan · " in body
    assert (sponsor.pk, "Priyanka Raman") in response.context["sponsors"]


def test_signing_in_changes_no_section(client, executive, manager, computed):
    in_stage(Stage.FRAME, user=manager)
    dashboard(client, executive)
    computed.clear()

    # Through the sign-in form, which sets last_login.
    client.post(
        "/accounts/login/", {"username": manager.username, "password": "correct-horse-battery"}
    )
    dashboard(client, executive)

    assert computed == {}


def test_renaming_a_business_unit_shows_at_once(client, executive, manager):
    unit = BusinessUnitFactory(slug="claims", name="Claims")
    in_stage(Stage.THIN_SLICE, user=manager, days_ago=100, business_unit=unit)
    purgatory.sync_flags()
    response = dashboard(client, executive)
    assert ("claims", "Claims") in response.context["units"]
    assert response.context["flagged"][0].business_unit.name == "Claims"

    unit.name = "Claims operations"
    unit.save()

    response = dashboard(client, executive)
    assert ("claims", "Claims operations") in response.context["units"]
    assert response.context["flagged"][0].business_unit.name == "Claims operations"


def test_a_new_stage_limit_shows_at_once(client, executive, manager):
    in_stage(Stage.FRAME, user=manager)
    response = dashboard(client, executive)
    limits = {t["stage"]: t["limit"] for t in response.context["time_in_stage"]}
    assert limits[Stage.FRAME] == 30

    StageLimit.objects.update_or_create(stage=Stage.FRAME, defaults={"days": 45})

    response = dashboard(client, executive)
    limits = {t["stage"]: t["limit"] for t in response.context["time_in_stage"]}
    assert limits[Stage.FRAME] == 45


def test_a_new_threshold_or_title_shows_at_once(client, executive, manager):
    launched = in_stage(Stage.NARROW_LAUNCH, user=manager, title="Launched")
    with_primary(launched, verdict=Verdict.MEETING, pilot=90, threshold="80")
    response = dashboard(client, executive)
    assert response.context["verdicts"]["rows"][0]["threshold"] == "80.0 %"

    metric = launched.metrics.get(is_primary=True)
    metric.ship_threshold = Decimal("85")
    metric.save()
    launched.refresh_from_db()
    launched.title = "Launched, renamed"
    launched.save()

    response = dashboard(client, executive)
    [row] = response.context["verdicts"]["rows"]
    assert row["threshold"] == "85.0 %"
    assert row["initiative"].title == "Launched, renamed"


def test_each_scope_is_cached_apart(client, executive, manager):
    north, south = BusinessUnitFactory(slug="north"), BusinessUnitFactory(slug="south")
    in_stage(Stage.FRAME, user=manager, business_unit=north)
    in_stage(Stage.THIN_SLICE, user=manager, business_unit=south)
    assert dashboard(client, executive, "unit=north").context["total"] == 1
    assert funnel(dashboard(client, executive, "unit=south"))[Stage.THIN_SLICE] == 1
    assert dashboard(client, executive).context["total"] == 2


# The cache is only speed ---------------------------------------------------------------------
def test_a_cache_that_cannot_store_costs_only_speed(client, executive, manager, monkeypatch):
    in_stage(Stage.THIN_SLICE, user=manager)

    def broken(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr("pages.dashboard.cache.set_many", broken)
    monkeypatch.setattr("pages.dashboard._cache_paused_until", 0.0)

    assert funnel(dashboard(client, executive))[Stage.THIN_SLICE] == 1


# The change log ------------------------------------------------------------------------------
def test_changes_are_recorded_with_the_write_and_pruned_to_the_newest(manager):
    UserFactory()
    versions.changed(Source.FLAGS)
    versions.changed(Source.FLAGS)
    found = versions.current()
    assert found[Source.PEOPLE] > 0 and found[Source.FLAGS] > 0

    versions.prune()

    assert Counter(Change.objects.values_list("source", flat=True)) == {
        source: 1 for source in Change.objects.values_list("source", flat=True).distinct()
    }
    assert versions.current() == found  # the newest of each is the version
