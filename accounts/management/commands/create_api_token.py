"""manage.py create_api_token USER --scope read|read-write [--name N] [--days D]

Prints the token on its last line, alone, so a script can take it with `tail -n 1`."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts import tokens
from accounts.models import Scope


class Command(BaseCommand):
    help = "Make a personal access token for /api/v1/ and print it (shown this once)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--scope", choices=Scope.values, default=Scope.READ)
        parser.add_argument("--name", default="made with create_api_token")
        parser.add_argument("--days", type=int, default=tokens.DEFAULT_DAYS)

    def handle(self, *args, username, scope, name, days, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        try:
            token, secret = tokens.create(user=user, name=name, scope=scope, days=days)
        except tokens.TokenError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Token {token.hint}… for {user.username}, scope {token.scope}, "
            f"expires {token.expires_at:%Y-%m-%d %H:%M} UTC. It is not shown again:"
        )
        self.stdout.write(secret)
