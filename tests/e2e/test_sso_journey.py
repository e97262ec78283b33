"""Single sign-on end to end: Chromium signs in to Gantry through a real OpenID Connect
provider, a separate process (tests/oidc_provider: django-oauth-toolkit, PKCE required), and
lands with the role its groups map to; after a group change the next sign-in has the new role.
"""

import pytest
from django.test import override_settings

from portfolio.models import User
from portfolio.roles import Role, role_of
from tests.e2e.conftest import assert_accessible
from tests.oidc_provider.process import IdentityProvider

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CLIENT = {"id": "gantry-test-client", "secret": "gantry-test-secret-" + "s" * 20}
ROLE_MAP = {"ai-exec": Role.EXECUTIVE.value, "ai-pmo": Role.PROGRAMME_MANAGER.value}
PASSWORD = "provider-password-1"


@pytest.fixture
def provider(tmp_path, live_server):
    idp = IdentityProvider(tmp_path)
    idp.start()
    idp.people(client={**CLIENT, "redirect_uri": f"{live_server.url}/sso/oidc/sso/login/callback/"})
    apps = [
        {
            "provider_id": "sso",
            "name": "Example Corp",
            "client_id": CLIENT["id"],
            "secret": CLIENT["secret"],
            "settings": {
                "server_url": idp.issuer,
                "scope": ["openid", "profile", "email", "groups"],
            },
        }
    ]
    with override_settings(
        GANTRY_OIDC_ISSUER=idp.issuer,
        GANTRY_OIDC_NAME="Example Corp",
        GANTRY_OIDC_ROLE_MAP=ROLE_MAP,
        SOCIALACCOUNT_PROVIDERS={"openid_connect": {"OAUTH_PKCE_ENABLED": True, "APPS": apps}},
    ):
        yield idp
    idp.stop()


def sign_in_through(page, provider, username: str) -> None:
    page.context.clear_cookies()
    page.goto(page.base_url + "/accounts/login/")
    page.get_by_role("button", name="Sign in with Example Corp").click()
    page.wait_for_url(f"{provider.url}/login/**")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_sign_in_through_the_provider_lands_with_the_mapped_role_and_follows_group_changes(
    browser_page, provider
):
    page = browser_page
    person = {
        "username": "grace",
        "password": PASSWORD,
        "email": "grace@example.com",
        "first_name": "Grace",
        "last_name": "Hopper",
        "groups": ["ai-pmo", "unrelated-group"],
    }
    provider.people(people=[person])
    page.goto(page.base_url + "/accounts/login/")
    assert_accessible(page)

    sign_in_through(page, provider, "grace")
    page.wait_for_url(page.base_url + "/")
    grace = User.objects.get(username="grace")
    assert (grace.first_name, grace.last_name, grace.email) == (
        "Grace",
        "Hopper",
        "grace@example.com",
    )
    assert role_of(grace) == Role.PROGRAMME_MANAGER
    assert set(grace.groups.values_list("name", flat=True)) == {"programme_manager"}
    page.goto(page.base_url + "/initiatives/new/")  # a programme manager's page
    assert page.get_by_role("heading", name="New initiative").is_visible()

    # Moved from the PMO group to the executives' in the provider: the next sign-in says so.
    provider.people(people=[{**person, "groups": ["ai-exec"]}])
    sign_in_through(page, provider, "grace")
    page.wait_for_url(page.base_url + "/")
    grace = User.objects.get(username="grace")
    assert set(grace.groups.values_list("name", flat=True)) == {"executive"}
    assert User.objects.filter(username__startswith="grace").count() == 1
    response = page.goto(page.base_url + "/initiatives/new/")
    assert response.status == 403


def test_a_person_whose_groups_map_to_no_role_is_not_signed_in(browser_page, provider):
    page = browser_page
    provider.people(
        people=[
            {
                "username": "hal",
                "password": PASSWORD,
                "email": "hal@example.com",
                "groups": ["staff"],
            }
        ]
    )
    sign_in_through(page, provider, "hal")
    page.get_by_role("heading", name="You have no Gantry role yet").wait_for()
    assert_accessible(page)
    response = page.goto(page.base_url + "/")
    assert "/accounts/login/" in response.url


def test_a_deactivated_account_is_refused(browser_page, provider):
    page = browser_page
    person = {
        "username": "ivy",
        "password": PASSWORD,
        "email": "ivy@example.com",
        "groups": ["ai-pmo"],
    }
    provider.people(people=[person])
    sign_in_through(page, provider, "ivy")
    page.wait_for_url(page.base_url + "/")
    User.objects.filter(username="ivy").update(is_active=False)

    sign_in_through(page, provider, "ivy")
    page.get_by_role("heading", name="This account is deactivated").wait_for()
    response = page.goto(page.base_url + "/")
    assert "/accounts/login/" in response.url
