"""Error codes of events and webhook endpoints."""

from __future__ import annotations

from liveloop.kit.errors import ErrorCode


class EventsErrorCode(ErrorCode):
    """Events out: webhook endpoints and their deliveries (a URL that is not a URL at all: `invalid_url`)."""

    FORBIDDEN_WEBHOOK_TARGET = (
        "forbidden_webhook_target",
        422,
        "The webhook URL's host is, or resolves to, an address webhooks are never sent to: loopback, private, "
        "link-local (cloud metadata), multicast, unspecified or reserved.",
        "Give a URL whose host is on the public internet; a self-hosted receiver on a private network needs "
        "`LIVELOOP_WEBHOOK_ALLOW_PRIVATE_TARGETS=true`.",
    )
    WEBHOOK_HOST_UNRESOLVABLE = (
        "webhook_host_unresolvable",
        422,
        "The webhook URL's host name has no IPv4 or IPv6 address.",
        "Check the spelling of the host and its DNS record, then register the endpoint again.",
    )
    UNKNOWN_EVENT_TYPE = (
        "unknown_event_type",
        422,
        "An event type in `event_types` is not one liveloop sends.",
        "Subscribe to `*` (every event) or to event types listed in the message.",
    )
    TOO_MANY_WEBHOOK_ENDPOINTS = (
        "too_many_webhook_endpoints",
        409,
        "The shop has as many webhook endpoints as it may have.",
        "Delete an endpoint you no longer use, or subscribe an existing one to more event types.",
    )
    WEBHOOK_ENDPOINT_NOT_FOUND = (
        "webhook_endpoint_not_found",
        404,
        "The shop has no webhook endpoint with this id.",
        "List the endpoints with `GET /v1/webhook-endpoints` and use one of their ids.",
    )
    WEBHOOK_DELIVERY_NOT_FOUND = (
        "webhook_delivery_not_found",
        404,
        "The webhook endpoint has no delivery with this id.",
        "List its deliveries with `GET /v1/webhook-endpoints/{id}/deliveries` and use one of their ids.",
    )
    WEBHOOK_ENDPOINT_PAUSED = (
        "webhook_endpoint_paused",
        409,
        "A delivery was re-sent to a paused endpoint, which receives nothing while paused.",
        "Resume the endpoint (`PATCH` with `active: true`); its queued deliveries then go out.",
    )
