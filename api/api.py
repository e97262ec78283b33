"""The NinjaAPI behind /api/v1/: token auth, the rate limit, problem documents, ETags.

django-ninja, not DRF with drf-spectacular: the request and response models are plain type
hints (pydantic), so the OpenAPI 3.1 document is generated from the code that runs rather
than from a second description beside it, and the documentation page's assets ship in the
package (served locally, no CDN).
"""

from __future__ import annotations

import hashlib
from http import HTTPStatus

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseNotModified
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from api import auth, schemas, throttle, views
from api.problems import Problem
from gates.http import PROBLEM_JSON, problem


class RateLimited(Exception):
    def __init__(self, wait: int) -> None:
        super().__init__(wait)
        self.wait = wait


class Auth(auth.TokenAuth):
    def authenticate(self, request, token: str):
        found = super().authenticate(request, token)
        if found is not None and (wait := throttle.over_limit(found.pk)) is not None:
            raise RateLimited(wait)
        return found


class GantryAPI(NinjaAPI):
    def get_openapi_schema(self, *args, **kwargs):
        schema = super().get_openapi_schema(*args, **kwargs)
        for operations in schema["paths"].values():
            for operation in operations.values():
                for status, answer in operation.get("responses", {}).items():
                    if int(status) >= 400 and "application/json" in answer.get("content", {}):
                        answer["content"] = {PROBLEM_JSON: answer["content"]["application/json"]}
        schema["paths"][INGESTION_PATH] = ingestion_operation()
        schema["components"].setdefault("securitySchemes", {})["FeedToken"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "A data feed's own token, shown when the feed is made or rotated.",
        }
        return schema

    def create_response(self, request, data, *, status=None, temporal_response=None):
        response = super().create_response(
            request, data, status=status, temporal_response=temporal_response
        )
        return conditional(request, response)


def conditional(request, response: HttpResponse) -> HttpResponse:
    """A strong ETag on every successful read, and 304 when the client holds it already."""
    if request.method not in ("GET", "HEAD") or response.status_code != 200:
        return response
    tag = '"' + hashlib.sha256(response.content).hexdigest()[:32] + '"'
    response["ETag"] = tag
    held = [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]
    if tag in held or "*" in held:
        not_modified = HttpResponseNotModified()
        not_modified["ETag"] = tag
        return not_modified
    return response


api = GantryAPI(
    title="Gantry API",
    version="1",
    description=(
        "Read the AI portfolio and act on its gates with a personal access token; feeds send "
        "observations with their own token. Errors are application/problem+json. Per-token "
        f"rate limit: {settings.GANTRY_API_RATE_LIMIT} requests per "
        f"{settings.GANTRY_API_RATE_WINDOW_SECONDS} s, then 429 with Retry-After."
    ),
    auth=Auth(),
    urls_namespace="api",
    docs_url="/docs",
    openapi_url="/openapi.json",
)
api.add_router("", views.router, tags=["portfolio"])

# Ingestion is its own Django view (metrics.api), tuned for batches of thousands; the
# document describes it from the same models as the rest.
INGESTION_PATH = "/api/v1/feeds/{feed_id}/observations"


def ingestion_operation() -> dict:
    problem_ref = {"$ref": "#/components/schemas/ProblemOut"}
    problem_body = {"content": {"application/problem+json": {"schema": problem_ref}}}
    return {
        "post": {
            "operationId": "send_observations",
            "summary": "Send observations (a data feed)",
            "description": (
                "Authenticated by the feed's own token (`Authorization: Bearer <feed token>`), "
                "not a personal one. A JSON array of up to 10,000 observations: the whole "
                "batch is stored or none of it (400 or 403 name each bad item by index). "
                "Repeats are counted as duplicates, not stored twice. 409 while the feed is "
                "paused; 503 with Retry-After while the database is unavailable."
            ),
            "tags": ["ingestion"],
            "security": [{"FeedToken": []}],
            "parameters": [
                {"name": "feed_id", "in": "path", "required": True, "schema": {"type": "integer"}},
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": 10000,
                            "items": schemas.ObservationIn.model_json_schema(),
                        }
                    }
                },
            },
            "responses": {
                "201": {
                    "description": "Stored",
                    "content": {
                        "application/json": {"schema": schemas.IngestOut.model_json_schema()}
                    },
                },
                **{
                    str(code): {"description": HTTPStatus(code).phrase, **problem_body}
                    for code in (400, 401, 403, 404, 405, 409, 413, 503)
                },
            },
        }
    }


@api.exception_handler(Problem)
def _problem(request, exc: Problem):
    return exc.response()


@api.exception_handler(RateLimited)
def _rate_limited(request, exc: RateLimited):
    return problem(
        429,
        f"This token sent more than {settings.GANTRY_API_RATE_LIMIT} requests in "
        f"{settings.GANTRY_API_RATE_WINDOW_SECONDS} s. Wait {exc.wait} s.",
        headers={"Retry-After": str(exc.wait)},
    )


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, exc):
    return problem(
        401,
        "A valid personal access token is required: Authorization: Bearer gat_…",
        headers={"WWW-Authenticate": "Bearer"},
    )


@api.exception_handler(PermissionDenied)
def _forbidden(request, exc):
    return problem(403, str(exc) or "Your role does not allow this.")


@api.exception_handler(Http404)
def _not_found(request, exc):
    return problem(404, str(exc) or "Not found.")


@api.exception_handler(NinjaValidationError)
def _invalid(request, exc: NinjaValidationError):
    errors: dict[str, list[str]] = {}
    for error in exc.errors:
        location = [
            str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path")
        ]
        errors.setdefault(".".join(location) or "non_field_errors", []).append(error["msg"])
    return problem(400, "The request is not valid: see errors.", errors=errors)


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    return problem(exc.status_code, exc.message)
