"""Operator authentication: API keys with scopes, stored hashed, shown once."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from liveloop.kit.errors import Forbidden, Unauthorized
from liveloop.kit.http import Session
from liveloop.models import ApiKey, ApiKeyScope, Shop
from liveloop.shops import idempotency
from liveloop.shops.repository import ApiKeyRepository

SCOPES: dict[ApiKeyScope, str] = {
    ApiKeyScope.ADMIN: "Everything, including API keys, webhook endpoints and shop settings.",
    ApiKeyScope.MEMBERS_READ: "Read members, their consents, rewards, balances and ledger entries.",
    ApiKeyScope.MEMBERS_WRITE: "Create and update members and consents.",
    ApiKeyScope.ORDERS_WRITE: "Push orders through the API (webhooks are signed separately).",
    ApiKeyScope.CAMPAIGNS_READ: "Read campaigns, referrals, leaderboards, draws and groups.",
    ApiKeyScope.CAMPAIGNS_WRITE: "Create and change campaigns, groups and draws.",
    ApiKeyScope.LEDGER_READ: "Read balances and ledger entries.",
    ApiKeyScope.LEDGER_WRITE: "Credit, debit, hold, release and reverse ledger entries.",
    ApiKeyScope.COUPONS_READ: "Read coupon batches and coupons.",
    ApiKeyScope.COUPONS_WRITE: "Generate, bind, redeem and roll back coupons.",
    ApiKeyScope.REVIEWS_WRITE: "Approve or reject referrals held for fraud review.",
    ApiKeyScope.LIVE_READ: "Read shows and their live counters.",
    ApiKeyScope.LIVE_WRITE: "Schedule, start and end shows, pin products, moderate, mint viewer and host tokens.",
}
# The scopes' names, sorted: what messages and the API documentation list.
SCOPE_NAMES: list[str] = sorted(scope.value for scope in SCOPES)

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
    # Copied at authentication: the access log reads it after the request's transaction has ended, when a
    # rollback has expired the shop row and its attributes can no longer be loaded.
    shop_id: str

    def require(self, scope: ApiKeyScope) -> None:
        if ApiKeyScope.ADMIN in self.scopes or scope in self.scopes:
            return
        raise Forbidden(
            f"This API key lacks the scope {scope.value!r}. Create a key with "
            f"`liveloop apikey create --scope {scope.value}` or ask an admin.",
            code="missing_scope",
        )


def _in_force(api_key: ApiKey, key: str) -> bool:
    return api_key.revoked_at is None and secrets.compare_digest(api_key.key_hash, hash_key(key))


async def _authenticate(request: Request, session: Session, creds: HTTPAuthorizationCredentials | None) -> Operator:
    if creds is None or not creds.credentials:
        raise Unauthorized(
            "Send an API key as `Authorization: Bearer <key>`; create one with `liveloop apikey create`.",
            code="missing_api_key",
        )
    key = creds.credentials
    parts = key.split("_", 2)  # ll_<hex>_<secret>; the secret part may itself contain "_"
    prefix = f"{parts[0]}_{parts[1]}" if len(parts) == 3 else ""
    found = await ApiKeyRepository(session).with_shop_by_prefix(prefix)
    if found is None or not _in_force(found[0], key):
        raise Unauthorized("The API key is unknown or revoked.", code="invalid_api_key")
    api_key, shop = found
    operator = Operator(shop=shop, key_id=api_key.id, scopes=frozenset(api_key.scopes), shop_id=shop.id)
    request.state.operator = operator
    return operator


def authorized(scope: ApiKeyScope | str) -> Any:
    """Dependency: an authenticated operator holding ``scope`` (and nothing else).

    A scope given as text must name an :class:`ApiKeyScope` (a typo fails when the route is declared).
    """
    needed = ApiKeyScope(scope)

    async def dependency(
        request: Request,
        session: Session,
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Operator:
        operator = await _authenticate(request, session, creds)
        operator.require(needed)
        return operator

    return Depends(dependency)


def requires(scope: ApiKeyScope | str) -> Any:
    """Dependency: an operator holding ``scope``; a write also claims its Idempotency-Key, once the shop is known.

    The key is scoped to the operator's shop, so the claim follows authentication (see ``shops.idempotency``).
    """

    async def dependency(request: Request, session: Session, operator: Operator = authorized(scope)) -> Operator:
        if request.method in idempotency.WRITES:
            await idempotency.claim(request, session, operator.shop_id)
        return operator

    return Depends(dependency)
