"""Error codes of events and webhook endpoints."""

from __future__ import annotations

from enum import StrEnum


class EventsErrorCode(StrEnum):
    INVALID_URL = "invalid_url"  # not http(s), credentials in it, no host, unparsable
    FORBIDDEN_WEBHOOK_TARGET = "forbidden_webhook_target"  # the host is or resolves to a non-public address
    WEBHOOK_HOST_UNRESOLVABLE = "webhook_host_unresolvable"  # the host name does not resolve
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    TOO_MANY_WEBHOOK_ENDPOINTS = "too_many_webhook_endpoints"
    WEBHOOK_ENDPOINT_NOT_FOUND = "webhook_endpoint_not_found"
    WEBHOOK_DELIVERY_NOT_FOUND = "webhook_delivery_not_found"
    WEBHOOK_ENDPOINT_PAUSED = "webhook_endpoint_paused"  # a re-send to a paused endpoint
