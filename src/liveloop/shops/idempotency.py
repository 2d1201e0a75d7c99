"""Idempotency keys: a write repeated with its ``Idempotency-Key`` has no second effect.

The first request with a key reserves it in its own transaction (a row under a unique constraint on shop,
scope and key) and, just before that transaction commits, stores its answer there; a repeat answers that
stored answer. The same key with another body is refused; a repeat while the first still runs waits on the
row and then replays, or answers 409 when the first has not finished. Answers holding a secret shown once
are kept without it (see :data:`liveloop.kit.http.ShownOnce`).
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from fastapi import Request, Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from liveloop.kit.errors import Conflict, Unprocessable
from liveloop.kit.http import IDEMPOTENCY_HEADER, IdempotentReplay, before_commit, route_secrets
from liveloop.kit.ids import new_id
from liveloop.kit.signing import sha256_hex
from liveloop.models import IdempotencyRecord
from liveloop.shops.repository import IdempotencyRepository

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class IdempotencyGuard:
    record_id: str
    secrets: tuple[str, ...] = ()

    async def save(self, session: AsyncSession, response: Response) -> None:
        record = await IdempotencyRepository(session).by_id(self.record_id)
        assert record is not None
        record.status_code = response.status_code
        body = bytes(response.body) if hasattr(response, "body") else b"null"
        stored = orjson.loads(body) if body else None
        if self.secrets and isinstance(stored, dict):
            stored = {k: v for k, v in stored.items() if k not in self.secrets}  # never kept: shown once
        record.response_body = {"json": stored}
        await session.flush()


def canonical_body(body: bytes) -> bytes:
    """The body as canonical JSON (sorted keys, no whitespace), so neither changes its idempotency hash.

    Bodies that are not JSON are compared as they are.
    """
    if not body:
        return body
    try:
        return orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONDecodeError, TypeError):
        return body


async def claim(request: Request, session: AsyncSession, shop_id: str) -> None:
    """Reserve the request's ``Idempotency-Key`` (if any) in this transaction, or replay its first answer.

    The reservation is a row under a unique constraint on (shop, scope, key): a concurrent request with the
    same key waits on that row and, once the first commits, replays its stored response.
    """
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return
    if not 1 <= len(key) <= 255:
        raise Unprocessable(
            "Idempotency-Key must be 1 to 255 characters; use a UUID per logical operation.",
            code="invalid_idempotency_key",
        )
    scope = f"{request.method} {request.url.path}"
    raw = await request.body()
    request_hash = sha256_hex(scope.encode() + b"\n" + canonical_body(raw))
    # Records written before bodies were canonicalized hold the hash of the raw bytes; they still match.
    accepted = {request_hash, sha256_hex(scope.encode() + b"\n" + raw)}
    secret_fields = route_secrets(request.scope.get("route"))
    records = IdempotencyRepository(session)

    def replay(record: IdempotencyRecord) -> IdempotentReplay:
        if record.request_hash not in accepted:
            return IdempotentReplay(
                422,
                {
                    "error": {
                        "code": "idempotency_key_reused",
                        "message": "This Idempotency-Key was already used with a different request body. "
                        "Use a new key for a different operation.",
                    }
                },
            )
        stored = record.response_body.get("json")
        if secret_fields:
            resource = {k: v for k, v in stored.items() if k not in secret_fields} if isinstance(stored, dict) else None
            return IdempotentReplay(
                409,
                {
                    "error": {
                        "code": "secret_shown_once",
                        "message": "This request succeeded already, and its answer held a secret "
                        f"({', '.join(secret_fields)}) that is shown only once and was not kept. The resource it "
                        "created is in details.resource; if the secret was lost, revoke or rotate it, or repeat "
                        "the request with a new Idempotency-Key.",
                        "details": {"resource": resource},
                    }
                },
            )
        return IdempotentReplay(record.status_code, stored)

    found = await records.find(shop_id, scope, key)
    if found is not None:
        raise replay(found)
    record = IdempotencyRecord(
        id=new_id("idem"),
        shop_id=shop_id,
        scope=scope,
        key=key,
        request_hash=request_hash,
        status_code=0,
        response_body={},
    )
    try:
        await records.add(record)
    except IntegrityError:
        await session.rollback()
        found = await records.find(shop_id, scope, key)
        if found is None or found.status_code == 0:
            raise Conflict(
                "A request with this Idempotency-Key is still being processed; retry in a moment.",
                code="idempotency_key_in_use",
            ) from None
        raise replay(found) from None
    before_commit(request, IdempotencyGuard(record.id, secret_fields).save)
