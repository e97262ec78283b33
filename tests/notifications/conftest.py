"""The readiness tests' cast and initiative serve here too: most events start in a review."""

from tests.readiness.conftest import cast, initiative, items, review  # noqa: F401
