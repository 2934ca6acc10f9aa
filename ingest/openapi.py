"""The collector's OpenAPI document: the event contract as request bodies, every answer's shape."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from ingest.errors import ErrorKind
from schemas.events import Batch, Group, Identify, Track


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the field, e.g. batch.3.track.event")
    message: str


class RejectedEvent(BaseModel):
    """One event that was not accepted; it is also on the `events.invalid` topic."""

    model_config = ConfigDict(populate_by_name=True)

    index: int = Field(description="Position of the event in the request's batch (0 for a call)")
    message_id: str | None = Field(alias="messageId")
    reason: str
    errors: list[FieldError] = Field(default_factory=list)


class EventNotice(BaseModel):
    """An accepted event that was changed on the way in (a far-future timestamp clamped)."""

    model_config = ConfigDict(populate_by_name=True)

    index: int
    message_id: str = Field(alias="messageId")
    warning: str


class Accepted(BaseModel):
    """200: every accepted event is held by Kafka, every rejected one by `events.invalid`."""

    success: bool = Field(description="True when no event was rejected")
    accepted: int = Field(description="How many events Kafka holds")
    rejected: list[RejectedEvent] = Field(
        default_factory=list, description="Events not accepted, each with its reason"
    )
    warnings: list[EventNotice] = Field(default_factory=list)


class Problem(BaseModel):
    """RFC 7807 problem details, plus `code` and `message` as Segment's libraries read them."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    message: str
    errors: list[FieldError] = Field(default_factory=list)


_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}
_WHEN = {
    ErrorKind.BAD_PAYLOAD: "The body is not JSON, or not a batch envelope",
    ErrorKind.BAD_KEY: "Unknown or missing write key",
    ErrorKind.TOO_LARGE: "Body, decompressed body or event count over the limits",
    ErrorKind.UNSUPPORTED_ENCODING: "A Content-Encoding other than gzip",
    ErrorKind.RATE_LIMITED: "Over the write key's rate limit; nothing was accepted",
    ErrorKind.SINK_UNAVAILABLE: "Kafka did not acknowledge everything; nothing was accepted",
}
EVENT_PATHS = {
    "/v1/batch": Batch,
    "/v1/import": Batch,
    "/v1/track": Track,
    "/v1/identify": Identify,
    "/v1/group": Group,
}


# Segment's page, screen and alias calls: read like any other, then rejected (see collector)
OTHER_CALL = {
    "type": "object",
    "additionalProperties": True,
    "description": "A Segment call this product does not store: answered 200 with the event"
    " in `rejected`, and parked on `events.invalid`",
}
# a header parameter would let clients label any body gzip; it is a transfer encoding instead
GZIP = "The body may be gzip-compressed (`Content-Encoding: gzip`, every member decoded)."


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _responses() -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {
            "description": "Judged event by event: see `accepted` and `rejected`",
            "content": {"application/json": {"schema": _ref("Accepted")}},
        }
    }
    for kind, when in _WHEN.items():
        answer: dict[str, Any] = {
            "description": when,
            "content": {"application/problem+json": {"schema": _ref("Problem")}},
        }
        if kind in (ErrorKind.RATE_LIMITED, ErrorKind.SINK_UNAVAILABLE):
            answer["headers"] = _RETRY_AFTER
        responses[str(kind.status)] = answer
    return responses


def document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document for the routes, with the request and response bodies the handlers
    read and write by hand (they stream and judge bodies themselves, so FastAPI cannot see)."""
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    models: list[type[BaseModel]] = [Accepted, Problem, Batch, Track, Identify, Group]
    _, defs = models_json_schema(
        [(m, "validation") for m in models], ref_template="#/components/schemas/{model}"
    )
    schema.setdefault("components", {}).setdefault("schemas", {}).update(defs["$defs"])
    for path, operations in schema["paths"].items():
        post = operations.get("post")
        if post is None or not path.startswith("/v1/"):
            continue
        post["responses"] = _responses()
        post["security"] = [{"writeKey": []}]
        model = EVENT_PATHS.get(path)
        body = _ref(model.__name__) if model is not None else OTHER_CALL
        post["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
        post["description"] = GZIP
    schema["components"]["securitySchemes"] = {
        "writeKey": {
            "type": "http",
            "scheme": "basic",
            "description": "The write key as user name, no password (or `writeKey` in the body)",
        }
    }
    return schema
