import zoneinfo

from django import forms

from notifications.models import Kind

ZONES = sorted(zoneinfo.available_timezones())


class PreferencesForm(forms.Form):
    """Email on or off per kind (in-app is always on), and the person's time zone."""

    time_zone = forms.ChoiceField(
        label="Your time zone",
        required=False,
        help_text="Times in Gantry and in its mail are shown in it. Blank: the organisation's.",
    )

    def __init__(self, *args, organisation_zone: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = [("", f"The organisation's ({organisation_zone})")] + [
            (zone, zone) for zone in ZONES
        ]
        for kind in Kind:
            self.fields[f"email_{kind.value}"] = forms.BooleanField(
                label=kind.label, required=False
            )

    def email_choices(self) -> dict[str, bool]:
        return {kind.value: self.cleaned_data[f"email_{kind.value}"] for kind in Kind}
