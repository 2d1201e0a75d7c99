"""Video providers. LiveKit through its server SDK (tokens for host, co-hosts and viewers; signed webhooks),
or a plain HLS URL. Without a provider the viewer page shows a test card.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from google.protobuf.json_format import MessageToDict
from livekit import api

from liveloop.config import Settings
from liveloop.kit.errors import Conflict, Unauthorized


@dataclass(frozen=True)
class LiveKit:
    url: str
    key: str
    secret: str

    @classmethod
    def of(cls, settings: Settings) -> LiveKit | None:
        if settings.livekit_url and settings.livekit_api_key and settings.livekit_api_secret:
            return cls(settings.livekit_url, settings.livekit_api_key, settings.livekit_api_secret)
        return None

    def token(self, room: str, identity: str, name: str, *, publish: bool, ttl: timedelta = timedelta(hours=6)) -> str:
        """A room token: hosts and approved co-hosts publish; viewers only subscribe."""
        grants = api.VideoGrants(
            room_join=True,
            room=room,
            can_publish=publish,
            can_subscribe=True,
            can_publish_data=publish,
        )
        return (
            api.AccessToken(self.key, self.secret)
            .with_identity(identity)
            .with_name(name)
            .with_grants(grants)
            .with_ttl(ttl)
            .to_jwt()
        )

    def receive_webhook(self, body: bytes, authorization: str | None) -> dict[str, Any]:
        """A verified LiveKit webhook event as a dict; ``Unauthorized`` when its signature does not match."""
        receiver = api.WebhookReceiver(api.TokenVerifier(self.key, self.secret))
        try:
            event = receiver.receive(body.decode(), authorization or "")
        except Exception as exc:  # the SDK raises plain exceptions for a bad token or a body hash mismatch
            raise Unauthorized(
                "The LiveKit webhook signature does not match; check the API key and secret.",
                code="invalid_signature",
            ) from exc
        return MessageToDict(event, preserving_proto_field_name=True)


def require(settings: Settings) -> LiveKit:
    provider = LiveKit.of(settings)
    if provider is None:
        raise Conflict(
            "No video provider is configured: set LIVELOOP_LIVEKIT_URL, _API_KEY and _API_SECRET.",
            code="video_not_configured",
        )
    return provider


def room_name(show_id: str) -> str:
    return f"liveloop-{show_id}"
