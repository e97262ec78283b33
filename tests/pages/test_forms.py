"""The filters' shared business unit and sponsor fields, and service errors onto forms."""

import pytest
from django import forms
from django.core.exceptions import ValidationError
from django.http import QueryDict

from gates.forms import add_errors
from pages.forms import DashboardFilter, QuickInput, QuickSelect
from pages.listing import ListFilter
from tests.factories import BusinessUnitFactory, InitiativeFactory, UserFactory


@pytest.mark.parametrize("form_class", [DashboardFilter, ListFilter])
def test_both_filters_offer_the_named_sponsors_and_take_a_unit_by_slug(db, form_class):
    unit, sponsor = BusinessUnitFactory(), UserFactory()
    InitiativeFactory(business_unit=unit, sponsor=sponsor)
    UserFactory()  # sponsors nothing
    form = form_class(QueryDict(f"unit={unit.slug}&sponsor={sponsor.pk}"))
    field = form.fields["sponsor"]
    people = field.queryset if form_class is DashboardFilter else field.people()
    assert list(people) == [sponsor]
    assert form.fields["unit"].label == "Business unit"
    values = form.values()
    assert (values["unit"], values["sponsor"]) == (unit, sponsor)


@pytest.mark.parametrize("form_class", [DashboardFilter, ListFilter])
def test_both_filters_drop_a_bad_value_and_read_nothing_unbound(db, form_class):
    assert form_class().values() == {}
    values = form_class(QueryDict("unit=no-such-unit")).values()
    assert "unit" not in values and values["sponsor"] is None


def test_each_filter_keeps_its_own_empty_labels(db):
    dashboard, listing = DashboardFilter(), ListFilter()
    assert (dashboard.fields["unit"].empty_label, dashboard.fields["sponsor"].empty_label) == (
        "All business units",
        "All sponsors",
    )
    assert listing.fields["unit"].empty_label == "All units"
    assert listing.fields["sponsor"].widget.attrs["placeholder"] == "Type a name"
    assert list(listing.fields) == [
        "q", "stage", "unit", "owner", "sponsor", "flag", "verdict", "progress", "stop_reason",
        "cohort", "launched_in", "changed", "running_cost", "sort",
    ]  # fmt: skip


class NoteForm(forms.Form):
    note = forms.CharField(required=False)


def test_a_service_error_naming_a_field_lands_on_that_field():
    form = NoteForm({"note": "x"})
    form.is_valid()
    add_errors(form, ValidationError({"note": "Too short.", "elsewhere": "Not here."}))
    assert form.errors["note"] == ["Too short."]
    assert form.non_field_errors() == ["Not here."]


def test_a_service_error_without_fields_lands_on_the_form():
    form = NoteForm({"note": "x"})
    form.is_valid()
    add_errors(form, ValidationError(["The review is closed.", "Reload the page."]))
    assert form.non_field_errors() == ["The review is closed.", "Reload the page."]


CHOICES = [("", "All <kinds>"), ("a", "A & B"), ("Group", [("g1", "One"), ("g2", "Two")]), (3, "3")]


@pytest.mark.parametrize("value", ["", "a", "g2", 3, "3", None, "unknown"])
@pytest.mark.parametrize("attrs", [None, {"id": "id_x", "data-x": '"<', "required": True}])
def test_the_quick_select_writes_what_djangos_select_writes(value, attrs):
    expected = forms.Select(choices=CHOICES).render("x", value, attrs)
    assert QuickSelect(choices=CHOICES).render("x", value, attrs) == expected


def test_the_list_filters_render_their_selects_without_templates(db):
    unit = BusinessUnitFactory(slug="claims", name="Claims & co")
    form = ListFilter(QueryDict("stage=thin_slice&unit=claims"))
    form.values()
    assert '<option value="thin_slice" selected>Thin slice</option>' in str(form["stage"])
    assert f'<option value="{unit.slug}" selected>Claims &amp; co</option>' in str(form["unit"])
    assert all(
        isinstance(form.fields[name].widget, QuickSelect)
        for name in ("stage", "unit", "flag", "verdict", "progress", "stop_reason", "changed")
    )


@pytest.mark.parametrize("value", ["", "text", '"<quoted> & more', 3, None])
@pytest.mark.parametrize("attrs", [None, {"id": "id_x", "placeholder": "2026Q3", "size": 7}])
def test_the_quick_input_writes_what_djangos_text_input_writes(value, attrs):
    expected = forms.TextInput(attrs={"data-x": "a&b"}).render("x", value, attrs)
    assert QuickInput(attrs={"data-x": "a&b"}).render("x", value, attrs) == expected


def test_the_list_filters_render_their_text_inputs_without_templates(db):
    form = ListFilter(QueryDict("q=a%22b&cohort=2026Q3"))
    assert str(form["q"]) == (
        '<input type="text" name="q" value="a&quot;b" maxlength="100" id="id_q">'
    )
    assert all(
        isinstance(form.fields[name].widget, QuickInput)
        for name in ("q", "owner", "sponsor", "cohort", "launched_in", "running_cost")
    )
