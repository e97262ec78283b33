"""The dashboard's filter."""

from django import forms
from django.contrib.auth import get_user_model

from portfolio.models import BusinessUnit
from portfolio.queries import sponsors_named


class DashboardFilter(forms.Form):
    unit = forms.ModelChoiceField(
        required=False,
        queryset=BusinessUnit.objects.all(),
        to_field_name="slug",
        empty_label="All business units",
        label="Business unit",
    )
    sponsor = forms.ModelChoiceField(
        required=False, queryset=get_user_model().objects.none(), empty_label="All sponsors"
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sponsor"].queryset = sponsors_named()

    def values(self) -> dict:
        if not self.is_bound:
            return {}
        self.is_valid()
        return {k: v for k, v in self.cleaned_data.items() if k not in self.errors}
