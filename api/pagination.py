"""Cursor (keyset) pagination over the initiative list's sorts.

A cursor names where the last page ended: the sort, and that row's sort keys and id. The
next page is the rows after it in the same order, found by comparing keys rather than by
counting an offset, so an initiative added or removed meanwhile neither repeats a row nor
skips one. Cursors are signed: a changed cursor is refused, not obeyed.
"""

from __future__ import annotations

from datetime import datetime

from django.core import signing
from django.db.models import Q, QuerySet

from pages import listing

SALT = "api.initiatives.cursor"


class BadCursor(ValueError):
    pass


def keys(sort: str) -> list[tuple[str, bool]]:
    """(key, descending) of each ORDER BY term of `sort`, the id last."""
    name = sort.lstrip("-")
    descending = (sort.startswith("-") and name in listing.SORTS) != (name in listing.REVERSED)
    first, *rest = listing.SORTS[name]
    return [(first, descending), *((key, False) for key in rest), ("pk", False)]


def annotated(qs: QuerySet, sort: str) -> tuple[QuerySet, list[tuple[str, bool, bool]]]:
    """`qs` sorted, each sort key annotated as k0, k1, …; and (alias, descending, nullable)."""
    terms, aliases = [], {}
    for n, (key, descending) in enumerate(keys(sort)):
        alias = f"k{n}"
        aliases[alias] = listing.F(key)
        terms.append((alias, descending, key in listing.NULLABLE))
    qs = qs.annotate(**aliases)
    order = [
        (
            listing.F(alias).desc(nulls_last=True)
            if descending
            else listing.F(alias).asc(nulls_last=True)
        )
        if nullable
        else (f"-{alias}" if descending else alias)
        for alias, descending, nullable in terms
    ]
    return qs.order_by(*order), terms


def after(terms: list[tuple[str, bool, bool]], values: list) -> Q:
    """Rows strictly after the row whose keys are `values`, in the terms' order; missing
    values (NULL) sort last in both directions, as the list page sorts them."""
    condition = Q(pk__in=[])  # nothing
    equal = Q()
    for (alias, descending, nullable), value in zip(terms, values, strict=True):
        if value is None:
            later = Q(pk__in=[])  # nothing sorts after a missing value but missing values
            same = Q(**{f"{alias}__isnull": True})
        else:
            later = Q(**{f"{alias}__{'lt' if descending else 'gt'}": value})
            if nullable:
                later |= Q(**{f"{alias}__isnull": True})
            same = Q(**{alias: value})
        condition |= equal & later
        equal &= same
    return condition


def encode(sort: str, values: list) -> str:
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    return signing.dumps({"s": sort, "v": plain}, salt=SALT, compress=True)


def decode(cursor: str, sort: str) -> list:
    try:
        data = signing.loads(cursor, salt=SALT)
    except signing.BadSignature as exc:
        raise BadCursor("The cursor is not one this API gave out.") from exc
    if data.get("s") != sort:
        raise BadCursor("The cursor belongs to another sort; start again without it.")
    stamped = {n for n, (key, _) in enumerate(keys(sort)) if key == "stage_entered_at"}
    return [
        datetime.fromisoformat(v) if n in stamped and v is not None else v
        for n, v in enumerate(data["v"])
    ]
