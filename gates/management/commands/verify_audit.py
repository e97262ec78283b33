"""Walk every initiative's audit chain and report the first broken link of each."""

from django.core.management.base import BaseCommand, CommandError

from gates import audit


class Command(BaseCommand):
    help = (
        "Verify the audit trail: every entry's SHA-256 matches its content and its "
        "predecessor, no entry is missing, and every audited row still says what was sealed. "
        "Exits with status 1 when a chain is broken."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--initiative", type=int, action="append", help="Only this initiative's id (repeat)."
        )
        parser.add_argument(
            "--heads",
            action="store_true",
            help="Also print each chain's last entry and hash, to keep outside Gantry: a later "
            "run that finds a shorter chain or another hash shows entries cut off the end.",
        )

    def handle(self, *args, initiative=None, heads=False, **options):
        count, breaks = audit.verify(initiative)
        if heads:
            for initiative_id, seq, digest in audit.heads(initiative):
                self.stdout.write(f"initiative {initiative_id} entry {seq} {digest}")
        for problem in breaks:
            self.stderr.write(f"BROKEN {problem}")
        if breaks:
            raise CommandError(
                f"{len(breaks)} broken chain(s) among {count} entries.", returncode=1
            )
        self.stdout.write(f"{count} audit entries verified; every chain is intact.")
