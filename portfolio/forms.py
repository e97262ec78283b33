"""Framing forms: the initiative and its primary success metric, edited together."""

from decimal import Decimal

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q

from metrics.models import Aggregation, Metric
from portfolio.models import FRAMING_FIELDS, BusinessUnit, Initiative
from portfolio.queries import possible_owners, possible_sponsors


class PersonChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return obj.get_full_name() or obj.username


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
            self.fields[name] = PersonChoiceField(
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


def _window_bounds(form) -> None:
    """The browser allows the window the server allows: 1 to 365 days."""
    field = form.fields["comparison_window_days"]
    field.widget.attrs.update(min=1, max=365)


def _plain_numbers(form) -> None:
    """Thresholds as a person typed them: 46, not the column's 46.000000."""
    for name in ("ship_threshold", "baseline"):
        value = form.initial.get(name)
        if isinstance(value, Decimal):
            form.initial[name] = f"{value.normalize():f}"


class PrimaryMetricForm(forms.ModelForm):
    """The primary success metric. Left empty, no metric is created (gate 1 will say so)."""

    class Meta:
        model = Metric
        fields = [
            "name",
            "unit",
            "direction",
            "ship_threshold",
            "baseline",
            "aggregation",
            "comparison_window_days",
        ]
        labels = {"name": "Metric name", "comparison_window_days": "Comparison window (days)"}

    def __init__(self, *args, frozen: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        _plain_numbers(self)
        _window_bounds(self)
        for name in ("name", "unit"):
            self.fields[name].required = False
        # Left out of a post, the aggregation stays what it was (mean for a new metric).
        self.fields["aggregation"].required = False
        self.frozen = frozen
        if frozen:
            # After gate 1 the definition changes only by a recorded reframe: the fields are
            # shown, and whatever is posted for them is ignored.
            for field in self.fields.values():
                field.disabled = True

    def clean_aggregation(self) -> str:
        return (
            self.cleaned_data.get("aggregation") or self.instance.aggregation or (Aggregation.MEAN)
        )

    def has_metric(self) -> bool:
        data = self.cleaned_data
        return bool(
            data.get("name")
            or data.get("unit")
            or data.get("ship_threshold") is not None
            or data.get("baseline") is not None
        )

    def clean(self):
        data = super().clean()
        if self.instance.pk and not self.has_metric():
            raise forms.ValidationError("The primary metric cannot be emptied; change its values.")
        if self.has_metric():
            if not data.get("name"):
                self.add_error("name", "Name the metric.")
            if not data.get("unit"):
                self.add_error("unit", "Give the metric a unit.")
        return data

    def validate_unique(self):
        # The form's instance has no initiative yet on create; the service sets it.
        pass


class ReframeForm(forms.ModelForm):
    """A new success definition for the primary metric, with the rationale for it."""

    rationale = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=5000,
        help_text="Why the success definition changes. Recorded for good, like a gate decision.",
    )

    class Meta:
        model = Metric
        fields = PrimaryMetricForm.Meta.fields
        labels = PrimaryMetricForm.Meta.labels

    def __init__(self, *args, rationale_label: str = "Rationale", **kwargs):
        super().__init__(*args, **kwargs)
        _plain_numbers(self)
        _window_bounds(self)
        self.fields["rationale"].label = rationale_label

    def clean_rationale(self) -> str:
        text = self.cleaned_data["rationale"].strip()
        if not text:
            raise forms.ValidationError("Give the rationale.")
        return text

    def validate_unique(self):
        pass  # the metric is edited in place; its slug and initiative do not change

    def values(self) -> dict:
        return {f: self.cleaned_data[f] for f in self.Meta.fields if f in self.cleaned_data}


class DeclineForm(forms.Form):
    note = forms.CharField(
        label="Why decline",
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class DashboardFilter(forms.Form):
    unit = forms.ModelChoiceField(
        required=False,
        queryset=BusinessUnit.objects.all(),
        to_field_name="slug",
        empty_label="All business units",
        label="Business unit",
    )
    sponsor = PersonChoiceField(
        required=False, queryset=get_user_model().objects.none(), empty_label="All sponsors"
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sponsor"].queryset = (
            get_user_model()
            .objects.filter(
                pk__in=Initiative.objects.filter(sponsor__isnull=False).values("sponsor")
            )
            .order_by("first_name")
        )

    def values(self) -> dict:
        if not self.is_bound:
            return {}
        self.is_valid()
        return {k: v for k, v in self.cleaned_data.items() if k not in self.errors}
