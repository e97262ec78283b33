"""Default stage limits (DESIGN.md): frame 30 d, thin slice 90 d, readiness review 30 d,
narrow launch 60 d. Administrators change them in the admin."""

from django.db import migrations

DEFAULTS = {"frame": 30, "thin_slice": 90, "readiness_review": 30, "narrow_launch": 60}


def install(apps, schema_editor):
    StageLimit = apps.get_model("portfolio", "StageLimit")
    for stage, days in DEFAULTS.items():
        StageLimit.objects.get_or_create(stage=stage, defaults={"days": days})


def uninstall(apps, schema_editor):
    apps.get_model("portfolio", "StageLimit").objects.filter(stage__in=DEFAULTS).delete()


class Migration(migrations.Migration):
    dependencies = [("portfolio", "0003_purgatory_flags")]

    operations = [migrations.RunPython(install, uninstall)]
