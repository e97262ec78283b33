"""Who wants which notifications by email. In-app is always on; email is per person and kind.

Without a row of their own a person gets every kind by email except the weekly digest, which
executives and programme managers get and anyone else may opt into.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.contrib.auth import get_user_model
from django.db.models import Q

from gates import clock
from notifications.models import Kind, Preference
from portfolio.roles import Role, roles_of

DIGEST_ROLES = (Role.EXECUTIVE, Role.PROGRAMME_MANAGER)


def default_for(kind: str, roles: Iterable[str]) -> bool:
    if kind == Kind.DIGEST:
        return any(role in DIGEST_ROLES for role in roles)
    return True


def emailed(kind: str, user_ids: Iterable[int]) -> set[int]:
    """Of `user_ids`, those who get `kind` by email: active, with an address, and not opted
    out (or, for the digest, opted in or in a digest role). Two queries."""
    return emailed_by_kind({kind: user_ids})[kind]


def emailed_by_kind(wanted: Mapping[str, Iterable[int]]) -> dict[str, set[int]]:
    """`emailed` for several kinds at once, {kind: user ids} to {kind: those emailed}: two
    queries whatever the number of kinds, three when the digest is among them."""
    wanted = {kind: set(ids) for kind, ids in wanted.items()}
    everyone = set().union(*wanted.values())
    if not everyone:
        return {kind: set() for kind in wanted}
    chosen = {
        (kind, pk): email
        for kind, pk, email in Preference.objects.filter(
            kind__in=list(wanted), user_id__in=everyone
        ).values_list("kind", "user_id", "email")
    }
    people = get_user_model().objects.filter(pk__in=everyone, is_active=True).exclude(email="")
    reachable = set(people.values_list("pk", flat=True))
    in_role: set[int] = set()
    if wanted.get(Kind.DIGEST):
        in_role = set(
            people.filter(pk__in=wanted[Kind.DIGEST], groups__name__in=DIGEST_ROLES)
            .values_list("pk", flat=True)
            .distinct()
        )
    result = {}
    for kind, ids in wanted.items():
        digest = kind == Kind.DIGEST
        result[kind] = {
            pk for pk in ids & reachable if chosen.get((kind, pk), pk in in_role or not digest)
        }
    return result


def digest_readers():
    """Everyone who gets the weekly digest by email, as a queryset."""
    User = get_user_model()
    opted_in = Preference.objects.filter(kind=Kind.DIGEST, email=True).values("user_id")
    opted_out = Preference.objects.filter(kind=Kind.DIGEST, email=False).values("user_id")
    return (
        User.objects.filter(is_active=True)
        .exclude(email="")
        .filter(Q(groups__name__in=DIGEST_ROLES) | Q(pk__in=opted_in))
        .exclude(pk__in=opted_out)
        .distinct()
    )


def choices_of(user) -> dict[str, bool]:
    """Every kind with whether `user` gets it by email."""

    roles = roles_of(user)
    chosen = dict(Preference.objects.filter(user=user).values_list("kind", "email"))
    return {kind: chosen.get(kind, default_for(kind, roles)) for kind in Kind.values}


def choose(user, kind: str, email: bool) -> None:
    Preference.objects.update_or_create(
        user=user, kind=kind, defaults={"email": email, "updated_at": clock.now()}
    )
