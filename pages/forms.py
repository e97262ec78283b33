"""The filters of the dashboard and the list, and service errors onto forms."""

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from portfolio.models import BusinessUnit
from portfolio.queries import sponsors_named


def unit_field(empty_label: str) -> forms.ModelChoiceField:
    """The business unit filter, named by slug in the URL."""
    return forms.ModelChoiceField(
        required=False,
        queryset=BusinessUnit.objects.all(),
        to_field_name="slug",
        empty_label=empty_label,
        label="Business unit",
    )


def sponsor_field(empty_label: str) -> forms.ModelChoiceField:
    """The sponsor filter; `ScopeFilter` gives it its choices per form."""
    return forms.ModelChoiceField(
        required=False, queryset=get_user_model().objects.none(), empty_label=empty_label
    )


class ScopeFilter(forms.Form):
    """A filter from the URL with a business unit and a sponsor field; invalid values are
    ignored rather than erroring."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sponsor"].queryset = sponsors_named()

    def values(self) -> dict:
        """The valid filters; a bad value in the URL is dropped, not an error page."""
        if not self.is_bound:
            return {}
        self.is_valid()
        return {k: v for k, v in self.cleaned_data.items() if k not in self.errors}


class DashboardFilter(ScopeFilter):
    unit = unit_field("All business units")
    sponsor = sponsor_field("All sponsors")


def add_errors(form: forms.Form, exc: ValidationError) -> None:
    """A service's ValidationError onto the form: per field where it names one."""
    problems = exc.message_dict if hasattr(exc, "error_dict") else {None: exc.messages}
    for field, errors in problems.items():
        form.add_error(field if field in form.fields else None, errors)
