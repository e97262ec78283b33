"""GANTRY_LOCAL_LOGIN: password sign-in for everyone, for superusers only (break-glass), or
for nobody."""

import pytest
from django.test import Client

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
RIGHT = "correct-horse-battery"


def sign_in(username: str):
    client = Client()
    response = client.post(LOGIN, {"username": username, "password": RIGHT})
    return response, "_auth_user_id" in client.session


def test_everyone_signs_in_with_a_password_by_default(owner, superuser):
    assert sign_in(owner.username)[1]
    assert sign_in(superuser.username)[1]


def test_break_glass_mode_lets_only_superusers_in(settings, owner, superuser):
    settings.GANTRY_LOCAL_LOGIN = "superusers"
    response, ok = sign_in(owner.username)
    assert not ok
    assert response.status_code == 200
    # The usual words: the page does not say that the password was right.
    assert "Please enter a correct username and password" in response.content.decode()
    assert sign_in(superuser.username)[1]
    assert b"kept for administrators only" in Client().get(LOGIN).content


def test_off_lets_nobody_in_and_shows_no_password_form(settings, superuser):
    settings.GANTRY_LOCAL_LOGIN = "off"
    assert not sign_in(superuser.username)[1]
    page = Client().get(LOGIN).content.decode()
    assert 'name="password"' not in page
    assert "Password sign-in is switched off" in page


def test_a_password_session_ends_when_the_mode_no_longer_allows_it(settings, client):
    person = UserFactory(username="pat")
    client.post(LOGIN, {"username": person.username, "password": RIGHT})
    assert client.get("/").status_code == 200
    settings.GANTRY_LOCAL_LOGIN = "off"
    assert client.get("/").status_code == 302


def test_a_deactivated_user_cannot_sign_in():
    person = UserFactory(username="gone", is_active=False)
    assert not sign_in(person.username)[1]
