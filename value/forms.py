"""Forms of the value app: a budget request and the sponsor's decision on one."""

from django import forms

from portfolio.queries import possible_owners
from value.models import BudgetKind, Outcome


class BudgetRequestForm(forms.Form):
    kind = forms.ChoiceField(choices=BudgetKind.choices, label="Kind of budget")
    amount = forms.DecimalField(
        max_digits=14,
        decimal_places=2,
        min_value=0.01,
        help_text="In whole cents, e.g. 24000.00.",
    )
    currency = forms.CharField(
        max_length=3, min_length=3, help_text="Three-letter code (ISO 4217), e.g. EUR."
    )
    starts_on = forms.DateField(
        label="Period starts", widget=forms.DateInput(attrs={"type": "date"})
    )
    ends_on = forms.DateField(label="Period ends", widget=forms.DateInput(attrs={"type": "date"}))
    purpose = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What the money pays for. The evidence it rests on is attached when you "
        "send the request.",
    )
    answerable = forms.ModelChoiceField(
        queryset=None,
        label="Person answerable",
        help_text="Who answers for the money once it is granted.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["answerable"].queryset = possible_owners()

    def clean_currency(self) -> str:
        return self.cleaned_data["currency"].strip().upper()

    def clean(self):
        data = super().clean()
        starts, ends = data.get("starts_on"), data.get("ends_on")
        if starts and ends and ends < starts:
            self.add_error("ends_on", "The period cannot end before it starts.")
        return data


class BudgetDecisionForm(forms.Form):
    outcome = forms.ChoiceField(choices=Outcome.choices, widget=forms.RadioSelect)
    rationale = forms.CharField(
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Recorded for good in the initiative's history, like a gate decision.",
    )
