"""Install version 1 of the readiness checklist: DESIGN.md's six items."""

from django.db import migrations

from readiness.defaults import install_version_1


def install(apps, schema_editor):
    install_version_1(
        apps.get_model("readiness", "ChecklistTemplate"),
        apps.get_model("readiness", "ChecklistItemTemplate"),
    )


def uninstall(apps, schema_editor):
    apps.get_model("readiness", "ChecklistTemplate").objects.filter(version=1).delete()


class Migration(migrations.Migration):
    dependencies = [("readiness", "0001_initial")]

    operations = [migrations.RunPython(install, uninstall)]
