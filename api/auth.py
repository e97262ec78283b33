"""Bearer personal access tokens (accounts.tokens); each request acts as the token's person."""

from ninja.security import HttpBearer

from accounts import tokens


class TokenAuth(HttpBearer):
    openapi_description = (
        "A personal access token (made on /accounts/tokens/ or with "
        "`manage.py create_api_token`): `Authorization: Bearer gat_…`. A read token may only "
        "read; a read-write token acts within its person's role."
    )

    def authenticate(self, request, token: str):
        found = tokens.authenticate(token)
        if found is None:
            return None
        request.user = found.user
        return found
