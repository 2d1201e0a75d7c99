"""The OpenAPI document, with every error an operation can answer, added by the traits of its route.

FastAPI documents the success response of each operation; :func:`install` adds the rest from what the
route is, so routes added later are documented the same way:

- every error response carries the real body, :class:`~liveloop.kit.http.ErrorBody`
  (``{"error": {"code", "message", "details"}}``);
- authenticated (an API key) → 401, 403; writes of an authenticated route also take an ``Idempotency-Key``
  header (documented as a parameter) → 409 (key in use, secret shown once) and 422 (key reused);
- path parameters → 404; a JSON body that names other resources (``…_id`` or ``…_ids`` fields, at any
  depth) → 404;
- a JSON body → 413, 415, 422; any other POST/PUT/PATCH → 413; any parameter → 422;
- writes → 409 (a duplicate or a concurrent change);
- rate-limited public routes → 429 with ``Retry-After`` (added by :func:`liveloop.kit.ratelimit.document_limits`,
  which knows the limits);
- plus what the operation declares itself: ``responses=errors(400, 401)`` on the route.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from liveloop.kit.http import IDEMPOTENCY_HEADER, ErrorBody, UnitOfWorkRoute, shown_once_fields

WRITES = {"post", "put", "patch", "delete"}
METHODS = WRITES | {"get", "head", "options", "trace"}

DESCRIPTIONS = {
    400: "The request cannot be processed as sent: a header or the body is missing or malformed.",
    401: "No credentials, or credentials that are unknown, expired or revoked (`missing_api_key`, `invalid_api_key`).",
    403: "The API key lacks the scope this operation needs (`missing_scope`).",
    404: "What the path (or an id in the body) names does not exist, or not in this shop.",
    409: "The request conflicts with the current state: a duplicate or a concurrent change (`conflict`), a request "
    "with the same Idempotency-Key still running (`idempotency_key_in_use`), or the replay of an answer that "
    "showed a secret once (`secret_shown_once`).",
    413: "The body is larger than the server accepts (`body_too_large`).",
    415: "A body sent without `Content-Type: application/json` (`unsupported_media_type`).",
    422: "The request breaks a rule: invalid fields or a body that is not UTF-8 JSON (`invalid_request`, each "
    "field in `details.problems`), a path or query parameter holding a NUL (`invalid_parameter`), a cursor this "
    "list did not issue (`invalid_cursor`), a value the database cannot store (`value_not_storable`), a rule of "
    "this operation, or an Idempotency-Key already used with another body (`idempotency_key_reused`).",
    429: "Too many requests from this client; retry after the seconds in `Retry-After` (`rate_limited`).",
}

IDEMPOTENCY_PARAMETER = {
    "name": IDEMPOTENCY_HEADER,
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": "A unique key per logical operation (a UUID). A retry with the same key and body returns the "
    "first answer (with `Idempotent-Replayed: true`); the same key with another body answers 422 "
    "`idempotency_key_reused`. An answer that showed a secret once is not kept: its replay answers 409 "
    "`secret_shown_once`.",
}


ERROR_BODY_REF = "#/components/schemas/ErrorBody"


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route that answers these error statuses beyond what its traits imply."""
    return {status: {"model": ErrorBody, "description": DESCRIPTIONS.get(status, "An error.")} for status in statuses}


def error_response(status: int, ref: str = ERROR_BODY_REF) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": DESCRIPTIONS.get(status, "An error."),
        "content": {"application/json": {"schema": {"$ref": ref}}},
    }
    if status == 429:
        response["headers"] = {
            "Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}
        }
    return response


def _routes(app: FastAPI) -> Iterator[Any]:
    """Each API route with its effective path (prefixes of included routers applied)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before lazily included routers: the app lists its routes flat
        yield from (r for r in app.routes if isinstance(r, APIRoute))
        return
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute):
            yield context


def _body_names_resources(operation: dict[str, Any], schemas: dict[str, Any]) -> bool:
    """Whether the JSON body has, at any depth, a field that names another resource (``id``, ``…_id(s)``)."""
    content = operation.get("requestBody", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema", {})
    seen: set[str] = set()

    def names(node: dict[str, Any]) -> Iterator[str]:
        ref = node.get("$ref")
        if ref:
            name = ref.rsplit("/", 1)[-1]
            if name in seen:
                return
            seen.add(name)
            node = schemas.get(name, {})
        for field, child in node.get("properties", {}).items():
            yield field
            yield from names(child)
        for key in ("anyOf", "oneOf", "allOf"):
            for child in node.get(key, ()):
                yield from names(child)
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                yield from names(node[key])
        if "discriminator" in node:
            for target in node["discriminator"].get("mapping", {}).values():
                yield from names({"$ref": target})

    return any(name == "id" or name.endswith(("_id", "_ids")) for name in names(schema))


def statuses_for(
    method: str, operation: dict[str, Any], *, json_body: bool, schemas: dict[str, Any]
) -> tuple[set[int], bool]:
    """The error statuses an operation answers by its traits, and whether it takes an Idempotency-Key."""
    parameters = operation.get("parameters", [])
    authenticated = bool(operation.get("security"))
    write = method in WRITES
    found: set[int] = set()
    if authenticated:
        found |= {401, 403}
    if any(p.get("in") == "path" for p in parameters):
        found.add(404)
    if parameters or json_body:
        found.add(422)
    if json_body:
        found |= {413, 415, 422}
        if _body_names_resources(operation, schemas):
            found.add(404)
    if method in ("post", "put", "patch") or "requestBody" in operation:
        found.add(413)
    if write:
        found.add(409)
    idempotent = authenticated and write
    if idempotent:
        found |= {409, 422}
    return found, idempotent


def document(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
        servers=app.servers,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    error_body = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(error_body.pop("$defs", {}))
    components["ErrorBody"] = error_body
    ref = ERROR_BODY_REF
    routes = {}
    for route in _routes(app):
        for method in route.methods or ():
            routes[(route.path_format, method.lower())] = route
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            route = routes.get((path, method))
            json_body = (
                route is not None
                and route.body_field is not None
                and isinstance(getattr(route, "original_route", route), UnitOfWorkRoute)
            )
            found, idempotent = statuses_for(method, operation, json_body=json_body, schemas=components)
            responses = operation.setdefault("responses", {})
            for status in sorted(found):
                current = responses.get(str(status))
                if current is None or "HTTPValidationError" in str(current):
                    responses[str(status)] = error_response(status, ref)
            for status, response in responses.items():  # declared extras: the same description and body
                if status.isdigit() and int(status) >= 400 and "content" not in response:
                    responses[status] = error_response(int(status), ref)
            if idempotent and not any(p.get("name") == IDEMPOTENCY_HEADER for p in operation.get("parameters", [])):
                operation.setdefault("parameters", []).append(dict(IDEMPOTENCY_PARAMETER))
            secret_fields = shown_once_fields(getattr(route, "response_model", None)) if route is not None else ()
            if secret_fields:
                operation["description"] = (
                    operation.get("description", "")
                    + f"\n\nThe answer shows `{'`, `'.join(secret_fields)}` once: store it now. A replay with the "
                    "same Idempotency-Key answers 409 `secret_shown_once` (the secret is never kept)."
                ).strip()
    text = str(schema.get("paths"))
    for unused in ("HTTPValidationError", "ValidationError"):
        if f"#/components/schemas/{unused}" not in text:
            components.pop(unused, None)
    return schema


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` answer :func:`document`, built once."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
