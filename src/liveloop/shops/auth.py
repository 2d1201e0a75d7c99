"""Operator authentication: API keys with scopes, stored hashed, shown once."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select

from liveloop.kit.errors import Forbidden, Unauthorized
from liveloop.kit.http import Session
from liveloop.models import ApiKey, Shop
from liveloop.shops import idempotency

SCOPES = {
    "admin": "Everything, including API keys, webhook endpoints and shop settings.",
    "members:read": "Read members, their consents, rewards, balances and ledger entries.",
    "members:write": "Create and update members and consents.",
    "orders:write": "Push orders through the API (webhooks are signed separately).",
    "campaigns:read": "Read campaigns, referrals, leaderboards, draws and groups.",
    "campaigns:write": "Create and change campaigns, groups and draws.",
    "ledger:read": "Read balances and ledger entries.",
    "ledger:write": "Credit, debit, hold, release and reverse ledger entries.",
    "coupons:read": "Read coupon batches and coupons.",
    "coupons:write": "Generate, bind, redeem and roll back coupons.",
    "reviews:write": "Approve or reject referrals held for fraud review.",
    "live:read": "Read shows and their live counters.",
    "live:write": "Schedule, start and end shows, pin products, moderate, mint viewer and host tokens.",
}

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer ll_…`")


def generate_key() -> tuple[str, str, str]:
    """Return (full key, lookup prefix, sha256 of the key). Only the hash is stored."""
    prefix = "ll_" + secrets.token_hex(6)
    key = f"{prefix}_{secrets.token_urlsafe(30)}"
    return key, prefix, hash_key(key)


def hash_key(key: str) -> str:
    # The key carries 240 random bits, so a fast hash is the right tool (no password stretching needed).
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Operator:
    shop: Shop
    key_id: str
    scopes: frozenset[str]

    @property
    def shop_id(self) -> str:
        return self.shop.id

    def require(self, scope: str) -> None:
        if "admin" in self.scopes or scope in self.scopes:
            return
        raise Forbidden(
            f"This API key lacks the scope {scope!r}. Create a key with "
            f"`liveloop apikey create --scope {scope}` or ask an admin.",
            code="missing_scope",
        )


async def _authenticate(request: Request, session: Session, creds: HTTPAuthorizationCredentials | None) -> Operator:
    if creds is None or not creds.credentials:
        raise Unauthorized(
            "Send an API key as `Authorization: Bearer <key>`; create one with `liveloop apikey create`.",
            code="missing_api_key",
        )
    key = creds.credentials
    parts = key.split("_", 2)  # ll_<hex>_<secret>; the secret part may itself contain "_"
    prefix = f"{parts[0]}_{parts[1]}" if len(parts) == 3 else ""
    row = (
        await session.execute(select(ApiKey, Shop).join(Shop, Shop.id == ApiKey.shop_id).where(ApiKey.prefix == prefix))
    ).one_or_none()
    if (
        row is None
        or row.ApiKey.revoked_at is not None
        or not secrets.compare_digest(row.ApiKey.key_hash, hash_key(key))
    ):
        raise Unauthorized("The API key is unknown or revoked.", code="invalid_api_key")
    operator = Operator(shop=row.Shop, key_id=row.ApiKey.id, scopes=frozenset(row.ApiKey.scopes))
    request.state.operator = operator
    return operator


def authorized(scope: str) -> Any:
    """Dependency: an authenticated operator holding ``scope`` (and nothing else)."""

    async def dependency(
        request: Request,
        session: Session,
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Operator:
        operator = await _authenticate(request, session, creds)
        operator.require(scope)
        return operator

    return Depends(dependency)


def requires(scope: str) -> Any:
    """Dependency: an operator holding ``scope``; a write also claims its Idempotency-Key, once the shop is known.

    The key is scoped to the operator's shop, so the claim follows authentication (see ``shops.idempotency``).
    """

    async def dependency(request: Request, session: Session, operator: Operator = authorized(scope)) -> Operator:
        if request.method in idempotency.WRITES:
            await idempotency.claim(request, session, operator.shop_id)
        return operator

    return Depends(dependency)
