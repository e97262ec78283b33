"""GANTRY_OIDC_ROLE_MAP, read by the settings: no Django import here, the settings load it."""

# portfolio.roles.Role's values (a test keeps the two equal).
ROLE_NAMES = frozenset({"executive", "programme_manager", "owner", "viewer"})


def parse_role_map(text: str) -> dict[str, str]:
    """ "ai-exec:executive,ai-pmo:programme_manager" -> {group: role}. An unknown role or a
    malformed pair is a configuration error, not a silent nobody-gets-in."""
    mapping: dict[str, str] = {}
    for pair in filter(None, (part.strip() for part in text.split(","))):
        group, sep, role = pair.rpartition(":")
        group, role = group.strip(), role.strip()
        if not sep or not group:
            raise ValueError(f"GANTRY_OIDC_ROLE_MAP: {pair!r} is not group:role.")
        if role not in ROLE_NAMES:
            raise ValueError(
                f"GANTRY_OIDC_ROLE_MAP: {role!r} is not a role ({', '.join(sorted(ROLE_NAMES))})."
            )
        mapping[group] = role
    return mapping
