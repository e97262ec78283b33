"""Framing forms: the initiative and its primary success metric, edited together."""

from django import forms
from django.contrib.auth import get_user_model

from metrics.models import Metric
from portfolio.models import BusinessUnit, Initiative


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
        fields = [
            "title",
            "summary",
            "business_unit",
            "sponsor",
            "business_owner",
            "operational_owner",
            "delivery_lead",
            "decision_changed",
            "security_model",
            "logging_evidence",
            "narrow_audience",
        ]
        widgets = {
            "summary": forms.Textarea(attrs={"rows": 3}),
            "decision_changed": forms.Textarea(attrs={"rows": 3}),
            "security_model": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        people = get_user_model().objects.filter(is_active=True).order_by("first_name", "username")
        for name in ("sponsor", "business_owner", "operational_owner", "delivery_lead"):
            field = self.fields[name]
            self.fields[name] = PersonChoiceField(
                queryset=people,
                required=False,
                empty_label="— nobody named —",
                label=field.label,
                help_text=field.help_text,
            )
        self.fields["business_unit"].queryset = BusinessUnit.objects.all()

    def clean_title(self) -> str:
        title = self.cleaned_data["title"].strip()
        if not title:
            raise forms.ValidationError("Give the initiative a title.")
        return title


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
            "comparison_window_days",
        ]
        labels = {"name": "Metric name", "comparison_window_days": "Comparison window (days)"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("name", "unit"):
            self.fields[name].required = False

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
