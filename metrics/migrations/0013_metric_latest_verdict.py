from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("metrics", "0012_daily_rollups"),
    ]

    operations = [
        migrations.AddField(
            model_name="metric",
            name="latest_verdict",
            field=models.CharField(blank=True, editable=False, max_length=20, null=True),
        ),
        # Every metric already judged takes its latest snapshot's verdict; the same statement
        # on PostgreSQL and SQLite.
        migrations.RunSQL(
            """
            UPDATE metrics_metric SET latest_verdict = (
                SELECT verdict FROM metrics_metricsnapshot AS s
                WHERE s.id = metrics_metric.latest_snapshot_id
            )
            WHERE latest_snapshot_id IS NOT NULL
            """,
            migrations.RunSQL.noop,
        ),
    ]
