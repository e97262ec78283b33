"""Personal access tokens: stored hashed, scoped, expiring, revocable; the page and the command."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts import tokens
from accounts.models import ApiToken
from portfolio.roles import Role
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LIST = "/api/v1/initiatives"


def bearer(client, secret):
    return client.get(LIST, headers={"Authorization": f"Bearer {secret}"})


def test_only_a_digest_of_the_secret_is_stored(viewer):
    token, secret = tokens.create(user=viewer, name="report", scope="read")
    assert secret.startswith("gat_") and len(secret) > 40
    stored = ApiToken.objects.get(pk=token.pk)
    assert secret not in {stored.token_hash, stored.hint, stored.name}
    assert stored.token_hash == tokens.digest(secret)
    assert tokens.authenticate(secret) == token


@pytest.mark.parametrize(
    "change",
    [
        {"revoked_at": timezone.now()},
        {"expires_at": timezone.now() - timedelta(seconds=1)},
    ],
)
def test_a_revoked_or_expired_token_opens_nothing(client, viewer, change):
    token, secret = tokens.create(user=viewer, name="report", scope="read")
    assert bearer(client, secret).status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(**change)
    response = bearer(client, secret)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response["WWW-Authenticate"] == "Bearer"


def test_a_deactivated_persons_token_opens_nothing(client, viewer):
    _, secret = tokens.create(user=viewer, name="report", scope="read")
    viewer.is_active = False
    viewer.save()
    assert bearer(client, secret).status_code == 401


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer gat_nonsense", "Basic dXNlcjpwYXNz"])
def test_no_or_a_wrong_token_is_401_with_a_problem_document(client, header):
    response = client.get(LIST, headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    body = response.json()
    assert body["status"] == 401 and body["title"] == "Unauthorized" and "token" in body["detail"]


def test_a_session_does_not_open_the_api(client, manager):
    client.force_login(manager)
    assert client.get(LIST).status_code == 401


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": " ", "scope": "read"}, "name"),
        ({"name": "x", "scope": "admin"}, "scope"),
        ({"name": "x", "scope": "read", "days": 0}, "1 to 366"),
        ({"name": "x", "scope": "read", "days": 367}, "1 to 366"),
    ],
)
def test_bad_token_requests_are_refused(viewer, kwargs, message):
    with pytest.raises(tokens.TokenError, match=message):
        tokens.create(user=viewer, **kwargs)
    assert not ApiToken.objects.exists()


def test_the_command_prints_the_token_on_its_last_line(client, manager):
    out = StringIO()
    call_command("create_api_token", manager.username, "--scope", "read-write", stdout=out)
    secret = out.getvalue().strip().splitlines()[-1]
    assert bearer(client, secret).status_code == 200
    assert ApiToken.objects.get().scope == "read-write"


def test_the_command_refuses_an_unknown_person_and_a_bad_scope(manager):
    with pytest.raises(CommandError, match="No user"):
        call_command("create_api_token", "nobody", stdout=StringIO())
    with pytest.raises(CommandError):
        call_command("create_api_token", manager.username, "--scope", "admin", stdout=StringIO())
    assert not ApiToken.objects.exists()


def test_the_page_shows_a_new_token_once(client, owner):
    client.force_login(owner)
    response = client.post(
        "/accounts/tokens/", {"name": "weekly export", "scope": "read", "days": "30"}
    )
    assert response.status_code == 302 and response["Location"] == "/accounts/tokens/"
    page = client.get("/accounts/tokens/").content.decode()
    token = ApiToken.objects.get(user=owner)
    secret = page.split('id="token-secret">')[1].split("<")[0]
    assert tokens.authenticate(secret) == token
    assert (token.expires_at - token.created_at).days == 30
    again = client.get("/accounts/tokens/").content.decode()
    assert secret not in again and "weekly export" in again


def test_the_page_shows_field_errors_and_makes_nothing(client, owner):
    client.force_login(owner)
    response = client.post("/accounts/tokens/", {"name": "", "scope": "root", "days": "900"})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert set(errors) == {"name", "scope", "days"}
    assert not ApiToken.objects.exists()


def test_revoking_from_the_page(client, owner):
    token, secret = tokens.create(user=owner, name="old job", scope="read")
    client.force_login(owner)
    response = client.post(f"/accounts/tokens/{token.pk}/revoke/")
    assert response.status_code == 302
    assert tokens.authenticate(secret) is None
    # A GET on the action URL goes back to the page; nobody lands on a 405.
    assert client.get(f"/accounts/tokens/{token.pk}/revoke/").status_code == 302


def test_nobody_revokes_someone_elses_token(client, owner):
    token, secret = tokens.create(user=UserFactory(role=Role.EXECUTIVE), name="x", scope="read")
    client.force_login(owner)
    assert client.post(f"/accounts/tokens/{token.pk}/revoke/").status_code == 404
    assert tokens.authenticate(secret) == token


def test_the_page_needs_sign_in(client):
    response = client.get("/accounts/tokens/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
