"""Seal audited rows that predate the audit chain (run once when upgrading)."""

from django.core.management.base import BaseCommand

from gates import audit


class Command(BaseCommand):
    help = (
        "Append to the audit chains every audited row that no entry seals yet, oldest first: "
        "decisions and events recorded before this version of Gantry. Safe to run twice."
    )

    def handle(self, *args, **options):
        count = audit.seal_unsealed()
        self.stdout.write(f"{count} earlier record(s) sealed in the audit chains.")
