"""Who may sign in with a password, and whether passwords can be reset by mail.

GANTRY_LOCAL_LOGIN is "all" (the default: the demo, and organisations without single sign-on),
"superusers" (break-glass: only active superusers, when the identity provider is down or
misconfigured) or "off" (single sign-on only).
"""

from django.conf import settings
from django.contrib.auth.backends import ModelBackend

ALL, SUPERUSERS, OFF = "all", "superusers", "off"


def local_login() -> str:
    return settings.GANTRY_LOCAL_LOGIN


def password_reset_enabled() -> bool:
    """Reset by mail only where people sign in with a password and mail reaches them."""
    return settings.GANTRY_PASSWORD_RESET and local_login() == ALL


class LocalPasswordBackend(ModelBackend):
    """Django's username and password check, bounded by GANTRY_LOCAL_LOGIN."""

    def user_can_authenticate(self, user) -> bool:
        mode = local_login()
        if mode == OFF or (mode == SUPERUSERS and not user.is_superuser):
            return False
        return super().user_can_authenticate(user)
