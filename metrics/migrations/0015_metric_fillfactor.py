"""Room on each page of metrics_metric for its rows' next versions (PostgreSQL).

Every recompute rewrites each metric's `latest_snapshot` and `latest_verdict`, neither of
them indexed. With free space on the row's page, PostgreSQL writes the new version there
and leaves the table's indexes alone (a heap-only update); on full pages each update also
inserts into every index. ALTER TABLE applies to pages written from now on; VACUUM FULL
would rewrite the old ones, and is left to the operator.
"""

from django.db import migrations

FILLFACTOR = 70


def set_fillfactor(apps, schema_editor, value=FILLFACTOR):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"ALTER TABLE metrics_metric SET (fillfactor = {int(value)})")


def reset_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("ALTER TABLE metrics_metric RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("metrics", "0014_value_model")]

    operations = [migrations.RunPython(set_fillfactor, reset_fillfactor)]
