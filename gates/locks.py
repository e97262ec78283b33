"""The initiative's row lock: every write that changes evidence a gate reads takes it.

`decide` evaluates a gate's criteria while holding this lock, so a decision never rests on
evidence that changed under it. Services that change such evidence (framing, reframes,
checklist items, feed life cycle) take the same lock first, in the same order (the
initiative, then the rows they write), which also keeps them free of deadlocks with one
another. Ingestion takes it in share mode: deliveries run side by side, but never while a
decision (or a stop) on the initiative is being written.

Gates import no other app: the initiative model is reached through the decision's foreign key.
"""

from __future__ import annotations

from django.db import connection, transaction


def _initiative_model():
    from gates.models import GateDecision

    return GateDecision._meta.get_field("initiative").related_model


def lock_initiative(initiative_id: int):
    """Lock the initiative's row until the current transaction ends; returns a fresh copy.

    Call inside `transaction.atomic()`. The copy is read under the lock, so what it says
    (stage, owners, framing) is what every other writer will see until this one commits.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("lock_initiative must be called inside transaction.atomic().")
    return _initiative_model().objects.select_for_update().get(pk=initiative_id)


def share_initiative(initiative_id: int) -> None:
    """Hold the initiative's row in share mode until the transaction ends (PostgreSQL).

    Many holders at once; none while a `lock_initiative` holder writes. SQLite serialises
    every writer anyway, so there it is a no-op.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("share_initiative must be called inside transaction.atomic().")
    if connection.vendor != "postgresql":
        return
    table = _initiative_model()._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {table} WHERE id = %s FOR SHARE", [initiative_id])  # noqa: S608
