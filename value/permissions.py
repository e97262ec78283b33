"""Who may ask for money and who decides it: the role first, then the fields naming the
person (a viewer named as owner or sponsor still writes nothing)."""

from __future__ import annotations

from portfolio.permissions import acts_as_owner
from portfolio.roles import is_executive, is_programme_manager


def _signed_in(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active)


def may_request(initiative, user) -> bool:
    """Owners of this initiative and programme managers ask for budget."""
    return _signed_in(user) and (is_programme_manager(user) or acts_as_owner(initiative, user))


def may_decide(initiative, user, request=None) -> bool:
    """The initiative's sponsor (an executive or programme manager), and never on a request
    they made themselves: segregation of duties."""
    if not _signed_in(user) or not (is_executive(user) or is_programme_manager(user)):
        return False
    if initiative.sponsor_id != user.pk:
        return False
    return request is None or request.requested_by_id != user.pk
