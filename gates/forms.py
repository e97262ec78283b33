from django import forms
from django.core.exceptions import ValidationError

from gates.stages import StopReason, Transition


class DecisionForm(forms.Form):
    """A gate decision: the rationale always, the reason category when stopping."""

    rationale = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=5000,
        help_text="Why this decision, in a sentence or two. It is recorded for good.",
    )
    stop_reason = forms.ChoiceField(
        choices=[("", "Choose a reason…"), *StopReason.choices], required=False, label="Reason"
    )
    expected_stage = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args, transition: str, **kwargs):
        self.transition = Transition(transition)
        kwargs.setdefault("prefix", self.transition.value)
        super().__init__(*args, **kwargs)
        if self.transition == Transition.STOP:
            self.fields["stop_reason"].required = True
        else:
            del self.fields["stop_reason"]

    def clean_rationale(self) -> str:
        rationale = self.cleaned_data["rationale"].strip()
        if not rationale:
            raise forms.ValidationError("Give the rationale for this decision.")
        return rationale


def add_errors(form: forms.Form, exc: ValidationError) -> None:
    """A service's ValidationError onto the form: per field where it names one."""
    problems = exc.message_dict if hasattr(exc, "error_dict") else {None: exc.messages}
    for field, errors in problems.items():
        form.add_error(field if field in form.fields else None, errors)
