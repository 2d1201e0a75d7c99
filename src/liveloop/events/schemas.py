"""API models of webhook endpoints, their deliveries and the event log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from liveloop.events.service import EVENT_TYPES
from liveloop.kit.http import ShownOnce
from liveloop.kit.schemas import RequestModel
from liveloop.models import DeliveryStatus

EventType = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        description=f"'*' or one of: {', '.join(EVENT_TYPES)}",
        # Checked by the service (422 unknown_event_type); listed here so clients see the choices.
        json_schema_extra={"enum": ["*", *EVENT_TYPES]},
    ),
]
EventTypes = Annotated[list[EventType], Field(min_length=1, max_length=len(EVENT_TYPES) + 1)]
MAX_URL_LENGTH = 2000
EndpointUrl = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        pattern=r"^[hH][tT][tT][pP][sS]?://",
        description="http:// or https:// on the public internet (no user name or password in it). Redirects "
        "are not followed.",
    ),
]
Description = Annotated[str, Field(max_length=500)]


class WebhookEndpointCreate(RequestModel):
    url: EndpointUrl
    event_types: EventTypes = Field(default_factory=lambda: ["*"])
    description: Description | None = None


class WebhookEndpointUpdate(RequestModel):
    """Only the fields given change. ``active: false`` pauses the endpoint: its deliveries wait until it is
    active again."""

    url: EndpointUrl | None = None
    event_types: EventTypes | None = None
    description: Description | None = None
    active: bool | None = None


class WebhookEndpoint(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    url: str
    description: str | None
    event_types: list[str]
    active: bool = Field(description="False while paused: nothing is sent, deliveries wait")
    previous_secret_expires_at: datetime | None = Field(
        description="Until then deliveries are also signed with the secret before the last rotation"
    )
    created_at: datetime


class WebhookEndpointWithSecret(WebhookEndpoint):
    secret: ShownOnce = Field(description="Verify X-Liveloop-Signature with it; shown once, in this response only")


class WebhookEndpointDeleted(BaseModel):
    id: str
    deleted: bool = True


class SecretRotation(RequestModel):
    previous_secret_valid_seconds: int = Field(
        86400,
        ge=0,
        le=7 * 86400,
        description="How long deliveries stay signed with the old secret too (both in X-Liveloop-Signature), "
        "so receivers can switch without missing one; 0 retires it at once",
    )


class WebhookDelivery(BaseModel):
    id: str
    endpoint_id: str
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None = Field(description="When a pending delivery is tried next; null otherwise")
    delivered_at: datetime | None
    created_at: datetime


class Event(BaseModel):
    id: str
    type: str
    created_at: str
    data: dict[str, Any]
