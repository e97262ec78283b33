from django import forms
from django.contrib.auth import get_user_model

from metrics.ingest import MAX_CSV_BYTES, refusal
from metrics.models import DataFeed
from metrics.services import MAX_REASON
from portfolio.forms import PersonChoiceField


class DataFeedForm(forms.ModelForm):
    class Meta:
        model = DataFeed
        fields = ["name", "kind", "owner", "freshness_hours"]

    def __init__(self, *args, initiative, **kwargs):
        super().__init__(*args, **kwargs)
        self.initiative = initiative
        self.fields["owner"] = PersonChoiceField(
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
