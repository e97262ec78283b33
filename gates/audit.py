"""The audit trail: one tamper-evident chain of entries per initiative.

Every record that the audit trail is made of (gate decisions, framing changes, review
events, feed events, ...) is appended here by the service that writes it, in the same
transaction and under the initiative's row lock, so entries of one initiative are numbered
1, 2, 3, ... without gaps and each carries the SHA-256 of its own content chained to the
previous entry's hash.

Apps declare which of their models are audited with `register(Model)`; such a model has an
`audit_payload()` returning a JSON-able dict of the fields that matter. `verify` walks every
chain and reports the first broken link per initiative: an entry whose hash does not match
its content or its predecessor, a gap, or an audited row that was changed, removed or added
behind the application's back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F, OuterRef, Subquery

from gates.locks import lock_initiative
from gates.models import AuditEntry, GateDecision

GENESIS = "0" * 64

_sources: dict[str, type] = {}


def register(model: type) -> type:
    """Declare `model` audited: its rows are sealed in the chain and checked by `verify`."""
    _sources[label(model)] = model
    return model


def label(model) -> str:
    return model._meta.label_lower


register(GateDecision)


class _Encoder(DjangoJSONEncoder):
    """Times in UTC to the microsecond, as the database hands them back whatever offset the
    writer used; the rest as Django encodes it."""

    def default(self, o):
        if isinstance(o, datetime) and o.tzinfo is not None:
            return _moment(o)
        return super().default(o)


def normalise(payload: dict) -> dict:
    """The payload as the JSON column will hand it back: dates, decimals and ids as JSON."""
    return json.loads(json.dumps(payload, cls=_Encoder))


def _moment(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def content_hash(
    *,
    initiative_id: int,
    seq: int,
    kind: str,
    at: datetime,
    actor_id: int | None,
    summary: str,
    source: str,
    source_id: int | None,
    payload: dict,
    prev_hash: str,
) -> str:
    """SHA-256 of an entry's content and its predecessor's hash, over canonical JSON."""
    document = {
        "initiative": initiative_id,
        "seq": seq,
        "kind": kind,
        "at": _moment(at),
        "actor": actor_id,
        "summary": summary,
        "source": source,
        "source_id": source_id,
        "payload": payload,
        "prev": prev_hash,
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def entry_hash(entry: AuditEntry) -> str:
    return content_hash(
        initiative_id=entry.initiative_id,
        seq=entry.seq,
        kind=entry.kind,
        at=entry.at,
        actor_id=entry.actor_id,
        summary=entry.summary,
        source=entry.source,
        source_id=entry.source_id,
        payload=entry.payload,
        prev_hash=entry.prev_hash,
    )


def record(
    *,
    initiative_id: int,
    kind: str,
    actor,
    at: datetime,
    summary: str,
    obj=None,
    payload: dict | None = None,
) -> AuditEntry:
    """Append an entry to the initiative's chain; `obj` is the audited row it seals.

    Takes the initiative's row lock (a no-op when the caller already holds it), so appends
    to one chain are serialised and numbered without gaps.
    """
    if obj is not None:
        if label(type(obj)) not in _sources:
            raise ValueError(f"{label(type(obj))} is not registered with gates.audit.")
        payload = obj.audit_payload()
    payload = normalise(payload or {})
    with transaction.atomic():
        lock_initiative(initiative_id)
        last = (
            AuditEntry.objects.filter(initiative_id=initiative_id)
            .order_by("-seq")
            .values_list("seq", "hash")
            .first()
        )
        seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS)
        entry = AuditEntry(
            initiative_id=initiative_id,
            seq=seq,
            kind=kind,
            at=at,
            actor_id=getattr(actor, "pk", actor),
            summary=summary[:500],
            source=label(type(obj)) if obj is not None else "",
            source_id=obj.pk if obj is not None else None,
            payload=payload,
            prev_hash=prev_hash,
        )
        entry.hash = entry_hash(entry)
        entry.save()
    return entry


# Verification ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Break:
    """The first broken link of one initiative's chain."""

    initiative_id: int
    seq: int | None
    problem: str

    def __str__(self) -> str:
        where = f"entry {self.seq}" if self.seq is not None else "chain"
        return f"initiative {self.initiative_id}, {where}: {self.problem}"


def verify(initiative_ids: Iterable[int] | None = None) -> tuple[int, list[Break]]:
    """Walk the chains (all, or those of `initiative_ids`); returns (entries checked, breaks).

    Reads each audited table once, so the cost grows with the trail, not with queries.
    """
    entries = AuditEntry.objects.order_by("initiative_id", "seq")
    if initiative_ids is not None:
        initiative_ids = list(initiative_ids)
        entries = entries.filter(initiative_id__in=initiative_ids)
    rows = _source_rows(initiative_ids)
    sealed: set[tuple[str, int]] = set()
    broken: dict[int, Break] = {}
    expected: dict[int, tuple[int, str]] = {}
    count = 0
    for entry in entries.iterator(chunk_size=2000):
        count += 1
        chain = entry.initiative_id
        if entry.source_id is not None:
            sealed.add((entry.source, entry.source_id))
        if chain in broken:
            continue
        seq, prev = expected.get(chain, (1, GENESIS))
        problem = None
        if entry.seq != seq:
            problem = f"expected entry {seq} next, found {entry.seq} (an entry is missing)."
        elif entry.prev_hash != prev:
            problem = "its link to the previous entry does not match (an entry was altered)."
        elif entry_hash(entry) != entry.hash:
            problem = "its content does not match its hash (the entry was altered)."
        elif entry.source_id is not None:
            row = rows.get((entry.source, entry.source_id))
            if row is None:
                problem = f"the {entry.source} row {entry.source_id} it seals is gone."
            elif normalise(row.audit_payload()) != entry.payload:
                problem = f"the {entry.source} row {entry.source_id} was changed after sealing."
        if problem:
            broken[chain] = Break(chain, entry.seq, problem)
        expected[chain] = (entry.seq + 1, entry.hash)
    for (source, pk), row in rows.items():
        if (source, pk) in sealed:
            continue
        chain = row.audit_initiative
        if chain not in broken:
            broken[chain] = Break(chain, None, f"the {source} row {pk} was never sealed.")
    return count, [broken[k] for k in sorted(broken)]


def _source_rows(initiative_ids: list[int] | None) -> dict[tuple[str, int], object]:
    """Every audited row, annotated with the initiative whose chain seals it."""
    rows = {}
    for name, model in _sources.items():
        # A model reaching its initiative through another row names the path, e.g.
        # `audit_initiative_path = "item__review__initiative"`.
        path = getattr(model, "audit_initiative_path", "initiative")
        qs = model._base_manager.annotate(audit_initiative=F(path))
        if initiative_ids is not None:
            qs = qs.filter(audit_initiative__in=initiative_ids)
        for row in qs.iterator(chunk_size=2000):
            rows[(name, row.pk)] = row
    return rows


def seal_unsealed() -> int:
    """Seal audited rows written before the chain existed (an upgrade, or a bulk import).

    Oldest first within each initiative, after whatever its chain already holds. Returns how
    many rows it sealed. Run once when upgrading; `verify` reports rows nobody sealed.
    """
    pending = list(_source_rows(None).values())
    sealed = set(AuditEntry.objects.exclude(source="").values_list("source", "source_id"))
    pending = [r for r in pending if (label(type(r)), r.pk) not in sealed]
    pending.sort(key=lambda r: (r.audit_initiative, _moment(_time_of(r)), label(type(r)), r.pk))
    for row in pending:
        record(
            initiative_id=row.audit_initiative,
            kind=getattr(row, "audit_kind", label(type(row)).split(".")[-1]),
            actor=_actor_of(row),
            at=_time_of(row),
            # Sealed after the fact: the entry says so, its time stays the record's own.
            summary=f"{_summary_of(row)} (sealed later)",
            obj=row,
        )
    return len(pending)


def _summary_of(row) -> str:
    return row.audit_summary() if hasattr(row, "audit_summary") else str(row)


def _time_of(row) -> datetime:
    for name in (getattr(row, "audit_time_field", None), "at", "created_at"):
        if name and getattr(row, name, None) is not None:
            return getattr(row, name)
    raise ValueError(f"{label(type(row))} names no time to seal it at (audit_time_field).")


def _actor_of(row):
    for name in (getattr(row, "audit_actor_field", None), "user", "by", "actor"):
        if name and hasattr(row, f"{name}_id"):
            return getattr(row, f"{name}_id")
    return None


def heads(initiative_ids: Iterable[int] | None = None) -> list[tuple[int, int, str]]:
    """(initiative id, last seq, its hash) of each chain: kept somewhere else (a ticket, a
    signed mail, another system), they prove later that no entry was cut off the end."""
    last = AuditEntry.objects.filter(initiative_id=OuterRef("initiative_id")).order_by("-seq")
    entries = AuditEntry.objects.filter(seq=Subquery(last.values("seq")[:1])).order_by(
        "initiative_id"
    )
    if initiative_ids is not None:
        entries = entries.filter(initiative_id__in=list(initiative_ids))
    return list(entries.values_list("initiative_id", "seq", "hash"))
