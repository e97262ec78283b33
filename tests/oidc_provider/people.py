"""Run in the provider's process (manage `shell`): python -m tests.oidc_provider.people
Registers Gantry as a client and sets people and their groups, from JSON on stdin:
{"client": {"id", "secret", "redirect_uri"}, "people": [{"username", "password", "email",
"first_name", "last_name", "groups": [...]}]}."""

import json
import sys

import django

django.setup()

from django.contrib.auth.models import Group, User  # noqa: E402
from oauth2_provider.models import Application  # noqa: E402

spec = json.load(sys.stdin)
client = spec.get("client")
if client:
    Application.objects.update_or_create(
        client_id=client["id"],
        defaults={
            "name": "Gantry",
            "client_secret": client["secret"],
            "client_type": Application.CLIENT_CONFIDENTIAL,
            "authorization_grant_type": Application.GRANT_AUTHORIZATION_CODE,
            "redirect_uris": client["redirect_uri"],
            "skip_authorization": True,
            "algorithm": Application.RS256_ALGORITHM,
        },
    )
for person in spec.get("people", []):
    user, _ = User.objects.get_or_create(username=person["username"])
    for field in ("email", "first_name", "last_name"):
        setattr(user, field, person.get(field, ""))
    if "password" in person:
        user.set_password(person["password"])
    user.save()
    user.groups.set([Group.objects.get_or_create(name=name)[0] for name in person["groups"]])
