"""Each API's OpenAPI document says what the API does: every status an operation can answer (the errors as RFC 9457
problem documents), the headers it requires and the bearer token it needs. Routes name their own statuses with
`responses=problems_for(404, 409)`; what every route or every write can answer is added here, once."""
from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from services.common.problems import MEDIA_TYPE, Problem

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
DESCRIPTIONS = {
    400: "Bad request: a malformed header or a control character in the URL",
    401: "No bearer token, or one that is not valid (`WWW-Authenticate` says which)",
    403: "The token's role may not do this, or a customer acts for someone else",
    404: "Not found (also what another customer's resource answers)",
    409: "Conflicts with the resource's current state",
    412: "If-Match names a version that is not the current one",
    422: "The request does not fit the schema or breaks a rule",
    429: "Over the instance's adaptive write limit: retry after `Retry-After` seconds",
    503: "The service's database is unavailable: retry after `Retry-After` seconds",
}
EVERY_OPERATION = (400, 401, 422, 503)
EVERY_WRITE = (429,)
WRITES = {"post", "put", "patch", "delete"}
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
IDEMPOTENCY_KEY = "Idempotency-Key"


def problem_response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {"description": DESCRIPTIONS[status], "content": {MEDIA_TYPE: {"schema": PROBLEM_REF}}}
    if status in (429, 503):
        response["headers"] = RETRY_AFTER
    if status == 401:
        response["headers"] = {"WWW-Authenticate": {"description": "Bearer challenge", "schema": {"type": "string"}}}
    return response


def problems_for(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """A route's own error statuses, for its `responses=`."""
    return {status: problem_response(status) for status in statuses}


def install(app: FastAPI) -> None:
    """Replaces the app's OpenAPI generator with one that completes each operation (built once, then cached)."""
    def generate() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, routes=app.routes)
            app.openapi_schema = complete(doc)
        return app.openapi_schema
    app.openapi = generate  # type: ignore[method-assign]


def complete(doc: dict[str, Any]) -> dict[str, Any]:
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema()
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)  # FastAPI's own 422 body; validation errors are problem documents here
    for path_item in doc.get("paths", {}).values():
        for method, operation in path_item.items():
            _complete_operation(method, operation)
    return doc


def _complete_operation(method: str, operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    for status in (*EVERY_OPERATION, *(EVERY_WRITE if method in WRITES else ())):
        responses[str(status)] = problem_response(status)
    for parameter in operation.get("parameters", []):
        _absent_is_not_null(parameter)
        if parameter.get("in") == "header" and parameter.get("name", "").lower() == IDEMPOTENCY_KEY.lower():
            parameter["required"] = True  # the API answers 400 without it (services/common/http.py)
            parameter["schema"] = {"type": "string", "minLength": 1, "maxLength": 255}



def _absent_is_not_null(parameter: dict[str, Any]) -> None:
    """An optional header or query parameter is left out, never null: FastAPI writes `str | None` as anyOf string
    or null, which says a client may send the text "null"."""
    schema = parameter.get("schema", {})
    options = schema.get("anyOf")
    if parameter.get("in") in ("header", "query") and options and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        if len(rest) == 1:
            parameter["schema"] = {**{k: v for k, v in schema.items() if k != "anyOf"}, **rest[0]}
