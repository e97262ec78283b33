"""Snapshots lose their index on the metric alone: "snapshot_metric_time" (metric, newest
first) serves every look-up by metric, and each full recompute writes 20,000 snapshots."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("metrics", "0016_moments_aggregate"),
    ]

    operations = [
        migrations.AlterField(
            model_name="metricsnapshot",
            name="metric",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="snapshots",
                to="metrics.metric",
            ),
        ),
    ]
