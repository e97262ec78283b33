"""`gantry_moments(float8[])`: combines per-part moments {count, sum, M2} into one (PostgreSQL).

A recompute reads each metric's window in parts (a rollup per whole day, an aggregate of the
raw rows of each partial day) and needs the spread of their union. The aggregate's step and
combine function is PostgreSQL's own `float8_combine`, the one that merges the partial states
of a parallel `variance()`: Chan's pairwise formula, in C, in one pass over the parts, where
plain SQL needs the group's mean first and so a second pass.
"""

from django.db import migrations

CREATE = """
CREATE AGGREGATE gantry_moments(float8[]) (
    SFUNC = float8_combine,
    STYPE = float8[],
    COMBINEFUNC = float8_combine,
    INITCOND = '{0,0,0}',
    PARALLEL = SAFE
)
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP AGGREGATE IF EXISTS gantry_moments(float8[])")


class Migration(migrations.Migration):
    dependencies = [("metrics", "0015_metric_fillfactor")]

    operations = [migrations.RunPython(create, drop)]
