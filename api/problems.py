"""Errors as application/problem+json (RFC 9457), raised by an endpoint as `Problem`."""

from __future__ import annotations

from django.http import HttpResponse

from gates.http import problem


def form_errors(form) -> dict[str, list[str]]:
    """A Django form's errors by field ("non_field_errors" for the form's own)."""
    return {
        ("non_field_errors" if field == "__all__" else field): list(messages)
        for field, messages in form.errors.items()
    }


class Problem(Exception):
    """Raised by an endpoint; answered as a problem document by the API's handler."""

    def __init__(self, status: int, title: str, detail: str, **kwargs) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.kwargs = status, title, detail, kwargs

    def response(self) -> HttpResponse:
        return problem(self.status, self.detail, title=self.title, **self.kwargs)
