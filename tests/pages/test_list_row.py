"""The initiative list's rows, written in Python by `list_row`: the markup the template
wrote, every value escaped."""

import re

import pytest
from django.template import Context, Template

from metrics.models import Verdict
from pages import listing
from pages.templatetags.gantry import list_row
from tests.factories import (
    BusinessUnitFactory,
    InitiativeFactory,
    MetricFactory,
    PurgatoryFlagFactory,
    UserFactory,
)

# The row as the list's template wrote it before `list_row`, kept as the reference.
TEMPLATE_ROW = Template(
    """{% load gantry %}<tr>
      <td><a href="{{ i.get_absolute_url }}">{{ i.title }}</a></td>
      <td><span class="stage stage-{{ i.stage }}">{{ i.stage_label }}</span></td>
      <td>{{ i.unit }}</td>
      <td>{{ i.business_owner|person }}</td>
      <td>{{ i.delivery_lead|person }}</td>
      <td class="num">{{ i.days_in_stage }}</td>
      <td>{% if i.primary_verdict %}<span class="verdict verdict-{{ i.primary_verdict }}">{{ i.verdict_label }}</span>{% else %}<span class="muted small">—</span>{% endif %}</td>
      <td>{% for f in i.active_flags %}<span class="flag-kind" title="{{ f.reason }}">{{ f.get_kind_display }}</span> {% empty %}<span class="muted small">—</span>{% endfor %}</td>
    </tr>"""  # noqa: E501
)

HOSTILE = "<script>alert('x')</script> & \"quoted\""


def squeeze(markup: str) -> str:
    return re.sub(r">\s+<", "><", markup.strip())


def row_of(initiative) -> listing.Row:
    (row,) = listing.rows([initiative.pk])
    return row


@pytest.fixture
def plain(db):
    return InitiativeFactory(title="Claims triage")


@pytest.fixture
def hostile(db):
    person = UserFactory(first_name=HOSTILE, last_name="<b>")
    initiative = InitiativeFactory(
        title=HOSTILE,
        business_unit=BusinessUnitFactory(name=HOSTILE),
        business_owner=person,
        delivery_lead=person,
    )
    MetricFactory(initiative=initiative, latest_verdict=Verdict.BELOW)
    PurgatoryFlagFactory(initiative=initiative, kind="stuck", reason=HOSTILE)
    PurgatoryFlagFactory(initiative=initiative, kind="no_upkeep", reason="'\"<>&")
    return initiative


@pytest.mark.parametrize("name", ["plain", "hostile"])
def test_a_row_is_the_markup_the_template_wrote(request, name):
    row = row_of(request.getfixturevalue(name))
    assert squeeze(list_row(row)) == squeeze(TEMPLATE_ROW.render(Context({"i": row})))


def test_every_value_of_a_row_is_escaped(hostile):
    markup = list_row(row_of(hostile))
    assert "<script>" not in markup and "<b>" not in markup
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;quoted&quot;" in markup
    assert 'title="&#x27;&quot;&lt;&gt;&amp;"' in markup
    assert '<span class="verdict verdict-below">Below threshold</span>' in markup


def test_a_missing_person_status_or_flag_is_shown_as_missing(plain):
    markup = list_row(row_of(plain))
    assert markup.count('<span class="missing">nobody named</span>') == 2
    assert markup.count('<span class="muted small">—</span>') == 2
    assert f'<a href="/initiatives/{plain.slug}/">Claims triage</a>' in markup


def test_the_list_page_shows_the_rows_escaped(client, hostile):
    client.force_login(UserFactory(role="viewer"))
    response = client.get("/initiatives/")
    assert response.status_code == 200
    body = response.content.decode()
    assert f'href="/initiatives/{hostile.slug}/"' in body
    assert "<script>alert" not in body
