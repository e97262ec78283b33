"""Who may take which transition: DESIGN.md's permission table as named callables.

Each function has django-fsm's permission signature `(initiative, user) -> bool`, so the
same function guards the transition and decides which buttons the page shows.
"""

from portfolio.roles import is_executive, is_programme_manager


def _signed_in(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active)


def executive_or_manager(initiative, user) -> bool:
    """approve_frame, widen, roll_back, stop, reopen."""
    return _signed_in(user) and (is_executive(user) or is_programme_manager(user))


def may_submit_for_review(initiative, user) -> bool:
    if not _signed_in(user):
        return False
    if is_programme_manager(user):
        return True
    return user.pk in {initiative.delivery_lead_id, initiative.business_owner_id}


def may_decide_review(initiative, user) -> bool:
    """A programme manager with no stake in the initiative (segregation of duties): neither
    one of its owners nor the assignee of an item of its open readiness review. Also who may
    assign the review's items."""
    if not (_signed_in(user) and is_programme_manager(user)) or initiative.is_owned_by(user):
        return False
    # The reverse accessor keeps gates free of imports from the readiness app.
    return not initiative.reviews.filter(outcome="open", items__assignee=user).exists()


def may_create_initiative(user) -> bool:
    return _signed_in(user) and is_programme_manager(user)


def may_edit_framing(initiative, user) -> bool:
    if not _signed_in(user):
        return False
    return is_programme_manager(user) or initiative.is_owned_by(user)


def may_manage_feeds(initiative, user) -> bool:
    """Feeds, tokens and uploads: programme managers and this initiative's owners."""
    return may_edit_framing(initiative, user)
