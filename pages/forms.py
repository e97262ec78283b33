"""The filters of the dashboard and the list, and service errors onto forms."""

import re
from collections.abc import Callable

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet, Value
from django.db.models.functions import Concat, Lower
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from portfolio.models import BusinessUnit
from portfolio.queries import sponsors_named

SUGGESTIONS = 20  # people offered as one types
LABELLED = re.compile(r"^(?P<name>.*)\((?P<username>[^()\s]+)\)$")


def person_label(user) -> str:
    """How a person is offered and shown in a person filter: "Ada Lovelace (ada)", unique
    even when two people share a name."""
    return f"{user} ({user.username})" if user.get_full_name() else user.username


def people_matching(people: QuerySet, text: str) -> QuerySet:
    """`people` whose full name, last name or username starts with `text` (ignoring case),
    by name."""
    text = text.strip()
    full = Concat("first_name", Value(" "), "last_name")
    return (
        people.annotate(full=Lower(full))
        .filter(
            Q(full__startswith=text.lower())
            | Q(last_name__istartswith=text)
            | Q(username__istartswith=text)
        )
        .order_by("first_name", "last_name", "username")
    )


class QuickInput(forms.TextInput):
    """Django's text input, markup for markup, written in Python (see `QuickSelect`)."""

    def render(self, name, value, attrs=None, renderer=None):
        widget = self.get_context(name, value, attrs)["widget"]
        value = "" if widget["value"] is None else format_html(' value="{}"', widget["value"])
        return format_html(
            '<input type="{}" name="{}"{}{}>',
            widget["type"],
            widget["name"],
            value,
            _attrs(widget["attrs"]),
        )


class PersonFilter(forms.CharField):
    """A person to filter by, typed rather than picked from a list of everyone: an id (from
    a link), "Name (username)" (from the suggestions), a username or a full name. The
    suggestions come from `people-suggest`, so the page never renders all the people."""

    widget = QuickInput

    def __init__(self, people: Callable[[], QuerySet], *, kind: str, **kwargs):
        self.people, self.kind = people, kind
        super().__init__(required=False, max_length=150, **kwargs)

    def widget_attrs(self, widget):
        return {
            **super().widget_attrs(widget),
            "autocomplete": "off",
            "data-suggest": self.kind,
            "list": f"{self.kind}-suggestions",
            "placeholder": "Type a name",
        }

    def clean(self, value):
        text = super().clean(value).strip()
        if not text:
            return None
        people = self.people()
        if text.isdigit():
            found = list(people.filter(pk=int(text))[:1])
        elif labelled := LABELLED.match(text):
            found = list(people.filter(username=labelled["username"])[:1])
        else:
            # Typed without the suggestions: an exact name, else the one person it begins.
            full = Concat("first_name", Value(" "), "last_name")
            found = list(
                people.annotate(full=Lower(full)).filter(
                    Q(username__iexact=text) | Q(full=text.lower())
                )[:2]
            ) or list(people_matching(people, text)[:2])
        if len(found) > 1:
            raise ValidationError(
                f"More than one {self.kind} matches “{text}”: choose one from the suggestions."
            )
        if not found:
            raise ValidationError(f"No {self.kind} matches “{text}”; showing every {self.kind}.")
        return found[0]


class QuickSelect(forms.Select):
    """Django's select, markup for markup, written in Python: its template renders two more
    templates per option, which made the list's filters cost about as much as its rows."""

    def render(self, name, value, attrs=None, renderer=None):
        widget = self.get_context(name, value, attrs)["widget"]
        parts = [format_html('<select name="{}"{}>', widget["name"], _attrs(widget["attrs"]))]
        for group, options, _ in widget["optgroups"]:
            if group:
                parts.append(format_html('\n  <optgroup label="{}">', group))
            parts += [
                format_html(
                    '\n  <option value="{}"{}>{}</option>\n',
                    str(option["value"]),
                    _attrs(option["attrs"]),
                    option["label"],
                )
                for option in options
            ]
            if group:
                parts.append("\n  </optgroup>")
        parts.append("\n</select>")
        return mark_safe("".join(parts))  # noqa: S308 - every part is escaped above


def _attrs(attrs: dict) -> str:
    """HTML attributes as Django's attrs.html writes them: True alone, False left out."""
    return mark_safe(  # noqa: S308 - each attribute is escaped by format_html
        "".join(
            format_html(" {}", name) if value is True else format_html(' {}="{}"', name, value)
            for name, value in attrs.items()
            if value is not False
        )
    )


def unit_field(empty_label: str) -> forms.ModelChoiceField:
    """The business unit filter, named by slug in the URL."""
    return forms.ModelChoiceField(
        required=False,
        queryset=BusinessUnit.objects.all(),
        to_field_name="slug",
        empty_label=empty_label,
        label="Business unit",
        widget=QuickSelect,
    )


def sponsor_field(empty_label: str) -> forms.ModelChoiceField:
    """The dashboard's sponsor filter; `DashboardFilter` gives it its choices per form."""
    return forms.ModelChoiceField(
        required=False, queryset=get_user_model().objects.none(), empty_label=empty_label
    )


class ScopeFilter(forms.Form):
    """A filter from the URL; an invalid value filters nothing rather than erroring, and
    the page may say why (`errors`)."""

    def values(self) -> dict:
        """The valid filters; a bad value in the URL is dropped, not an error page."""
        if not self.is_bound:
            return {}
        self.is_valid()
        values = {k: v for k, v in self.cleaned_data.items() if k not in self.errors}
        # A person found from an id or part of a name is shown by their full label.
        found = {
            name: person_label(values[name])
            for name, field in self.fields.items()
            if isinstance(field, PersonFilter) and values.get(name)
        }
        if found:
            self.data = self.data.copy()
            for name, label in found.items():
                self.data[name] = label
        return values


class DashboardFilter(ScopeFilter):
    unit = unit_field("All business units")
    sponsor = sponsor_field("All sponsors")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sponsor"].queryset = sponsors_named()
