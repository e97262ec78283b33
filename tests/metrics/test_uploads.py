"""The CSV upload's two steps without HTTP: metrics.uploads previews, then confirms."""

from datetime import timedelta

import pytest
from django.core import signing
from django.utils import timezone

from metrics import services, uploads
from metrics.models import Delivery, DeliverySource
from tests.metrics.helpers import stored

HEADER = "metric,cohort,observed_at,value"


@pytest.fixture
def feed(live):
    return live[0]


def csv_text(metric, *rows) -> str:
    """The header, then one line per (cohort, hours ago, value) row."""
    rows = rows or (("pilot", 1, "90.5"), ("pilot", 2, "88"), ("baseline", 1, "80"))
    moment = timezone.now()
    lines = [
        f"{metric.slug},{c},{(moment - timedelta(hours=h)).isoformat()},{v}" for c, h, v in rows
    ]
    return "\n".join([HEADER, *lines]) + "\n"


def test_a_valid_file_is_summed_up_and_signed_and_nothing_is_stored(feed, metric):
    text = csv_text(metric)
    preview = uploads.preview(feed, text)
    assert preview.problems == []
    assert preview.summary["count"] == 3
    assert preview.summary["counts"] == [(metric.name, "baseline", 1), (metric.name, "pilot", 2)]
    assert preview.summary["first"] < preview.summary["last"]
    assert uploads.opened(preview.payload) == (feed.pk, text)
    assert stored() == 0


def test_a_bad_file_is_previewed_as_its_problems_with_nothing_to_confirm(feed, metric):
    preview = uploads.preview(feed, csv_text(metric, ("nobody", 1, "x")))
    assert [(p.where, p.field) for p in preview.problems] == [(2, "cohort"), (2, "value")]
    assert (preview.summary, preview.payload) == (None, "")


def test_a_file_that_cannot_be_read_is_one_problem(feed):
    preview = uploads.preview(feed, "a,b\n1,2\n")
    assert [(p.where, p.field) for p in preview.problems] == [(1, "")]


def test_an_altered_payload_is_refused(feed, metric):
    payload = uploads.preview(feed, csv_text(metric)).payload
    with pytest.raises(signing.BadSignature):
        uploads.opened(payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB"))


def test_confirming_stores_the_file_as_an_upload_by_its_person(feed, metric, manager):
    text = csv_text(metric)
    done = uploads.confirm(feed=feed, text=text, user=manager)
    assert (done.problems, done.refusal) == ([], "")
    assert (done.stored.created, done.stored.duplicates) == (3, 0)
    delivery = Delivery.objects.get(feed=feed)
    assert (delivery.source, delivery.uploaded_by) == (DeliverySource.CSV, manager)

    again = uploads.confirm(feed=feed, text=text, user=manager)
    assert (again.stored.created, again.stored.duplicates) == (0, 3)
    assert stored() == 3


def test_a_file_gone_bad_since_the_preview_is_refused_on_confirmation(feed, metric, manager):
    text = csv_text(metric)
    metric.delete()
    done = uploads.confirm(feed=feed, text=text, user=manager)
    assert [p.field for p in done.problems] == ["metric"] * 3
    assert done.stored is None and stored() == 0


def test_a_feed_paused_since_the_preview_refuses_the_confirmation(feed, metric, manager):
    services.pause_feed(feed=feed, user=manager, reason="Vendor outage.")
    done = uploads.confirm(feed=feed, text=csv_text(metric), user=manager)
    assert done.problems == [] and done.stored is None
    assert "is paused since" in done.refusal and "Nothing was stored" in done.refusal
    assert stored() == 0
