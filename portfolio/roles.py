"""Roles: Django groups named after the people of DESIGN.md, plus object-level ownership.

A user's role is the group they belong to. Owners are also object-level: the business owner,
operational owner and delivery lead of an initiative own *that* initiative, whatever group
they are in.
"""

from django.db import models


class Role(models.TextChoices):
    EXECUTIVE = "executive", "Executive"
    PROGRAMME_MANAGER = "programme_manager", "Programme manager"
    OWNER = "owner", "Owner"
    VIEWER = "viewer", "Viewer"


# Highest first: a user in several groups is shown with the strongest role.
PRECEDENCE = [Role.EXECUTIVE, Role.PROGRAMME_MANAGER, Role.OWNER, Role.VIEWER]


def roles_of(user) -> frozenset[str]:
    """The role names of a user, read once per user object (groups are cached on it)."""
    if not user or not user.is_authenticated:
        return frozenset()
    cached = getattr(user, "_gantry_roles", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))
        user._gantry_roles = cached
    return cached


def role_of(user) -> Role | None:
    names = roles_of(user)
    for role in PRECEDENCE:
        if role.value in names:
            return role
    return None


def is_executive(user) -> bool:
    return Role.EXECUTIVE in roles_of(user)


def is_programme_manager(user) -> bool:
    return Role.PROGRAMME_MANAGER in roles_of(user)
