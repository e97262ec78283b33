"""A stand-in for an organisation's identity provider: a small Django project serving
OpenID Connect with django-oauth-toolkit, run as its own process by the SSO tests
(tests/accounts/test_sso_journey.py). Nothing of Gantry's is imported here."""
