import pytest
from django.test import Client

from accounts import tokens


class ApiClient:
    """Django's test client with a bearer token on every request, JSON bodies."""

    def __init__(self, secret: str) -> None:
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {secret}"}

    def get(self, path: str, **headers):
        return self.client.get(path, headers={**self.headers, **headers})

    def post(self, path: str, data=None, **headers):
        return self.client.post(
            path,
            data=data or {},
            content_type="application/json",
            headers={**self.headers, **headers},
        )


@pytest.fixture
def api_as():
    """api_as(user, scope="read-write") -> an ApiClient acting as that person."""

    def make(user, scope: str = "read-write") -> ApiClient:
        _, secret = tokens.create(user=user, name="tests", scope=scope)
        return ApiClient(secret)

    return make


# The readiness tests' cast and open review, for the item actions.
from tests.readiness.conftest import cast, initiative, items, review  # noqa: E402, F401
