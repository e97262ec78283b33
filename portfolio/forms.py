"""Framing forms: the initiative and its primary success metric, edited together."""

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q

from portfolio.models import FRAMING_FIELDS, BusinessUnit, Initiative
from portfolio.queries import possible_owners, possible_sponsors


class InitiativeForm(forms.ModelForm):
    logging_evidence = forms.URLField(
        required=False,
        max_length=500,
        assume_scheme="https",
        label=Initiative._meta.get_field("logging_evidence").verbose_name.capitalize(),
        help_text=Initiative._meta.get_field("logging_evidence").help_text,
    )

    class Meta:
        model = Initiative
        fields = list(FRAMING_FIELDS)
        widgets = {
            "summary": forms.Textarea(attrs={"rows": 3}),
            "decision_changed": forms.Textarea(attrs={"rows": 3}),
            "security_model": forms.Textarea(attrs={"rows": 3}),
        }

    reason = forms.CharField(
        label="Reason for these changes",
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Recorded with every change. Required when owners or the sponsor change "
        "after framing.",
    )

    def __init__(self, *args, may_change_people: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("sponsor", "business_owner", "operational_owner", "delivery_lead"):
            field = self.fields[name]
            # Owner fields offer only people whose role may own; the sponsor is an executive.
            people = possible_sponsors() if name == "sponsor" else possible_owners()
            # The person named now stays a choice even if their role has changed since, so
            # that an edit of other fields does not trip over them.
            current = getattr(self.instance, f"{name}_id", None)
            if current is not None:
                people = (
                    get_user_model()
                    .objects.filter(Q(pk__in=people.values("pk")) | Q(pk=current))
                    .order_by("first_name", "username")
                )
            self.fields[name] = forms.ModelChoiceField(
                queryset=people,
                required=False,
                empty_label="— nobody named —",
                label=field.label,
                help_text=field.help_text,
                # Only programme managers change people; for others the fields are shown
                # and ignored if posted.
                disabled=not may_change_people,
            )
        self.fields["business_unit"].queryset = BusinessUnit.objects.all()

    def clean_title(self) -> str:
        title = self.cleaned_data["title"].strip()
        if not title:
            raise forms.ValidationError("Give the initiative a title.")
        return title


class DeclineForm(forms.Form):
    note = forms.CharField(
        label="Why decline",
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
