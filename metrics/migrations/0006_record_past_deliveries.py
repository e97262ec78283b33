"""Observations stored before deliveries were recorded get their Delivery rows, as history:
their source (API or CSV upload) is unknown, so none counts as fresh, and each live feed is
fresh again with its next API delivery (see metrics.backfill)."""

from django.db import migrations


def forwards(apps, schema_editor):
    from metrics.backfill import derive_deliveries

    derive_deliveries(
        apps.get_model("metrics", "DataFeed"),
        apps.get_model("metrics", "Observation"),
        apps.get_model("metrics", "Delivery"),
        from_api=False,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("metrics", "0005_feed_life_cycle_deliveries"),
    ]

    operations = [
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
