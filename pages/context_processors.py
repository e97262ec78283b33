from notifications.queries import unread_count
from portfolio.roles import role_of
from readiness.queries import counts_for


def navigation(request) -> dict:
    """The signed-in user's role, open work and unread notifications, shown in the navigation."""
    user = getattr(request, "user", None)
    if not user or not user.is_authenticated:
        return {}
    role = role_of(user)
    work = counts_for(user)
    return {
        "nav_role": role.label if role else ("Administrator" if user.is_superuser else "No role"),
        "nav_work_count": work["items"] + work["work"],
        "nav_unread_count": unread_count(user),
    }
