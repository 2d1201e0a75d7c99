"""HMAC helpers for signed webhooks (in and out) and keyed hashes of personal data."""

from __future__ import annotations

import base64
import hashlib
import hmac


def hmac_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def hmac_b64(secret: str, message: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def timestamped_signature(secret: str, timestamp: int, body: bytes) -> str:
    """``v1=<hex>`` over ``"{timestamp}.{body}"``, the scheme used for our webhooks in both directions."""
    return "v1=" + hmac_hex(secret, str(timestamp).encode() + b"." + body)


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def keyed_hash(secret: str, value: str) -> str:
    """A stable pseudonym for an IP address or similar: comparable, not reversible without the key."""
    return hmac_hex(secret, value.encode())[:32]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
