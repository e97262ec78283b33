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


class _ItemChoices(forms.MultipleChoiceField):
    """Checkboxes of the items still to check, whose values are "item id:version seen".

    Any item of the review is a valid value whatever its version: an item checked or
    changed since the page was read is the service's refusal (a conflict, saying so), not a
    "not one of the available choices" puzzle."""

    item_ids: frozenset = frozenset()

    def valid_value(self, value) -> bool:
        item, _, version = str(value).partition(":")
        return item.isdigit() and version.isdigit() and int(item) in self.item_ids


class AssignManyForm(forms.Form):
    """Several items of a review to one person in one post. Each checkbox carries the
    item's id and the version the person saw ("12:3"), so a change made meanwhile refuses
    the whole assignment instead of overwriting it."""

    items = _ItemChoices(
        label="Items",
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one item to assign."},
    )
    assignee = forms.ModelChoiceField(
        label="Assign to",
        queryset=get_user_model().objects.none(),
        empty_label="— choose a person —",
        error_messages={"required": "Choose the person to give the items to."},
    )
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, review_items: list = (), choices: list | None = None, **kwargs):
        super().__init__(*args, prefix="many", **kwargs)
        field = self.fields["items"]
        field.item_ids = frozenset(item.pk for item in review_items)
        field.choices = [
            (f"{item.pk}:{item.version}", _item_label(number, item))
            for number, item in enumerate(review_items, start=1)
            if not item.checked
        ]
        people = self.fields["assignee"]
        people.queryset = assignable_people()
        if choices is not None:  # the people read once for the page, without "unassigned"
            people.choices = [("", people.empty_label), *(c for c in choices if c[0] != "")]

    def versions(self) -> dict[int, int]:
        """{item id: the version the person saw} of the items chosen."""
        return dict(map(int, value.split(":")) for value in self.cleaned_data["items"])


def _item_label(number: int, item) -> str:
    held = f"assigned to {item.assignee}" if item.assignee else "unassigned"
    return f"{number}. {item.template_item.title} ({held})"


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
