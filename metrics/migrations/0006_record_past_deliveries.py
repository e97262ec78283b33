"""Observations stored before deliveries were recorded get their Delivery rows, and each feed
its last fresh data, so that upgrading does not turn every live feed stale."""

from django.db import migrations


def forwards(apps, schema_editor):
    from metrics.backfill import derive_deliveries

    derive_deliveries(
        apps.get_model("metrics", "DataFeed"),
        apps.get_model("metrics", "Observation"),
        apps.get_model("metrics", "Delivery"),
    )


class Migration(migrations.Migration):
    dependencies = [
        ("metrics", "0005_feed_life_cycle_deliveries"),
    ]

    operations = [
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
