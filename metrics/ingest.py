"""Ingestion of observations: validate a whole batch, then store it in one set-based insert.

The JSON API and the CSV upload share this module. A batch is validated completely before
anything is written; one bad item rejects the batch, and every bad item is reported with its
index (API) or row number (CSV) and field. Storing is idempotent: an observation already held
for the same (metric, cohort, observed_at, feed) is counted as a duplicate, not stored again.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q, Value
from django.db.models.functions import Coalesce, Greatest

from gates import clock, events
from gates.locks import share_initiative
from metrics import status
from metrics.models import (
    Cohort,
    DataFeed,
    Delivery,
    DeliverySource,
    FeedStatus,
    Metric,
    Observation,
)

MAX_BATCH_ITEMS = 10_000
MAX_BODY_BYTES = 5 * 1024 * 1024
MAX_CSV_ROWS = 50_000
MAX_CSV_BYTES = 5 * 1024 * 1024
# Clocks disagree a little; observations from further ahead than this are refused.
FUTURE_TOLERANCE = timedelta(minutes=5)
# A numeric metric reference above this cannot be a primary key (bigint).
MAX_ID = 2**63 - 1
# The largest magnitude a value may have. Every figure Gantry derives from a window must stay
# a finite double (at most 1.8e308): PostgreSQL's SUM and the sums of squares behind STDDEV
# (n * 1e100 here) and Welch's degrees of freedom in metrics.stats, which square a variance
# (up to about 1e200). 1e50 leaves over a hundred orders of magnitude for the number of rows,
# and no metric a business tracks comes near it.
MAX_ABS_VALUE = 1e50
# The widest UTC offset PostgreSQL accepts in a timestamp's text (its binary COPY would take
# more, so without this limit the two insert paths would disagree); no timezone uses more
# than 14 hours.
MAX_UTC_OFFSET = timedelta(hours=15, minutes=59, seconds=59)
FIELDS = ("metric", "cohort", "observed_at", "value")


@dataclass
class Problem:
    where: int  # index in the JSON list, or row number in the CSV file (header is row 1)
    field: str
    message: str

    def as_json(self, key: str) -> dict:
        return {key: self.where, "field": self.field, "message": self.message}


@dataclass
class Batch:
    """A validated batch: rows of (metric_id, cohort, observed_at, value)."""

    rows: list[tuple[int, str, datetime, float]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    foreign: list[Problem] = field(default_factory=list)  # metrics of another initiative

    @property
    def ok(self) -> bool:
        return not self.problems and not self.foreign


@dataclass(frozen=True)
class Stored:
    created: int
    duplicates: int
    fresh: int  # new observations from inside the feed's freshness window
    metric_ids: frozenset[int]


class FeedNotActive(Exception):
    """The feed is paused or retired: it takes no data, and nothing was stored."""

    def __init__(self, feed: DataFeed) -> None:
        self.feed = feed
        super().__init__(refusal(feed))


def refusal(feed: DataFeed) -> str:
    """The sentence a paused or retired feed's deliveries are refused with."""
    then = (
        "A retired feed takes no data again; register a new feed."
        if feed.status == FeedStatus.RETIRED
        else "Someone who manages the feed can resume it on the initiative's page."
    )
    return f"The feed “{feed.name}” is {feed.status_sentence()}. Nothing was stored. {then}"


class BodyError(ValueError):
    """The request body as a whole is unusable (not JSON, not a list)."""


class TooLarge(BodyError):
    """The body or batch is over the documented limits."""


class _NonFinite:
    """What the JSON parser hands back for NaN, Infinity and -Infinity."""

    def __init__(self, text: str) -> None:
        self.text = text


def parse_json_body(body: bytes) -> list:
    if len(body) > MAX_BODY_BYTES:
        raise TooLarge(f"The body is larger than {MAX_BODY_BYTES} bytes.")
    try:
        data = json.loads(body, parse_constant=_NonFinite)
    except RecursionError:
        raise BodyError("The body is not valid JSON: it is nested too deeply.") from None
    except ValueError as exc:
        # JSONDecodeError, UnicodeDecodeError, and integers beyond Python's digit limit.
        raise BodyError(f"The body is not valid JSON: {exc}.") from None
    if not isinstance(data, list):
        raise BodyError("The body must be a JSON list of observations.")
    if len(data) > MAX_BATCH_ITEMS:
        raise TooLarge(f"A batch holds at most {MAX_BATCH_ITEMS} observations.")
    return data


class MetricIndex:
    """Resolves a metric reference (slug or id) within the feed's initiative."""

    def __init__(self, feed: DataFeed) -> None:
        self.by_key: dict[str, int] = {}
        for pk, slug in Metric.objects.filter(initiative_id=feed.initiative_id).values_list(
            "pk", "slug"
        ):
            self.by_key[slug] = pk
            self.by_key[str(pk)] = pk
        self.initiative_id = feed.initiative_id

    def resolve(self, reference) -> int | None:
        if isinstance(reference, bool) or not isinstance(reference, str | int):
            return None
        return self.by_key.get(str(reference).strip())

    def foreign(self, references: set[str]) -> set[str]:
        """Which unknown references name a metric of another initiative."""
        # PostgreSQL refuses NUL in text parameters; no slug holds one anyway.
        references = {r for r in references if "\x00" not in r}
        ids = {int(r) for r in references if r.isascii() and r.isdigit() and int(r) <= MAX_ID}
        found = Metric.objects.filter(Q(slug__in=references) | Q(pk__in=ids)).exclude(
            initiative_id=self.initiative_id
        )
        names = set()
        for pk, slug in found.values_list("pk", "slug"):
            names.update({slug, str(pk)} & references)
        return names


def _storable(text: str) -> bool:
    """Whether PostgreSQL can hold the text: UTF-8 without NUL (so no unpaired surrogate)."""
    if "\x00" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _offset(delta: timedelta) -> str:
    sign = "-" if delta < timedelta(0) else "+"
    seconds = abs(delta).total_seconds()
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{sign}{int(hours):02d}:{int(minutes):02d}"
    return text + (f":{seconds:02.0f}" if seconds else "")


def _value(raw, *, from_text: bool) -> tuple[float | None, str | None]:
    if from_text:
        if not isinstance(raw, str) or not raw.strip():
            return None, "is empty; give a number."
        text = raw.strip()
        try:
            number = float(text)
        except ValueError:
            return None, f"“{text[:40]}” is not a number (use a dot for decimals)."
    else:
        if isinstance(raw, _NonFinite):
            return None, f"{raw.text} is not a finite number."
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            return None, "must be a JSON number, not a string or other value."
        try:
            number = float(raw)
        except OverflowError:
            return None, "is too large."
    if not math.isfinite(number):
        return None, "must be a finite number."
    if abs(number) > MAX_ABS_VALUE:
        return None, "is beyond ±1e50, the largest magnitude Gantry can aggregate safely."
    return number, None


def _timestamp(raw, now: datetime) -> tuple[datetime | None, str | None]:
    if not isinstance(raw, str) or not raw.strip():
        return None, "must be an ISO 8601 timestamp with a timezone."
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        return None, f"“{raw[:40]}” is not an ISO 8601 timestamp."
    offset = moment.utcoffset() if moment.tzinfo is not None else None
    if offset is None:
        return None, "has no timezone; add Z or an offset such as +01:00."
    if abs(offset) > MAX_UTC_OFFSET:
        return None, f"has the UTC offset {_offset(offset)}; offsets run from -15:59 to +15:59."
    try:
        # Stored in UTC, so both insert paths hand the database the same instant whatever the
        # offset was written as. Year 1 at +01:00 has no UTC time (nor has 9999-12-31T23:00
        # at -01:00).
        moment = moment.astimezone(UTC)
    except OverflowError:
        return None, "is out of range: it has no time in UTC."
    if moment > now + FUTURE_TOLERANCE:
        return None, "is in the future."
    return moment, None


def validate(
    items: list,
    feed: DataFeed,
    *,
    from_text: bool = False,
    first: int = 0,
    numbers: Sequence[int] | None = None,
) -> Batch:
    """Check every item; collect every problem.

    `first` numbers the first item (0 for the API); `numbers` gives each item its own number
    instead (a CSV file's row numbers, which skip blank lines).
    """
    index = MetricIndex(feed)
    now = clock.now()
    rows = None if from_text else _plain_rows(items, index, now)
    if rows is not None:
        return Batch(rows=rows)
    batch = Batch()
    unknown: dict[str, list[int]] = {}
    cohorts = set(Cohort.values)
    positions = numbers if numbers is not None else range(first, first + len(items))
    for position, item in zip(positions, items, strict=True):
        if not isinstance(item, dict):
            batch.problems.append(
                Problem(position, "", "must be an object with " + ", ".join(FIELDS))
            )
            continue
        extra = set(item) - set(FIELDS)
        if extra:
            batch.problems.append(
                Problem(
                    position, sorted(extra)[0], "is not a known field; use " + ", ".join(FIELDS)
                )
            )
        missing = [name for name in FIELDS if item.get(name) in (None, "")]
        for name in missing:
            batch.problems.append(Problem(position, name, "is required."))
        for name in FIELDS:
            # Checked before anything reads the text: the database refuses it, and a page
            # cannot even be encoded with an unpaired surrogate in it.
            if isinstance(item.get(name), str) and not _storable(item[name]):
                batch.problems.append(
                    Problem(
                        position,
                        name,
                        "holds a character that cannot be stored (NUL or an unpaired surrogate).",
                    )
                )
                missing.append(name)
        metric_id = None
        if "metric" not in missing:
            metric_id = index.resolve(item["metric"])
            if metric_id is None:
                unknown.setdefault(str(item["metric"]).strip(), []).append(position)
        cohort = item.get("cohort")
        if not isinstance(cohort, str):  # a list or object must not reach the set lookup
            cohort = None
        if "cohort" not in missing and cohort not in cohorts:
            batch.problems.append(
                Problem(position, "cohort", f"must be one of {', '.join(Cohort.values)}.")
            )
        moment = value = None
        if "observed_at" not in missing:
            moment, error = _timestamp(item["observed_at"], now)
            if error:
                batch.problems.append(Problem(position, "observed_at", error))
        if "value" not in missing:
            value, error = _value(item["value"], from_text=from_text)
            if error:
                batch.problems.append(Problem(position, "value", error))
        if metric_id is not None and cohort in cohorts and moment is not None and value is not None:
            batch.rows.append((metric_id, cohort, moment, value))
    if unknown:
        foreign = index.foreign(set(unknown))
        for reference, positions in unknown.items():
            for position in positions:
                if reference in foreign:
                    batch.foreign.append(
                        Problem(position, "metric", f"“{reference}” belongs to another initiative.")
                    )
                else:
                    batch.problems.append(
                        Problem(
                            position, "metric", f"“{reference}” is not a metric of this initiative."
                        )
                    )
    batch.problems.sort(key=lambda p: (p.where, FIELDS.index(p.field) if p.field in FIELDS else 9))
    return batch


_COHORTS = frozenset(Cohort.values)


def _plain_rows(items: list, index: MetricIndex, now: datetime) -> list | None:
    """The rows of a batch whose every item is plainly right, or None at the first item that
    is not; `validate` then checks the batch item by item and names every problem.

    The same rules as `validate`, for the batch a working feed sends (about a fifth of the
    time per item): an object of exactly the four fields, a known metric slug or id, a cohort,
    an ISO timestamp with a timezone within the offsets and not in the future, and a finite
    number within the bounds. Anything unusual, such as padding spaces, a string for a number
    or an unknown metric, falls through to the full check rather than being decided here.
    """
    by_key = index.by_key
    latest = now + FUTURE_TOLERANCE
    parse = datetime.fromisoformat
    rows = []
    append = rows.append
    for item in items:
        if type(item) is not dict or len(item) != len(FIELDS):
            return None
        try:
            metric, cohort, text, value = (
                item["metric"], item["cohort"], item["observed_at"], item["value"]
            )  # fmt: skip
        except KeyError:
            return None
        kind = type(metric)
        metric_id = (
            by_key.get(metric if kind is str else str(metric)) if kind in (str, int) else None
        )
        if metric_id is None or type(cohort) is not str or cohort not in _COHORTS:
            return None
        if type(text) is not str or not text.isascii():
            return None
        try:
            moment = parse(text)
        except ValueError:
            return None
        if moment.tzinfo is not UTC:
            offset = moment.utcoffset()
            if offset is None or abs(offset) > MAX_UTC_OFFSET:
                return None
            try:
                moment = moment.astimezone(UTC)
            except OverflowError:
                return None
        if moment > latest:
            return None
        kind = type(value)
        if kind is int:
            try:
                value = float(value)
            except OverflowError:
                return None
        elif kind is not float:
            return None
        # False for NaN and the infinities too.
        if not -MAX_ABS_VALUE <= value <= MAX_ABS_VALUE:
            return None
        append((metric_id, cohort, moment, value))
    return rows


def read_csv(text: str) -> tuple[list[dict], list[int], list[Problem]]:
    """(rows as dicts, their row numbers, problems with the file's header, size or syntax).

    Rows are numbered as a spreadsheet shows them: the header is row 1, a blank line is a
    row too (skipped, but counted), and a quoted cell spanning lines stays one row.
    Messages are fragments that read after "The file" (as the upload page shows them).
    """
    if len(text.encode()) > MAX_CSV_BYTES:
        return [], [], [Problem(1, "", f"is larger than {MAX_CSV_BYTES // 1024 // 1024} MB.")]
    reader = csv.reader(io.StringIO(text))
    rows: list[dict] = []
    numbers: list[int] = []
    number = 0
    try:
        header = [name.strip() for name in next(reader, [])]
        number = 1
        if sorted(header) != sorted(FIELDS):
            return [], [], [
                Problem(1, "", f"must have the header {','.join(FIELDS)}; it has "
                        f"{','.join(header) or 'none'}.")
            ]  # fmt: skip
        for number, cells in enumerate(reader, start=2):
            if not cells:  # a blank line
                continue
            if len(cells) > len(header):
                return [], [], [Problem(number, "", "has more cells than the header in this row.")]
            rows.append(dict(zip(header, cells + [""] * (len(header) - len(cells)), strict=True)))
            numbers.append(number)
            if len(rows) > MAX_CSV_ROWS:
                return [], [], [Problem(number, "", f"holds more than {MAX_CSV_ROWS} rows.")]
    except csv.Error as exc:
        return [], [], [Problem(number + 1, "", f"cannot be read as CSV here: {exc}.")]
    if not rows:
        return [], [], [Problem(2, "", "has a header but no rows.")]
    return rows, numbers, []


def store(
    feed: DataFeed,
    rows: list[tuple[int, str, datetime, float]],
    *,
    source: str = DeliverySource.API,
    uploaded_by=None,
) -> Stored:
    """Insert the rows in one statement, skipping those already held; record the delivery.

    Raises FeedNotActive, storing nothing, when the feed is paused or retired. Only an API
    delivery that brings fresh rows (new, and observed within the feed's freshness window of
    now) makes the feed fresh; duplicates, back-dated rows and CSV uploads refresh nothing.
    """
    now = clock.now()
    # Repeats inside one batch are duplicates too; the database sees each key once.
    # Sorted: every delivery inserts in one canonical order (metric, cohort, observed_at), so
    # two deliveries of the same rows in different orders wait for each other rather than
    # deadlock.
    # Plain tuple order is that order: the keys are unique, so no value is ever compared.
    unique = sorted({(m, c, t): (m, c, t, v) for m, c, t, v in rows}.values())
    with transaction.atomic():
        # In share mode: deliveries run side by side, but a pause, retirement or stop (which
        # lock the initiative) is either committed before the status is read below, or waits
        # until this delivery has committed.
        share_initiative(feed.initiative_id)
        current = DataFeed.objects.get(pk=feed.pk)
        if not current.is_active:
            raise FeedNotActive(current)
        created, fresh = _insert(feed.pk, unique, now, fresh_after=now - current.freshness_window)
        Delivery.objects.create(
            feed_id=feed.pk,
            at=now,
            source=source,
            received=len(rows),
            created=created,
            duplicates=len(rows) - created,
            fresh=fresh,
            uploaded_by=uploaded_by,
        )
        # Never backwards: a delivery that started earlier may commit after a later one.
        changes = {"last_delivery_at": _at_least("last_delivery_at", now)}
        if source == DeliverySource.API and fresh:
            changes.update(last_fresh_at=_at_least("last_fresh_at", now))
            # Only the delivery whose UPDATE finds the feed stale brings it back: the WHERE is
            # read again after any concurrent writer commits, so one of them says so.
            if DataFeed.objects.filter(pk=feed.pk, is_stale=True).update(is_stale=False):
                events.emit(status.back_event(current, last_fresh_at=current.last_fresh_at, at=now))
        DataFeed.objects.filter(pk=feed.pk).update(**changes)
    feed.last_delivery_at = max(filter(None, [current.last_delivery_at, now]))
    if source == DeliverySource.API and fresh:
        feed.last_fresh_at = max(filter(None, [current.last_fresh_at, now]))
        feed.is_stale = False
    return Stored(
        created=created,
        duplicates=len(rows) - created,
        fresh=fresh,
        metric_ids=frozenset(m for m, _, _, _ in unique),
    )


def _at_least(column: str, moment: datetime):
    """An UPDATE's new value of a time column: `moment`, unless the column holds a later one."""
    return Greatest(Coalesce(column, Value(moment)), Value(moment))


_TABLE = Observation._meta.db_table
# From this many rows a batch reaches the table by COPY (`_insert_by_copy`): psycopg writes
# COPY rows in C, whereas array parameters are formatted element by element in Python (a
# third of the insert's time at 10,000 rows), and COPY inserts in multi-row batches. Below
# it, one unnest statement is cheaper than the extra round trips.
COPY_FROM_ROWS = 1_000
_STAGING = "gantry_observation_batch"


def _insert(feed_id: int, rows, now: datetime, *, fresh_after: datetime) -> tuple[int, int]:
    """(rows inserted, of those observed after `fresh_after`); rows already held are skipped."""
    if not rows:
        return 0, 0
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and len(rows) >= COPY_FROM_ROWS:
            return _insert_by_copy(cursor, feed_id, rows, now, fresh_after)
        if connection.vendor == "postgresql":
            # One statement for the whole batch: arrays unnested into rows.
            metric_ids, cohorts, moments, values = (
                list(column) for column in zip(*rows, strict=True)
            )
            cursor.execute(
                f"""
                WITH inserted AS (
                    INSERT INTO {_TABLE}
                        (metric_id, feed_id, cohort, observed_at, value, ingested_at)
                    SELECT m, %s, c, t, v, %s
                    FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[], %s::float8[])
                        AS batch(m, c, t, v)
                    ORDER BY m, c, t
                    ON CONFLICT (metric_id, cohort, observed_at, feed_id) DO NOTHING
                    RETURNING observed_at
                )
                SELECT count(*), count(*) FILTER (WHERE observed_at > %s) FROM inserted
                """,  # noqa: S608 - the table name is ours, every value is a parameter
                [feed_id, now, metric_ids, cohorts, moments, values, fresh_after],
            )
            return tuple(cursor.fetchone())
        # SQLite serialises writers, so counting before and after is exact.
        held = Observation.objects.filter(feed_id=feed_id)
        counts = {"n": Count("id"), "fresh": Count("id", filter=Q(observed_at__gt=fresh_after))}
        before = held.aggregate(**counts)
        Observation.objects.bulk_create(
            [
                Observation(
                    metric_id=m, feed_id=feed_id, cohort=c, observed_at=t, value=v, ingested_at=now
                )
                for m, c, t, v in rows
            ],
            ignore_conflicts=True,
            batch_size=500,
        )
        after = held.aggregate(**counts)
        return after["n"] - before["n"], after["fresh"] - before["fresh"]


def _insert_by_copy(cursor, feed_id: int, rows, now: datetime, fresh_after: datetime):
    """The same insert as the unnest statement, for a large batch: its new rows COPYed
    straight into the table.

    COPY inserts in multi-row batches, where INSERT ... ON CONFLICT inserts one row at a time
    with a speculative check each: for a batch of thousands of new rows it is the cheaper
    path by far. The rows this feed already holds in the batch's time range are read first
    and left out. A delivery of the same rows by another connection can still commit in
    between: the COPY then fails on the unique key, its savepoint is rolled back, and the
    batch goes through the conflict-skipping insert instead (`_insert_skipping_held`).
    """
    held = _held_keys(cursor, feed_id, rows)
    new = [row for row in rows if (row[0], row[1], row[2]) not in held] if held else rows
    if not new:
        return 0, 0
    statement = (
        f"COPY {_TABLE} (metric_id, feed_id, cohort, observed_at, value, ingested_at) "
        "FROM STDIN (FORMAT BINARY)"
    )
    try:
        with transaction.atomic(), cursor.cursor.copy(statement) as copy:
            copy.set_types(["int8", "int8", "text", "timestamptz", "float8", "timestamptz"])
            for metric_id, cohort, observed_at, value in new:
                copy.write_row((metric_id, feed_id, cohort, observed_at, value, now))
    except (IntegrityError, psycopg.errors.UniqueViolation):
        return _insert_skipping_held(cursor, feed_id, rows, now, fresh_after)
    return len(new), sum(1 for row in new if row[2] > fresh_after)


def _held_keys(cursor, feed_id: int, rows) -> set[tuple]:
    """(metric, cohort, observed_at) of this feed's rows already stored among `rows`' metrics
    and time range: none for a feed delivering new data, the batch for a re-send."""
    metric_ids = sorted({row[0] for row in rows})
    moments = [row[2] for row in rows]
    cursor.execute(
        f"SELECT metric_id, cohort, observed_at FROM {_TABLE} "  # noqa: S608 - our table
        "WHERE feed_id = %s AND metric_id = ANY(%s) AND observed_at BETWEEN %s AND %s",
        [feed_id, metric_ids, min(moments), max(moments)],
    )
    return set(cursor.fetchall())


def _insert_skipping_held(cursor, feed_id: int, rows, now: datetime, fresh_after: datetime):
    """The batch through a temporary table and INSERT ... ON CONFLICT DO NOTHING: for when
    another delivery stored some of the same rows while this one was being written.

    Runs inside store()'s transaction; the temporary table is dropped at once, so a second
    batch in the same outer transaction can create it again (ON COMMIT DROP is only a net).
    """
    cursor.execute(
        f"CREATE TEMPORARY TABLE {_STAGING} "
        "(metric_id bigint, cohort text, observed_at timestamptz, value float8) ON COMMIT DROP"
    )
    with cursor.cursor.copy(f"COPY {_STAGING} FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(["int8", "text", "timestamptz", "float8"])
        for row in rows:
            copy.write_row(row)
    cursor.execute(
        f"""
        WITH inserted AS (
            INSERT INTO {_TABLE} (metric_id, feed_id, cohort, observed_at, value, ingested_at)
            SELECT metric_id, %s, cohort, observed_at, value, %s FROM {_STAGING}
            ORDER BY metric_id, cohort, observed_at
            ON CONFLICT (metric_id, cohort, observed_at, feed_id) DO NOTHING
            RETURNING observed_at
        )
        SELECT count(*), count(*) FILTER (WHERE observed_at > %s) FROM inserted
        """,  # noqa: S608 - the table names are ours, every value is a parameter
        [feed_id, now, fresh_after],
    )
    created, fresh = cursor.fetchone()
    cursor.execute(f"DROP TABLE {_STAGING}")
    return created, fresh
