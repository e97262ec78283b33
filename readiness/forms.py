from django import forms
from django.contrib.auth import get_user_model

from readiness.queries import assignable_people


class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(queryset=get_user_model().objects.none(), required=False,
                                 empty_label="— unassigned —")  # fmt: skip
    version = forms.IntegerField(widget=forms.HiddenInput)
    # Sent by the "Assign anyway" button only: the person has read that nobody would be
    # left to decide the review.
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, choices: list | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["assignee"]
        field.queryset = assignable_people()
        if choices is not None:
            # The review page renders one form per item: it reads the people once for all.
            field.choices = choices

    @classmethod
    def people_choices(cls) -> list:
        """The assignee choices, read once, for `AssignForm(choices=...)`."""
        return list(cls().fields["assignee"].choices)


class CheckForm(forms.Form):
    evidence_text = forms.CharField(
        label="Evidence", widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=5000
    )
    evidence_url = forms.URLField(
        label="Evidence link", required=False, max_length=500, assume_scheme="https"
    )
    cost_per_transaction = forms.DecimalField(
        required=False, min_value=0, max_digits=14, decimal_places=6
    )
    monthly_volume = forms.DecimalField(
        label="Expected monthly volume", required=False, min_value=0, max_digits=16,
        decimal_places=2,
    )  # fmt: skip
    currency = forms.CharField(required=False, max_length=3, initial="EUR")
    version = forms.IntegerField(widget=forms.HiddenInput)

    def __init__(self, *args, asks_numbers: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if not asks_numbers:
            for name in ("cost_per_transaction", "monthly_volume", "currency"):
                del self.fields[name]


class VersionForm(forms.Form):
    version = forms.IntegerField(widget=forms.HiddenInput)


class WorkDoneForm(forms.Form):
    evidence_text = forms.CharField(
        label="What shows it is done",
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        max_length=5000,
    )
    evidence_url = forms.URLField(
        label="Evidence link", required=False, max_length=500, assume_scheme="https"
    )


class WorkReopenForm(forms.Form):
    reason = forms.CharField(
        label="Why reopen", widget=forms.Textarea(attrs={"rows": 2}), max_length=1000
    )
