"""Browser fixtures: real Chromium driven by Playwright against Django's live server."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from django.db import connections

from tests.conftest import skip_or_fail

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def _chromium() -> str | None:
    path = os.environ.get("GANTRY_CHROMIUM") or "/usr/bin/chromium"
    return path if os.path.exists(path) else shutil.which("chromium")


@pytest.fixture
def browser_page(live_server, monkeypatch):
    """A fresh Chromium page; skips where Chromium or Playwright is missing (fails in CI)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("needs the playwright package", variable="GANTRY_REQUIRE_BROWSER")
    executable = _chromium()
    if executable is None:
        skip_or_fail(
            "needs Chromium: apt-get install chromium (or set GANTRY_CHROMIUM)",
            variable="GANTRY_REQUIRE_BROWSER",
        )
    # Playwright's sync API runs an event loop in this thread; the ORM calls made here by
    # the test itself are still synchronous and safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=FLAGS)
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.set_default_timeout(15_000)
        page.base_url = live_server.url
        page.shot_dir = Path(os.environ.get("GANTRY_SHOTS", tempfile.gettempdir()))
        page.shot_dir.mkdir(parents=True, exist_ok=True)
        yield page
        browser.close()
        # ORM calls made while Playwright's loop runs use context-local connections that
        # pytest-django does not see; close them here or the test database cannot be dropped.
        connections.close_all()


def login(page, username: str, password: str) -> None:
    page.goto(page.base_url + "/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(page.base_url + "/")


AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"


def assert_accessible(page, *, impacts=None) -> None:
    """axe-core (npm, run in this Chromium) finds no violation on the page as it stands (of
    the given impacts, or of any); skips where axe-core is not installed (fails in CI)."""
    if not AXE.exists():
        skip_or_fail(
            "needs axe-core: npm ci (make install runs it)", variable="GANTRY_REQUIRE_BROWSER"
        )
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    problems = [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(node["target"][0]) for node in v["nodes"][:3])
        for v in result["violations"]
        if impacts is None or v["impact"] in impacts
    ]
    assert not problems, f"{page.url}:\n" + "\n".join(problems)
