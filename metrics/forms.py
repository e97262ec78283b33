from decimal import Decimal

from django import forms
from django.contrib.auth import get_user_model

from metrics.ingest import MAX_CSV_BYTES, refusal
from metrics.models import Aggregation, DataFeed, Metric
from metrics.services import MAX_REASON
from portfolio.services import METRIC_FIELDS


class DataFeedForm(forms.ModelForm):
    class Meta:
        model = DataFeed
        fields = ["name", "kind", "owner", "freshness_hours"]

    def __init__(self, *args, initiative, **kwargs):
        super().__init__(*args, **kwargs)
        self.initiative = initiative
        self.fields["owner"] = forms.ModelChoiceField(
            queryset=get_user_model().objects.filter(is_active=True).order_by("first_name"),
            required=False,
            empty_label="— nobody named —",
            help_text=self.fields["owner"].help_text,
        )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if DataFeed.objects.filter(initiative=self.initiative, name__iexact=name).exists():
            raise forms.ValidationError("This initiative already has a feed of that name.")
        return name


class CsvUploadForm(forms.Form):
    feed = forms.ModelChoiceField(queryset=DataFeed.objects.none(), empty_label=None)
    file = forms.FileField(
        help_text="Columns metric, cohort, observed_at, value; one observation per row."
    )

    def __init__(self, *args, initiative, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["feed"].queryset = DataFeed.objects.filter(initiative=initiative)

    def clean_feed(self) -> DataFeed:
        feed = self.cleaned_data["feed"]
        if not feed.is_active:
            raise forms.ValidationError(refusal(feed))
        return feed

    def clean_file(self) -> str:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_CSV_BYTES:
            raise forms.ValidationError(f"The file is larger than {MAX_CSV_BYTES // 2**20} MB.")
        raw = upload.read()
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError("The file is not UTF-8 text.") from None


class FeedReasonForm(forms.Form):
    """Why a feed is paused, resumed or retired: kept with its history and the audit trail."""

    reason = forms.CharField(
        max_length=MAX_REASON,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Kept in the feed's history; while paused, every refused delivery is told it.",
    )


class RotateForm(forms.Form):
    reason = forms.CharField(
        max_length=MAX_REASON,
        required=False,
        label="Reason (optional)",
        help_text="e.g. the old token was exposed, or its holder left.",
    )


def _window_bounds(form) -> None:
    """The browser allows the window the server allows: 1 to 365 days."""
    field = form.fields["comparison_window_days"]
    field.widget.attrs.update(min=1, max=365)


def _plain_numbers(form) -> None:
    """Thresholds as a person typed them: 46, not the column's 46.000000."""
    for name in ("ship_threshold", "baseline", "unit_value", "monthly_volume"):
        value = form.initial.get(name)
        if isinstance(value, Decimal):
            form.initial[name] = f"{value.normalize():f}"


def _currency_code(form) -> str:
    """A currency code as ISO 4217 writes it, whatever case it was typed in."""
    return (form.cleaned_data.get("value_currency") or "").strip().upper()


class PrimaryMetricForm(forms.ModelForm):
    """The primary success metric. Left empty, no metric is created (gate 1 will say so)."""

    class Meta:
        model = Metric
        fields = list(METRIC_FIELDS)
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

    clean_value_currency = _currency_code

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

    clean_value_currency = _currency_code

    def clean_rationale(self) -> str:
        text = self.cleaned_data["rationale"].strip()
        if not text:
            raise forms.ValidationError("Give the rationale.")
        return text

    def validate_unique(self):
        pass  # the metric is edited in place; its slug and initiative do not change

    def values(self) -> dict:
        return {f: self.cleaned_data[f] for f in self.Meta.fields if f in self.cleaned_data}
