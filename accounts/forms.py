from django import forms

from accounts import tokens
from accounts.models import Scope


class TokenForm(forms.Form):
    name = forms.CharField(max_length=80, help_text="What uses it, e.g. “quarterly report job”.")
    scope = forms.ChoiceField(
        choices=Scope.choices,
        initial=Scope.READ,
        widget=forms.RadioSelect,
        help_text="Read and write acts within your role, as the pages do.",
    )
    days = forms.IntegerField(
        min_value=1,
        max_value=tokens.MAX_DAYS,
        initial=tokens.DEFAULT_DAYS,
        label="Expires after (days)",
    )
