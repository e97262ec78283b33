"""Daily rollups of the observations, kept by the database as rows arrive.

A trigger on the observation table merges each insert into its (metric, cohort, UTC day)
rollups: on PostgreSQL one statement-level trigger per insert or COPY, reading the inserted
rows as a transition table (rows skipped by ON CONFLICT DO NOTHING are not in it); on SQLite a
row-level trigger. Counts and sums add up; the sums of squared deviations merge by Chan's
formula; the last value is the one with the latest (observed_at, id). A value beyond ±1e50 (a
row written before ingestion bounded values) makes its day's sums NULL rather than overflow.
The rollups of the rows already held are built once here.
"""

import django.db.models.deletion
from django.db import migrations, models

BOUND = "1e50"  # metrics.ingest.MAX_ABS_VALUE


def _summary(source: str, day: str) -> str:
    """Per (metric, cohort, day) of `source`: the rollup's columns, in table order."""
    return f"""
        WITH ranked AS (
            SELECT metric_id, cohort, observed_at, id, value, {day} AS day,
                row_number() OVER (
                    PARTITION BY metric_id, cohort, {day} ORDER BY observed_at DESC, id DESC
                ) AS position
            FROM {source}
        )
        SELECT metric_id, cohort, day, count(*),
            CASE WHEN max(abs(value)) <= {BOUND}
                THEN sum(value) FILTER (WHERE abs(value) <= {BOUND}) END,
            CASE WHEN max(abs(value)) <= {BOUND}
                THEN var_pop(value) FILTER (WHERE abs(value) <= {BOUND}) * count(*) END,
            min(value), max(value),
            max(CASE WHEN position = 1 THEN observed_at END),
            max(CASE WHEN position = 1 THEN id END),
            max(CASE WHEN position = 1 THEN value END)
        FROM ranked
        GROUP BY metric_id, cohort, day
    """


COLUMNS = (
    "metric_id, cohort, day, count, total, sum_sq_dev, minimum, maximum, "
    "last_at, last_id, last_value"
)

PG_DAY = "(observed_at AT TIME ZONE 'UTC')::date"

PG_TRIGGER = f"""
CREATE FUNCTION metrics_observation_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO metrics_dailyrollup AS r ({COLUMNS})
    SELECT * FROM ({_summary("inserted", PG_DAY)}) AS batch ORDER BY 1, 2, 3
    ON CONFLICT (metric_id, cohort, day) DO UPDATE SET
        count = r.count + excluded.count,
        total = r.total + excluded.total,
        sum_sq_dev = r.sum_sq_dev + excluded.sum_sq_dev
            + (excluded.total / excluded.count - r.total / r.count) ^ 2
            * r.count * excluded.count / (r.count + excluded.count),
        minimum = least(r.minimum, excluded.minimum),
        maximum = greatest(r.maximum, excluded.maximum),
        last_at = CASE WHEN (excluded.last_at, excluded.last_id) > (r.last_at, r.last_id)
            THEN excluded.last_at ELSE r.last_at END,
        last_id = CASE WHEN (excluded.last_at, excluded.last_id) > (r.last_at, r.last_id)
            THEN excluded.last_id ELSE r.last_id END,
        last_value = CASE WHEN (excluded.last_at, excluded.last_id) > (r.last_at, r.last_id)
            THEN excluded.last_value ELSE r.last_value END;
    RETURN NULL;
END
$$;
CREATE TRIGGER metrics_observation_rollup AFTER INSERT ON metrics_observation
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION metrics_observation_rollup();
"""

# Welford's update, one row at a time; SQLite evaluates every SET against the old row.
_NEWER = "(NEW.observed_at > last_at OR (NEW.observed_at = last_at AND NEW.id > last_id))"
_MEAN = "(total / count)"
SQLITE_TRIGGER = f"""
CREATE TRIGGER metrics_observation_rollup AFTER INSERT ON metrics_observation
BEGIN
    INSERT OR IGNORE INTO metrics_dailyrollup ({COLUMNS}) VALUES (
        NEW.metric_id, NEW.cohort, date(NEW.observed_at), 0, 0.0, 0.0, NEW.value, NEW.value,
        NEW.observed_at, NEW.id, NEW.value
    );
    UPDATE metrics_dailyrollup SET
        count = count + 1,
        total = CASE WHEN abs(NEW.value) <= {BOUND} THEN total + NEW.value END,
        sum_sq_dev = CASE WHEN abs(NEW.value) <= {BOUND} THEN sum_sq_dev + CASE WHEN count = 0
            THEN 0.0
            ELSE (NEW.value - {_MEAN}) * (NEW.value - {_MEAN}) * count / (count + 1) END END,
        minimum = min(minimum, NEW.value),
        maximum = max(maximum, NEW.value),
        last_at = CASE WHEN {_NEWER} THEN NEW.observed_at ELSE last_at END,
        last_id = CASE WHEN {_NEWER} THEN NEW.id ELSE last_id END,
        last_value = CASE WHEN {_NEWER} THEN NEW.value ELSE last_value END
    WHERE metric_id = NEW.metric_id AND cohort = NEW.cohort AND day = date(NEW.observed_at);
END;
"""


def keep_rollups(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    day = PG_DAY if vendor == "postgresql" else "date(observed_at)"
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO metrics_dailyrollup ({COLUMNS}) "
            f"{_summary('metrics_observation', day)}"
        )
        cursor.execute(PG_TRIGGER if vendor == "postgresql" else SQLITE_TRIGGER)


def stop_keeping_rollups(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        if schema_editor.connection.vendor == "postgresql":
            cursor.execute(
                "DROP TRIGGER metrics_observation_rollup ON metrics_observation; "
                "DROP FUNCTION metrics_observation_rollup()"
            )
        else:
            cursor.execute("DROP TRIGGER metrics_observation_rollup")


class Migration(migrations.Migration):

    dependencies = [
        ('metrics', '0011_partition_observations'),
    ]

    operations = [
        migrations.CreateModel(
            name='DailyRollup',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('cohort', models.CharField(choices=[('pilot', 'Pilot'), ('baseline', 'Baseline'), ('production', 'Production')], max_length=12)),
                ('day', models.DateField()),
                ('count', models.BigIntegerField()),
                ('total', models.FloatField(null=True)),
                ('sum_sq_dev', models.FloatField(null=True)),
                ('minimum', models.FloatField()),
                ('maximum', models.FloatField()),
                ('last_at', models.DateTimeField()),
                ('last_id', models.BigIntegerField()),
                ('last_value', models.FloatField()),
                ('metric', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='metrics.metric')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('metric', 'cohort', 'day'), name='rollup_key')],
                'indexes': [models.Index(fields=['day'], name='rollup_day')],
            },
        ),
        migrations.RunPython(keep_rollups, stop_keeping_rollups, elidable=False),
    ]
