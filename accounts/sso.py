"""Single sign-on through the organisation's OpenID Connect provider (django-allauth).

allauth does the protocol: discovery from the issuer's well-known document, the
authorization code flow with PKCE, the ID token's signature, issuer and audience. Gantry adds
what an organisation needs from it:

- roles from a groups claim, mapped by GANTRY_OIDC_ROLE_MAP, set again at every sign-in, so a
  person removed from a group loses that role the next time they sign in;
- name and email from the provider, kept current the same way;
- a person the map gives no role is refused, and a deactivated account stays refused;
- SSO sessions belong to their own backend, so narrowing password sign-in
  (GANTRY_LOCAL_LOGIN) does not end them.
"""

from __future__ import annotations

import logging

from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group
from django.db import transaction
from django.shortcuts import render

from portfolio.roles import Role

log = logging.getLogger(__name__)

PROVIDER_ID = "sso"
BACKEND = "accounts.sso.SingleSignOnBackend"


def enabled() -> bool:
    return bool(settings.GANTRY_OIDC_ISSUER)


def claims_of(sociallogin) -> dict:
    """The provider's claims: the ID token's, with the userinfo answer over them."""
    data = sociallogin.account.extra_data or {}
    return {**(data.get("id_token") or {}), **(data.get("userinfo") or {})}


def roles_from(claims: dict) -> set[str]:
    groups = claims.get(settings.GANTRY_OIDC_GROUPS_CLAIM) or []
    if isinstance(groups, str):
        groups = [groups]
    role_map = settings.GANTRY_OIDC_ROLE_MAP
    return {role_map[group] for group in groups if group in role_map}


def sync_roles(user, roles: set[str]) -> None:
    """Make the user's Gantry role groups exactly `roles`; other groups stay as they are."""
    all_roles = {role.value for role in Role}
    roles = roles & all_roles
    held = set(user.groups.filter(name__in=all_roles).values_list("name", flat=True))
    if held == roles:
        return
    with transaction.atomic():
        user.groups.remove(*Group.objects.filter(name__in=held - roles))
        user.groups.add(*(Group.objects.get_or_create(name=name)[0] for name in roles - held))
    user.__dict__.pop("_gantry_roles", None)
    log.info(
        "roles of %s set by the identity provider: %s (were %s)",
        user.get_username(),
        sorted(roles) or "none",
        sorted(held) or "none",
    )


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def pre_social_login(self, request, sociallogin) -> None:
        claims = claims_of(sociallogin)
        roles = roles_from(claims)
        if not roles:
            log.warning(
                "single sign-on refused for %s: no group of theirs maps to a Gantry role",
                claims.get("preferred_username") or claims.get("sub"),
            )
            raise ImmediateHttpResponse(render(request, "accounts/sso_no_role.html", status=403))
        user = sociallogin.user
        user.backend = BACKEND
        if sociallogin.is_existing:
            self._update(user, claims)
            if user.is_active:  # allauth refuses the inactive; nothing of theirs changes
                user.save(update_fields=["first_name", "last_name", "email"])
                sync_roles(user, roles)

    def save_user(self, request, sociallogin, form=None):
        user = super().save_user(request, sociallogin, form)
        user.backend = BACKEND
        sync_roles(user, roles_from(claims_of(sociallogin)))
        return user

    @staticmethod
    def _update(user, claims: dict) -> None:
        user.first_name = (claims.get("given_name") or user.first_name)[:150]
        user.last_name = (claims.get("family_name") or user.last_name)[:150]
        user.email = claims.get("email") or user.email


class SingleSignOnBackend(ModelBackend):
    """Holds the sessions of people signed in through the provider. It checks no password
    (authenticate always declines): allauth has verified the provider's answer."""

    def authenticate(self, request, **credentials):
        return None
