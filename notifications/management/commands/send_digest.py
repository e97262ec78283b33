"""Send the weekly portfolio digest now: to every digest reader, or to the people named.

    manage.py send_digest
    manage.py send_digest --user ada --user grace

A person who already has this week's digest is not sent a second one.
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from notifications import digest


class Command(BaseCommand):
    help = "Send this week's portfolio digest now (to every reader, or to --user NAME)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--user",
            action="append",
            dest="users",
            metavar="NAME",
            help="username of a person to send it to (repeatable); default: every reader",
        )

    def handle(self, *args, users=None, **options):
        people = None
        if users:
            names = list(dict.fromkeys(users))
            people = list(get_user_model().objects.filter(username__in=names))
            unknown = sorted(set(names) - {person.username for person in people})
            if unknown:
                raise CommandError(f"No such user: {', '.join(unknown)}. Nothing was sent.")
        queued = digest.send(users=people)
        self.stdout.write(f"Queued {queued} digest{'s' if queued != 1 else ''}.")
