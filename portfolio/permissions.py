"""Who may take which transition: DESIGN.md's permission table as named callables.

Each function has django-fsm's permission signature `(initiative, user) -> bool`, so the
same function guards the transition and decides which buttons the page shows.

The role bounds every power: each helper asks for the role first and only then looks at the
fields that name the person. A viewer named as business owner still writes nothing, and an
executive named as an owner gains no owner's powers.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db.models import Q

from portfolio.roles import Role, is_executive, is_programme_manager, roles_of

# The initiative's fields that give a person a stake in it.
OWNER_FIELDS = ("business_owner", "operational_owner", "delivery_lead")
# Roles whose holders may be named in an owner field.
OWNING_ROLES = frozenset({Role.OWNER, Role.PROGRAMME_MANAGER, Role.EXECUTIVE})


def _signed_in(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active)


def _is_owner_role(user) -> bool:
    return Role.OWNER in roles_of(user)


def may_own(user) -> bool:
    """Whether the user's role lets them be named business owner, operational owner or
    delivery lead (viewers may not)."""
    return bool(user and user.is_active and roles_of(user) & OWNING_ROLES)


def acts_as_owner(initiative, user) -> bool:
    """An owner's powers on this initiative: the owner role and named in an owner field."""
    return _signed_in(user) and _is_owner_role(user) and initiative.is_owned_by(user)


def executive_or_manager(initiative, user) -> bool:
    """approve_frame, widen, roll_back, stop, reopen."""
    return _signed_in(user) and (is_executive(user) or is_programme_manager(user))


def may_submit_for_review(initiative, user) -> bool:
    if not _signed_in(user):
        return False
    if is_programme_manager(user):
        return True
    return _is_owner_role(user) and user.pk in {
        initiative.delivery_lead_id,
        initiative.business_owner_id,
    }


class Stakes:
    """Where, besides the owner fields and their history, a stake in an initiative is held.

    The apps above the domain register what they hold (readiness: the items of the open
    review and who opened it when), so the rules below read it without importing them.
    """

    def __init__(self) -> None:
        self._sources: list[Callable[[Any, Any], bool]] = []
        self._review_opened_at: Callable[[Any], datetime | None] = lambda initiative: None

    def source(self, held: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
        """Register `held(initiative, user) -> bool`: a stake held now or during the open
        review."""
        self._sources.append(held)
        return held

    def review_opened_at(self, opened_at: Callable[[Any], datetime | None]):
        """Register `opened_at(initiative)`: when its open readiness review opened, if any."""
        self._review_opened_at = opened_at
        return opened_at

    def held_elsewhere(self, initiative, user) -> bool:
        return any(held(initiative, user) for held in self._sources)

    def open_review_since(self, initiative) -> datetime | None:
        return self._review_opened_at(initiative)


stakes = Stakes()


def held_stake(initiative, user, *, since=None) -> bool:
    """Whether the user owns the initiative now, or held a stake in it at any time since
    `since`: named in an owner field (the framing history says so) or given an item of its
    open readiness review, even one reassigned since."""
    if initiative.is_owned_by(user):
        return True
    if stakes.held_elsewhere(initiative, user):
        return True
    if since is None:
        return False
    mine = str(user.pk)
    return initiative.framing_changes.filter(
        Q(old_value=mine) | Q(new_value=mine),
        field__in=OWNER_FIELDS,
        changed_at__gte=since,
    ).exists()


def may_decide_review(initiative, user) -> bool:
    """A programme manager with no stake in the initiative at any time since its open review
    opened (segregation of duties). Also who may assign the review's items."""
    if not (_signed_in(user) and is_programme_manager(user)):
        return False
    return not held_stake(initiative, user, since=stakes.open_review_since(initiative))


def may_reframe(initiative, user) -> bool:
    """Change the success definition after gate 1: a programme manager with no stake in the
    initiative at any time since the definition was frozen (handing ownership on first does
    not qualify anyone to move the goalposts)."""
    if not (_signed_in(user) and is_programme_manager(user)):
        return False
    frozen_at = (
        initiative.decisions.filter(transition="approve_frame")
        .order_by("-decided_at")
        .values_list("decided_at", flat=True)
        .first()
    )
    return not held_stake(initiative, user, since=frozen_at)


def may_create_initiative(user) -> bool:
    return _signed_in(user) and is_programme_manager(user)


def may_edit_framing(initiative, user) -> bool:
    if not _signed_in(user):
        return False
    return is_programme_manager(user) or acts_as_owner(initiative, user)


def may_change_owners(initiative, user) -> bool:
    """Owners and sponsor: programme managers only."""
    return _signed_in(user) and is_programme_manager(user)


def may_propose_reframe(initiative, user) -> bool:
    """Owners propose a new success definition; a programme manager with no stake applies it."""
    return acts_as_owner(initiative, user)


def may_manage_feeds(initiative, user) -> bool:
    """Feeds, tokens and uploads: programme managers and this initiative's owners."""
    return may_edit_framing(initiative, user)
