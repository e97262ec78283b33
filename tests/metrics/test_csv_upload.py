"""CSV upload on an initiative: check and preview first, store only on confirmation.

Rows are numbered as a spreadsheet shows them: the header is row 1, the first data row is
row 2. One bad row rejects the whole file and nothing is stored.
"""

import csv
import io
import re
from datetime import timedelta
from unittest import mock

import pytest
from django.core import signing
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from metrics import ingest, services
from metrics.models import Cohort, FeedKind, Metric, Observation
from metrics.uploads import SIGNING_SALT
from portfolio.roles import Role
from tests.factories import InitiativeFactory, MetricFactory, UserFactory
from tests.metrics.helpers import last_delivery, stored

pytestmark = pytest.mark.django_db

HEADER = "metric,cohort,observed_at,value"


@pytest.fixture
def initiative(db):
    """A framed initiative with all three owners named."""
    return InitiativeFactory(framed=True, operational_owner=UserFactory(role=Role.OWNER))


@pytest.fixture
def feed(live):
    return live[0]


@pytest.fixture
def outsider(owner):
    """An owner, but of another initiative."""
    InitiativeFactory(framed=True, business_owner=owner)
    return owner


def url(initiative) -> str:
    return f"/initiatives/{initiative.slug}/upload/"


def at(hours_ago: float) -> str:
    return (timezone.now() - timedelta(hours=hours_ago)).isoformat()


def csv_file(metric, rows=None, *, header=HEADER, text=None) -> str:
    """A CSV text: the header, then one line per (cohort, hours ago, value) row."""
    if text is not None:
        return text
    if rows is None:
        rows = [("pilot", 1, "90.5"), ("pilot", 2, "88"), ("pilot", 3, "91.25")]
        rows += [("baseline", 1, "80"), ("baseline", 2, "79.5")]
    lines = [header] + [f"{metric.slug},{cohort},{at(h)},{value}" for cohort, h, value in rows]
    return "\n".join(lines) + "\n"


def upload(client, initiative, feed, content, *, name="observations.csv"):
    data = content.encode() if isinstance(content, str) else content
    return client.post(
        url(initiative),
        {"feed": feed.pk, "file": SimpleUploadedFile(name, data, content_type="text/csv")},
    )


def problems(response) -> list[tuple[int, str]]:
    return [(p.where, p.field) for p in response.context["problems"]]


def confirm(client, initiative, payload):
    return client.post(url(initiative), {"payload": payload})


# Preview, then store -----------------------------------------------------------------------------
def test_preview_shows_the_counts_and_stores_nothing(client, manager, initiative, feed, metric):
    client.force_login(manager)

    response = upload(client, initiative, feed, csv_file(metric))

    assert response.status_code == 200
    preview = response.context["preview"]
    assert preview["count"] == 5
    assert preview["counts"] == [(metric.name, "baseline", 2), (metric.name, "pilot", 3)]
    body = response.content.decode()
    assert "Preview: 5 observations for “Resolution events”" in body
    assert "Store 5 observations" in body
    assert 'name="payload"' in body
    assert stored() == 0
    assert last_delivery(feed) is None


def test_confirming_the_preview_stores_the_file_and_recomputes_its_metrics(
    client, manager, initiative, feed, metric, eager, django_capture_on_commit_callbacks
):
    client.force_login(manager)
    payload = upload(client, initiative, feed, csv_file(metric)).context["payload"]

    with django_capture_on_commit_callbacks(execute=True):
        response = confirm(client, initiative, payload)

    assert response.status_code == 302
    assert response["Location"] == initiative.get_absolute_url()
    assert stored() == 5
    assert set(Observation.objects.values_list("feed_id", flat=True)) == {feed.pk}
    assert last_delivery(feed) is not None
    snapshot = Metric.objects.get(pk=metric.pk).latest_snapshot
    assert (snapshot.pilot_count, snapshot.baseline_count) == (3, 2)
    page = client.get(response["Location"]).content.decode()
    assert "Stored 5 new observations from the file (0 already held)." in page


def test_confirming_the_same_file_twice_stores_it_once(client, manager, initiative, feed, metric):
    client.force_login(manager)
    payload = upload(client, initiative, feed, csv_file(metric)).context["payload"]
    confirm(client, initiative, payload)

    response = confirm(client, initiative, payload)

    assert stored() == 5
    page = client.get(response["Location"]).content.decode()
    assert "Stored 0 new observations from the file (5 already held)." in page


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("columns-in-another-order", "value,observed_at,cohort,metric\n90,{t},pilot,{m}\n"),
        ("windows-line-ends", HEADER + "\r\n{m},pilot,{t},90\r\n{m},baseline,{t},80\r\n"),
        ("byte-order-mark", "\ufeff" + HEADER + "\n{m},pilot,{t},90\n"),
        ("spaces-around-header-names", " metric , cohort,observed_at ,value\n{m},pilot,{t},90\n"),
        ("metric-by-id", HEADER + "\n{id},pilot,{t},90\n"),
        ("production-cohort", HEADER + "\n{m},production,{t},90\n"),
        ("blank-lines-at-the-end", HEADER + "\n{m},pilot,{t},90\n\n\n"),
        ("quoted-cells", HEADER + '\n"{m}","pilot","{t}","90.5"\n'),
    ],
)
def test_files_in_the_usual_spreadsheet_shapes_are_accepted(
    client, manager, initiative, feed, metric, name, text
):
    client.force_login(manager)
    content = text.format(m=metric.slug, id=metric.pk, t=at(1))
    response = upload(client, initiative, feed, content)
    assert response.status_code == 200, response.context.get("problems")
    assert response.context["preview"]["count"] >= 1


# Rejected files: nothing stored ------------------------------------------------------------------
def test_a_bad_row_rejects_the_whole_file_listing_each_row_and_column(
    client, manager, initiative, feed, metric
):
    text = "\n".join(
        [
            HEADER,
            f"{metric.slug},pilot,{at(1)},90",  # row 2
            f"{metric.slug},pilot,{at(2)},high",  # row 3: not a number
            f"{metric.slug},pilot,{at(3)},91",  # row 4
            f"{metric.slug},pilot,2026-01-02T10:00:00,92",  # row 5: no timezone
            f"{metric.slug},baseline,{at(4)},80",  # row 6
        ]
    )
    client.force_login(manager)

    response = upload(client, initiative, feed, text)

    assert response.status_code == 400
    assert problems(response) == [(3, "value"), (5, "observed_at")]
    body = response.content.decode()
    assert "The file was rejected — nothing was stored" in body
    assert re.search(r'<td class="num">3</td><td>value</td><td>value “high” is not a number', body)
    assert re.search(r'<td class="num">5</td><td>observed_at</td><td>observed_at has no', body)
    assert "payload" not in response.context
    assert stored() == 0
    assert last_delivery(feed) is None


def test_blank_lines_count_as_rows_like_a_spreadsheet_shows_them(
    client, manager, initiative, feed, metric
):
    text = f"{HEADER}\n{metric.slug},pilot,{at(1)},90\n\n{metric.slug},pilot,{at(2)},x\n"
    client.force_login(manager)
    assert problems(upload(client, initiative, feed, text)) == [(4, "value")]


def test_a_cell_spanning_two_lines_is_one_row(client, manager, initiative, feed, metric):
    text = (
        f'{HEADER}\n"{metric.slug}\nsecond line",pilot,{at(1)},90\n{metric.slug},pilot,{at(2)},x\n'
    )
    client.force_login(manager)
    assert problems(upload(client, initiative, feed, text)) == [(2, "metric"), (3, "value")]


BAD_FILES = {
    # The file as a whole (row 1 is the header)
    "wrong-header": ("metric,cohort,when,value\nm,pilot,2026-01-01T00:00:00Z,1\n", [(1, "")]),
    "missing-column": ("metric,cohort,value\nm,pilot,1\n", [(1, "")]),
    "extra-column": (HEADER + ",note\n{m},pilot,{t},1,x\n", [(1, "")]),
    "no-header": ("{m},pilot,{t},90\n", [(1, "")]),
    "header-only": (HEADER + "\n", [(2, "")]),
    "blank-lines-only": ("\n\n\n", [(1, "")]),
    "more-cells-than-the-header": (HEADER + "\n{m},pilot,{t},90\n{m},pilot,{t},90,1\n", [(3, "")]),
    "a-cell-too-large-to-read": (HEADER + "\n{m},pilot,{t}," + "9" * 200_000 + "\n", [(2, "")]),
    # One row (the first data row is row 2)
    "unknown-metric": (HEADER + "\nno-such-metric,pilot,{t},90\n", [(2, "metric")]),
    "metric-of-another-initiative": (HEADER + "\nelsewhere,pilot,{t},90\n", [(2, "metric")]),
    "nul-character-in-metric": (HEADER + "\n\x00m,pilot,{t},90\n", [(2, "metric")]),
    "unknown-cohort": (HEADER + "\n{m},control,{t},90\n", [(2, "cohort")]),
    "nan": (HEADER + "\n{m},pilot,{t},nan\n", [(2, "value")]),
    "infinity": (HEADER + "\n{m},pilot,{t},inf\n", [(2, "value")]),
    "minus-infinity": (HEADER + "\n{m},pilot,{t},-Infinity\n", [(2, "value")]),
    "overflow": (HEADER + "\n{m},pilot,{t},1e400\n", [(2, "value")]),
    "decimal-comma": (HEADER + '\n{m},pilot,{t},"90,5"\n', [(2, "value")]),
    "empty-value": (HEADER + "\n{m},pilot,{t},\n", [(2, "value")]),
    "short-row": (HEADER + "\n{m},pilot\n", [(2, "observed_at"), (2, "value")]),
    "naive-timestamp": (HEADER + "\n{m},pilot,2026-01-02 10:00:00,90\n", [(2, "observed_at")]),
    "non-iso-timestamp": (HEADER + "\n{m},pilot,02/01/2026 10:00,90\n", [(2, "observed_at")]),
    "future-timestamp": (HEADER + "\n{m},pilot,{future},90\n", [(2, "observed_at")]),
}


@pytest.mark.parametrize(("text", "expected"), BAD_FILES.values(), ids=BAD_FILES.keys())
def test_a_bad_file_is_rejected_naming_row_and_column_and_nothing_is_stored(
    client, manager, initiative, feed, metric, text, expected
):
    MetricFactory(initiative=InitiativeFactory(), slug="elsewhere")
    content = text.format(
        m=metric.slug, t=at(1), future=(timezone.now() + timedelta(days=1)).isoformat()
    )
    client.force_login(manager)

    response = upload(client, initiative, feed, content)

    assert response.status_code == 400
    assert problems(response) == expected
    assert "The file was rejected — nothing was stored" in response.content.decode()
    assert stored() == 0


def test_whole_file_problems_read_as_a_sentence(client, manager, initiative, feed):
    client.force_login(manager)
    response = upload(client, initiative, feed, "metric,cohort,when,value\n")
    body = response.content.decode()
    assert "The file must have the header metric,cohort,observed_at,value; it has" in body
    assert "metric,cohort,when,value." in body


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "The submitted file is empty."),
        ("metric,cohort,observed_at,value\ncafé,pilot,x,1\n".encode("latin-1"), "not UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not UTF-8"),
    ],
    ids=["empty-file", "latin-1", "binary"],
)
def test_an_empty_or_non_utf8_file_is_refused_by_the_form(
    client, manager, initiative, feed, content, message
):
    client.force_login(manager)
    response = upload(client, initiative, feed, content)
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors["file"])
    assert stored() == 0


def test_a_file_over_the_size_limit_is_refused(client, manager, initiative, feed, metric):
    client.force_login(manager)
    row = f"{metric.slug},pilot,{at(1)},90\n"
    content = HEADER + "\n" + row * (ingest.MAX_CSV_BYTES // len(row) + 1)
    response = upload(client, initiative, feed, content)
    assert response.status_code == 400
    assert "larger than 5 MB" in " ".join(response.context["form"].errors["file"])
    assert stored() == 0


def test_a_file_over_the_row_limit_is_rejected(
    client, manager, initiative, feed, metric, monkeypatch
):
    monkeypatch.setattr(ingest, "MAX_CSV_ROWS", 2)
    client.force_login(manager)
    response = upload(client, initiative, feed, csv_file(metric))
    assert response.status_code == 400
    assert problems(response) == [(4, "")]
    assert "The file holds more than 2 rows." in response.content.decode()
    assert stored() == 0


def test_only_this_initiative_s_feeds_can_receive_the_file(client, manager, initiative, metric):
    elsewhere, _ = services.create_feed(
        initiative=InitiativeFactory(),
        user=manager,
        name="Elsewhere",
        kind=FeedKind.LIVE,
        owner=manager,
        freshness_hours=24,
    )
    client.force_login(manager)
    response = upload(client, initiative, elsewhere, csv_file(metric))
    assert response.status_code == 400
    assert "feed" in response.context["form"].errors
    assert stored() == 0


# The signed payload ------------------------------------------------------------------------------
def test_a_tampered_payload_is_refused_and_nothing_is_stored(
    client, manager, initiative, feed, metric
):
    client.force_login(manager)
    payload = upload(client, initiative, feed, csv_file(metric)).context["payload"]
    tampered = payload[:10] + ("A" if payload[10] != "A" else "B") + payload[11:]

    response = confirm(client, initiative, tampered)

    assert response.status_code == 302
    assert response["Location"] == url(initiative)
    assert "The preview expired or was altered" in client.get(url(initiative)).content.decode()
    assert stored() == 0


def test_a_payload_signed_for_another_purpose_is_refused(client, manager, initiative, feed, metric):
    forged = signing.dumps({"feed": feed.pk, "csv": csv_file(metric)}, compress=True)
    client.force_login(manager)
    assert confirm(client, initiative, forged).status_code == 302
    assert stored() == 0


def test_a_preview_older_than_an_hour_is_refused(client, manager, initiative, feed, metric):
    client.force_login(manager)
    payload = upload(client, initiative, feed, csv_file(metric)).context["payload"]
    later = signing.time.time() + 3601
    with mock.patch("django.core.signing.time.time", return_value=later):
        response = confirm(client, initiative, payload)
    assert response["Location"] == url(initiative)
    assert stored() == 0


def test_a_payload_for_another_initiative_s_feed_is_not_found_here(
    client, manager, initiative, feed, metric
):
    other = InitiativeFactory(framed=True)
    client.force_login(manager)
    payload = signing.dumps(
        {"feed": feed.pk, "csv": csv_file(metric)}, salt=SIGNING_SALT, compress=True
    )
    assert confirm(client, other, payload).status_code == 404
    assert stored() == 0


def test_the_file_is_checked_again_on_confirmation(client, manager, initiative, feed):
    second = MetricFactory(initiative=initiative, is_primary=False, slug="to-be-removed")
    client.force_login(manager)
    payload = upload(client, initiative, feed, csv_file(second)).context["payload"]
    second.delete()

    response = confirm(client, initiative, payload)

    assert response.status_code == 400
    assert problems(response)[0] == (2, "metric")
    assert stored() == 0


# Who may upload ----------------------------------------------------------------------------------
@pytest.mark.parametrize("who", ["manager", "business_owner", "delivery_lead", "operational_owner"])
def test_the_programme_manager_and_this_initiative_s_owners_may_upload(
    client, request, initiative, feed, metric, who
):
    user = request.getfixturevalue("manager") if who == "manager" else getattr(initiative, who)
    client.force_login(user)

    assert client.get(url(initiative)).status_code == 200
    preview = upload(client, initiative, feed, csv_file(metric))
    assert preview.status_code == 200
    assert confirm(client, initiative, preview.context["payload"]).status_code == 302
    assert stored() == 5


@pytest.mark.parametrize("who", ["executive", "viewer", "outsider"])
def test_others_get_403_for_every_step_and_nothing_changes(
    client, request, manager, initiative, feed, metric, who
):
    client.force_login(manager)
    payload = upload(client, initiative, feed, csv_file(metric)).context["payload"]
    client.force_login(request.getfixturevalue(who))

    assert client.get(url(initiative)).status_code == 403
    assert upload(client, initiative, feed, csv_file(metric)).status_code == 403
    assert confirm(client, initiative, payload).status_code == 403
    assert stored() == 0
    assert last_delivery(feed) is None


def test_anonymous_visitors_are_sent_to_the_login_page(client, manager, initiative, feed, metric):
    client.force_login(manager)
    payload = upload(client, initiative, feed, csv_file(metric)).context["payload"]
    client.logout()

    for response in (
        client.get(url(initiative)),
        upload(client, initiative, feed, csv_file(metric)),
        confirm(client, initiative, payload),
    ):
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")
    assert stored() == 0


def test_an_unknown_initiative_is_not_found(client, manager):
    client.force_login(manager)
    assert client.get("/initiatives/no-such-initiative/upload/").status_code == 404


# Any file: a clear answer ------------------------------------------------------------------------
@hypothesis_settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
def test_reading_any_text_as_csv_answers_rows_or_problems(text):
    rows, numbers, found = ingest.read_csv(text)
    if found:
        assert rows == [] and numbers == []
        assert all(p.where >= 1 for p in found)
    else:
        assert len(rows) == len(numbers) >= 1
        assert numbers == sorted(set(numbers)) and numbers[0] >= 2
        assert all(set(row) == set(ingest.FIELDS) for row in rows)


CELLS = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)


@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_table_written_as_csv_is_validated_row_by_row(feed, metric, data):
    good = st.tuples(
        st.just(metric.slug),
        st.sampled_from(Cohort.values),
        st.just(at(1)),
        st.floats(allow_nan=False, allow_infinity=False).map(repr),
    )
    rows = data.draw(st.lists(good | st.tuples(CELLS, CELLS, CELLS, CELLS), min_size=1, max_size=6))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(ingest.FIELDS)
    writer.writerows(rows)

    read, numbers, found = ingest.read_csv(out.getvalue())
    batch = ingest.validate(read, feed, from_text=True, numbers=numbers)

    assert found == []
    assert numbers == list(range(2, len(rows) + 2))  # one row per record, the header is row 1
    if batch.ok:
        assert len(batch.rows) == len(rows)
    else:
        assert {p.where for p in batch.problems + batch.foreign} <= set(numbers)
