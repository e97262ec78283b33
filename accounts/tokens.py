"""Personal access tokens: made, checked and revoked here, by the token page, the command
`create_api_token` and the API's authentication alike."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import ApiToken, Scope

PREFIX = "gat_"  # recognisable in a leaked file or a secret scanner
MAX_DAYS = 366
DEFAULT_DAYS = 90
# A token's last use is written at most this often: every request writing a row would cost
# more than the request.
TOUCH_EVERY = timedelta(minutes=5)


class TokenError(ValueError):
    pass


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create(*, user, name: str, scope: str, days: int = DEFAULT_DAYS) -> tuple[ApiToken, str]:
    """(the token, its secret): the secret exists only in this return value."""
    name = (name or "").strip()
    if not name:
        raise TokenError("Give the token a name that says what it is for.")
    if len(name) > 80:
        raise TokenError("The name is longer than 80 characters.")
    if scope not in Scope.values:
        raise TokenError(f"The scope must be one of: {', '.join(Scope.values)}.")
    if not 1 <= days <= MAX_DAYS:
        raise TokenError(f"A token lasts from 1 to {MAX_DAYS} days.")
    if not user.is_active:
        raise TokenError("A deactivated account cannot have tokens.")
    secret = PREFIX + secrets.token_urlsafe(32)
    now = timezone.now()
    token = ApiToken.objects.create(
        user=user,
        name=name,
        scope=scope,
        token_hash=digest(secret),
        hint=secret[: len(PREFIX) + 4],
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    return token, secret


def authenticate(secret: str) -> ApiToken | None:
    """The usable token whose secret this is, else None (unknown, revoked, expired, or its
    person deactivated)."""
    secret = (secret or "").strip()
    if not secret.startswith(PREFIX):
        return None
    wanted = digest(secret)
    token = ApiToken.objects.select_related("user").filter(token_hash=wanted).first()
    if token is None or not hmac.compare_digest(wanted, token.token_hash):
        return None
    now = timezone.now()
    if not token.is_usable(now):
        return None
    if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def revoke(*, token: ApiToken, user) -> None:
    """Revoke one's own token (superusers may revoke anyone's). Revoking twice is harmless."""
    if token.user_id != user.pk and not user.is_superuser:
        raise PermissionError("Only its owner revokes a token.")
    with transaction.atomic():
        ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
