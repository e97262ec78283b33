"""Single sign-on's rules without a browser: the role map, roles set at each sign-in, the
refusals, and the sign-in page's button. The browser journey through a real provider is
tests/e2e/test_sso_journey.py."""

import os
import subprocess
import sys

import pytest
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.models import SocialAccount, SocialLogin
from django.contrib.auth.models import Group
from django.test import Client, RequestFactory

from accounts import sso
from accounts.roles_map import ROLE_NAMES, parse_role_map
from portfolio.models import User
from portfolio.roles import Role, role_of
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ROLE_MAP = {"ai-exec": "executive", "ai-pmo": "programme_manager", "ai-all": "viewer"}


@pytest.fixture(autouse=True)
def sso_on(settings):
    settings.GANTRY_OIDC_ISSUER = "https://idp.example.com/realms/corp"
    settings.GANTRY_OIDC_ROLE_MAP = ROLE_MAP
    settings.GANTRY_OIDC_NAME = "Example Corp"


def test_the_role_names_are_gantrys():
    assert {role.value for role in Role} == ROLE_NAMES


def test_the_role_map_is_read_from_group_role_pairs():
    assert parse_role_map(" ai-exec:executive, ai-pmo : programme_manager,,") == {
        "ai-exec": "executive",
        "ai-pmo": "programme_manager",
    }
    # Group names may hold colons (URNs); the role is after the last one.
    assert parse_role_map("urn:corp:ai:exec:executive") == {"urn:corp:ai:exec": "executive"}
    assert parse_role_map("") == {}


@pytest.mark.parametrize("text", ["ai-exec", ":executive", "ai-exec:admin", "ai-exec:Executive"])
def test_a_bad_role_map_is_a_configuration_error(text):
    with pytest.raises(ValueError, match="GANTRY_OIDC_ROLE_MAP"):
        parse_role_map(text)


def test_roles_come_from_the_groups_claim_and_unmapped_groups_give_none():
    assert sso.roles_from({"groups": ["ai-pmo", "ai-all", "cafeteria"]}) == {
        "programme_manager",
        "viewer",
    }
    assert sso.roles_from({"groups": "ai-exec"}) == {"executive"}
    assert sso.roles_from({"groups": ["cafeteria"]}) == set()
    assert sso.roles_from({}) == set()


def test_the_groups_claim_name_is_a_setting(settings):
    settings.GANTRY_OIDC_GROUPS_CLAIM = "roles"
    assert sso.roles_from({"roles": ["ai-exec"], "groups": ["ai-pmo"]}) == {"executive"}


def test_sync_sets_exactly_the_mapped_roles_and_keeps_other_groups():
    person = UserFactory(role=Role.OWNER)
    person.groups.add(Group.objects.create(name="admins-of-something-else"))
    sso.sync_roles(person, {"executive", "viewer"})
    assert set(person.groups.values_list("name", flat=True)) == {
        "executive",
        "viewer",
        "admins-of-something-else",
    }
    assert role_of(person) == Role.EXECUTIVE
    sso.sync_roles(person, {"viewer"})
    assert role_of(User.objects.get(pk=person.pk)) == Role.VIEWER


def sociallogin_for(user, claims: dict, *, existing: bool) -> SocialLogin:
    account = SocialAccount(provider="sso", uid=claims["sub"], extra_data={"userinfo": claims})
    login = SocialLogin(user=user, account=account)
    if existing:
        account.user = user
        login.account.pk = 1  # what lookup() finds: a linked account
    return login


def claims(**extra) -> dict:
    return {
        "sub": "42",
        "preferred_username": "kim",
        "given_name": "Kim",
        "family_name": "Lee",
        "email": "kim@example.com",
        **extra,
    }


def test_an_existing_person_gets_their_name_email_and_roles_from_the_provider():
    person = UserFactory(username="kim", role=Role.EXECUTIVE, first_name="K", email="old@x.org")
    login = sociallogin_for(person, claims(groups=["ai-pmo"]), existing=True)
    sso.SocialAccountAdapter().pre_social_login(RequestFactory().get("/"), login)
    person = User.objects.get(pk=person.pk)
    assert (person.first_name, person.last_name, person.email) == ("Kim", "Lee", "kim@example.com")
    assert role_of(person) == Role.PROGRAMME_MANAGER
    assert not person.groups.filter(name="executive").exists()
    assert login.user.backend == sso.BACKEND


def test_a_person_with_no_mapped_group_is_refused_and_keeps_their_roles():
    person = UserFactory(username="kim", role=Role.EXECUTIVE)
    login = sociallogin_for(person, claims(groups=["cafeteria"]), existing=True)
    with pytest.raises(ImmediateHttpResponse) as refused:
        sso.SocialAccountAdapter().pre_social_login(RequestFactory().get("/"), login)
    assert refused.value.response.status_code == 403
    assert b"no Gantry role" in refused.value.response.content
    # Refused before anything is written: roles are only changed by a sign-in that succeeds.
    assert role_of(User.objects.get(pk=person.pk)) == Role.EXECUTIVE


def test_a_deactivated_persons_record_is_not_touched():
    person = UserFactory(username="kim", role=Role.VIEWER, is_active=False, email="k@x.org")
    login = sociallogin_for(person, claims(groups=["ai-exec"]), existing=True)
    sso.SocialAccountAdapter().pre_social_login(RequestFactory().get("/"), login)
    person = User.objects.get(pk=person.pk)
    assert person.email == "k@x.org"
    assert role_of(person) == Role.VIEWER


def test_the_sso_backend_never_checks_a_password():
    person = UserFactory(username="kim")
    backend = sso.SingleSignOnBackend()
    assert backend.authenticate(None, username="kim", password="correct-horse-battery") is None
    assert backend.get_user(person.pk) == person


def test_an_sso_session_survives_password_sign_in_being_switched_off(settings, client):
    person = UserFactory(username="kim", role=Role.VIEWER)
    client.force_login(person, backend=sso.BACKEND)
    settings.GANTRY_LOCAL_LOGIN = "off"
    assert client.get("/").status_code == 200


def test_the_sign_in_page_offers_the_provider_as_a_post_form():
    page = Client().get("/accounts/login/?next=/budget/").content.decode()
    assert "Sign in with Example Corp" in page
    assert 'action="/sso/oidc/sso/login/?next=/budget/"' in page


def test_without_an_issuer_there_is_no_provider_button_and_no_provider(settings):
    settings.GANTRY_OIDC_ISSUER = ""
    settings.SOCIALACCOUNT_PROVIDERS = {"openid_connect": {"APPS": []}}
    assert b"Sign in with" not in Client().get("/accounts/login/").content
    assert Client().post("/sso/oidc/sso/login/").status_code == 404


def test_allauths_own_sign_in_page_leads_to_gantrys():
    response = Client().get("/sso/login/?next=/budget/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/budget/"


def start(**env) -> subprocess.CompletedProcess:
    """Load gantry.settings in a fresh interpreter with this environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GANTRY_OIDC")}
    return subprocess.run(
        [sys.executable, "-c", "import gantry.settings"],
        env={**clean, "SECRET_KEY": "x" * 50, **env},
        capture_output=True,
        text=True,
    )


def test_an_issuer_without_a_role_map_stops_start_up():
    refused = start(GANTRY_OIDC_ISSUER="https://idp.example.com")
    assert refused.returncode != 0 and "GANTRY_OIDC_ROLE_MAP must map groups" in refused.stderr


def test_an_unknown_role_in_the_map_stops_start_up():
    refused = start(GANTRY_OIDC_ISSUER="https://idp.example.com", GANTRY_OIDC_ROLE_MAP="x:admin")
    assert refused.returncode != 0 and "'admin' is not a role" in refused.stderr
    assert start(GANTRY_OIDC_ISSUER="https://idp", GANTRY_OIDC_ROLE_MAP="x:viewer").returncode == 0
