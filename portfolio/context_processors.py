from portfolio.roles import role_of


def navigation(request) -> dict:
    """The signed-in user's role, shown in the navigation bar."""
    user = getattr(request, "user", None)
    if not user or not user.is_authenticated:
        return {}
    role = role_of(user)
    return {
        "nav_role": role.label if role else ("Administrator" if user.is_superuser else "No role")
    }
