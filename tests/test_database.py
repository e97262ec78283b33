"""The database connection as Gantry configures it."""

from django.db import connection


def test_postgres_connections_run_without_jit_compilation(require_postgres):
    # Compiling plans cost more than it saved in every benchmark (bench/README.md).
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"


def test_metric_rows_leave_room_for_heap_only_updates(require_postgres):
    # Every recompute rewrites each metric's latest snapshot and verdict (metrics 0015).
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'metrics_metric'")
        assert "fillfactor=70" in cursor.fetchone()[0]
