"""The API keeps its OpenAPI contract: schemathesis (property-based) calls every operation of
/api/v1/openapi.json on a live server over PostgreSQL with a read-write token, and checks for
server errors, undocumented status codes, content types and responses off their schema."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings

from accounts import tokens
from gates.stages import Stage
from tests.factories import DataFeedFactory, InitiativeFactory
from tests.helpers import advance
from tests.readiness.helpers import submit_for_review

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("contract")]

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)


def test_every_operation_keeps_the_contract(live_server, manager, require_postgres, tmp_path):
    for n in range(3):
        framed = InitiativeFactory(framed=True, title=f"Contract {n}")
        DataFeedFactory(initiative=framed)
    advance(InitiativeFactory(framed=True, title="Launched one"), Stage.NARROW_LAUNCH, user=manager)
    submit_for_review(InitiativeFactory(framed=True, title="In review"), user=manager)
    _, secret = tokens.create(user=manager, name="contract", scope="read-write")
    st = Path(sys.executable).with_name("st")
    with override_settings(GANTRY_API_RATE_LIMIT=1_000_000):
        run = subprocess.run(
            [
                str(st), "run", f"{live_server.url}/api/v1/openapi.json",
                "--checks", CHECKS,
                "--header", f"Authorization: Bearer {secret}",
                "--max-examples", "25",
                "--seed", "20261206",
                "--workers", "1",
                "--request-timeout", "30",
                "--suppress-health-check", "all",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""},
            cwd=tmp_path,
        )  # fmt: skip
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-6000:]
    assert "No issues found" in report or "passed" in report, report[-3000:]
