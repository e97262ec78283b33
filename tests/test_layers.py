"""Every import between Gantry's apps points down the layers the README draws.

A lower layer that needs to react to a higher one offers a registry or a hook (the gate
criteria and effects, the audit registry, `portfolio.permissions.stakes`), never an import
upwards. The test parses the source, so an import inside a function counts as much as one
at the top of a module.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Highest first. An app may import the apps of the layers below its own and nothing else:
# not a higher layer, and not its neighbour on the same layer.
LAYERS = [
    ("gantry",),  # project configuration: settings, URLs, Celery, health, the demo
    ("api",),  # the REST API: reads and actions through the pages' selectors and services
    ("pages",),  # the read layer: dashboard, list, purgatory, initiative and review pages
    ("notifications",),  # events to people: in-app, email, webhooks, reminders, the digest
    ("value",),  # value realised, budget requests, decisions and lines (reads metrics, readiness)
    # feature apps; accounts: sign-in, its throttle, password reset
    ("metrics", "readiness", "accounts"),
    ("portfolio",),  # the domain: people, roles, permissions, initiatives, framing
    # stages, criteria and effects registries, decisions, the audit chain; and the periodic
    # jobs' schedule, the tick and the task publisher
    ("gates", "jobs"),
]
LAYER_OF = {app: depth for depth, apps in enumerate(LAYERS) for app in apps}


def imports_between_apps() -> list[tuple[str, str, str]]:
    """(importing app, imported app, "path:line") for every import from one app into another."""
    found = []
    for app in LAYER_OF:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    target = name.split(".")[0]
                    if target in LAYER_OF and target != app:
                        where = f"{path.relative_to(ROOT)}:{node.lineno}"
                        found.append((app, target, where))
    return found


def test_the_parser_sees_the_imports_it_judges():
    edges = {(a, b) for a, b, _ in imports_between_apps()}
    # A parser that found nothing would pass every rule below.
    assert ("pages", "metrics") in edges
    assert ("portfolio", "gates") in edges


def test_every_import_between_apps_points_down():
    upwards = [
        f"{where}: {app} imports {target}"
        for app, target, where in imports_between_apps()
        if LAYER_OF[target] <= LAYER_OF[app]
    ]
    assert upwards == [], "imports against the layers:\n" + "\n".join(upwards)


@pytest.mark.parametrize("app", ["gates", "jobs"])
def test_the_lowest_layer_imports_no_other_app(app):
    assert [where for source, _, where in imports_between_apps() if source == app] == []


@pytest.mark.parametrize("app", sorted(LAYER_OF))
def test_the_readme_lists_each_apps_dependencies_as_they_are(app):
    """The README's dependency list is the graph the code has, not the one it once had."""
    readme = (ROOT / "README.md").read_text()
    actual = sorted({target for source, target, _ in imports_between_apps() if source == app})
    line = f"- `{app}` → " + (", ".join(f"`{t}`" for t in actual) if actual else "nothing")
    assert line in readme, f"README should say: {line}"
