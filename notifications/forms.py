import zoneinfo
from datetime import timedelta

from django import forms

from notifications import snooze
from notifications.models import Kind

ZONES = sorted(zoneinfo.available_timezones())


class PreferencesForm(forms.Form):
    """Email on or off per kind (in-app is always on), and the person's time zone."""

    time_zone = forms.ChoiceField(
        label="Your time zone",
        required=False,
        help_text="Gantry's pages and mail show times in it.",
    )

    def __init__(self, *args, organisation_zone: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = [
            ("", f"The organisation's time zone ({organisation_zone})")
        ] + [(zone, zone.replace("_", " ")) for zone in ZONES]
        for kind in Kind:
            self.fields[f"email_{kind.value}"] = forms.BooleanField(
                label=kind.label, required=False
            )
        self.fields[f"email_{Kind.DIGEST.value}"].label = "Email me the weekly portfolio digest"
        self.fields[f"email_{Kind.DIGEST.value}"].help_text = (
            "Monday morning: flags raised and cleared, decisions, launches and stops, "
            "conversion this quarter and last, and your own open work."
        )

    def event_fields(self) -> list[forms.BoundField]:
        """One checkbox per event kind, the digest aside (it is not an event)."""
        return [self[f"email_{kind.value}"] for kind in Kind if kind != Kind.DIGEST]

    def digest_field(self) -> forms.BoundField:
        return self[f"email_{Kind.DIGEST.value}"]

    def email_choices(self) -> dict[str, bool]:
        return {kind.value: self.cleaned_data[f"email_{kind.value}"] for kind in Kind}


class SnoozeForm(forms.Form):
    """A flag's reminders held back until a date, and why."""

    until = forms.DateField(
        label="Snooze until",
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={
            "required": "Give the date the reminders start again.",
            "invalid": "Give the date as YYYY-MM-DD.",
        },
    )
    reason = forms.CharField(
        label="Why the reminders can wait",
        max_length=snooze.REASON_MAX,
        error_messages={"required": "Say why the reminders can wait."},
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The browser's date picker offers only the dates the rule allows.
        today = snooze.today()
        self.fields["until"].widget.attrs.update(
            min=(today + timedelta(days=1)).isoformat(),
            max=(today + timedelta(days=snooze.MAX_DAYS)).isoformat(),
        )

    def clean(self):
        data = super().clean()
        if "until" in data and "reason" in data:
            for field, messages in snooze.check(until=data["until"], reason=data["reason"]).items():
                for message in messages:
                    self.add_error(field, message)
        return data
