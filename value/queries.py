"""Reads of the value app for the pages: an initiative's budget, and requests by status."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from value.models import BudgetLine, BudgetRequest


@dataclass
class Budget:
    lines: list[BudgetLine]
    requests: list[BudgetRequest]

    @property
    def open_requests(self) -> list[BudgetRequest]:
        return [r for r in self.requests if not hasattr(r, "decision")]


def requests_of(initiative) -> QuerySet:
    """The initiative's requests, newest first, with their decisions and people."""
    return BudgetRequest.objects.filter(initiative=initiative).select_related(
        "requested_by", "answerable", "decision", "decision__decided_by"
    )


def budget_of(initiative) -> Budget:
    """Lines and requests of one initiative: two queries."""
    lines = BudgetLine.objects.filter(initiative=initiative).select_related("answerable")
    return Budget(lines=list(lines), requests=list(requests_of(initiative)))
