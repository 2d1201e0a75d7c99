"""Abuse limits for public endpoints: token buckets per client address and per device, checked before routing.

A bucket holds up to ``burst`` tokens and refills at ``per_minute`` tokens a minute; a request takes
``cost`` tokens from the bucket of its address and from the bucket of its device (when it carries one the
server issued and can verify: a made-up or forged device cookie counts as none), and
is refused with 429, a ``Retry-After`` header and the usual JSON error body (code ``rate_limited``) when
either cannot give them. Each group of routes (a :class:`RateRule`) has buckets of its own, so a flood of one
kind does not spend another's.

- Addresses are keyed by a keyed hash (no address is kept in memory or in Redis), IPv6 ones by their /64
  network, which is what one subscriber is given. Behind a reverse proxy on another host, set
  ``FORWARDED_ALLOW_IPS`` to its address so that uvicorn reports the client's address from
  ``X-Forwarded-For`` (it trusts 127.0.0.1 by default), or every client shares the proxy's buckets.
- Memory is bounded: the in-process store keeps at most ``max_keys`` buckets and forgets the least recently
  used one first (a forgotten bucket starts full again). ``redis://…`` shares the buckets between processes
  (one small Lua script per check); Redis expires each bucket once it would be full again.
- The limiter fails open: a Redis outage is logged and lets requests through, rather than taking invite
  links down with it.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from liveloop.kit.openapi import error_response
from liveloop.kit.signing import keyed_hash

log = logging.getLogger(__name__)

ERROR_CODE = "rate_limited"


@dataclass(frozen=True)
class Rate:
    per_minute: int
    burst: int

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0 and self.burst > 0


class Buckets(Protocol):
    async def take(self, key: str, rate: Rate, cost: int) -> float:
        """Take ``cost`` tokens; 0 when they were there, else the seconds until they will be (nothing taken)."""

    async def close(self) -> None: ...


class MemoryBuckets:
    """Buckets in this process, at most ``max_keys`` of them (least recently used forgotten first)."""

    def __init__(self, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key → (tokens, when)

    def __len__(self) -> int:
        return len(self._buckets)

    async def take(self, key: str, rate: Rate, cost: int) -> float:
        now = self.clock()
        refill = rate.per_minute / 60.0
        tokens, at = self._buckets.pop(key, (float(rate.burst), now))
        tokens = min(float(rate.burst), tokens + (now - at) * refill)
        wait = 0.0
        if tokens >= cost:
            tokens -= cost
        else:
            wait = (cost - tokens) / refill
        self._buckets[key] = (tokens, now)  # re-inserted last: the most recently used
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait

    async def close(self) -> None:
        self._buckets.clear()


# KEYS[1] bucket; ARGV burst, tokens per millisecond, cost. Redis's own clock, so processes agree on time.
_TAKE_LUA = """
local burst = tonumber(ARGV[1])
local refill = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * refill)
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
else
  wait = (cost - tokens) / refill / 1000
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / refill) + 1000)
return tostring(wait)
"""


class RedisBuckets:
    """Buckets in Redis, shared by every process that uses the same server."""

    def __init__(self, url: str, *, prefix: str = "liveloop:rl:") -> None:
        from redis import asyncio as aioredis

        self.prefix = prefix
        self._redis = aioredis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._script = self._redis.register_script(_TAKE_LUA)
        self._failing_since: float | None = None

    async def take(self, key: str, rate: Rate, cost: int) -> float:
        try:
            wait = float(
                await self._script(keys=[self.prefix + key], args=[rate.burst, rate.per_minute / 60_000, cost])
            )
        except Exception:
            if self._failing_since is None or time.monotonic() - self._failing_since > 60:
                log.warning("rate limit store unreachable; letting requests through", exc_info=True)
                self._failing_since = time.monotonic()
            return 0.0
        self._failing_since = None
        return wait

    async def close(self) -> None:
        await self._redis.aclose()


def create_buckets(url: str, *, max_keys: int = 100_000) -> Buckets:
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisBuckets(url)
    if url.startswith("memory://"):
        return MemoryBuckets(max_keys)
    raise ValueError(f"unsupported rate limit store {url!r}: use memory:// or redis://host:6379/0")


def address_key(address: str) -> str:
    """What one client is, for counting: an IPv4 address, or the /64 network of an IPv6 one."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class RateLimiter:
    def __init__(self, buckets: Buckets, *, secret: str, per_ip: Rate, per_device: Rate) -> None:
        self.buckets = buckets
        self.secret = secret
        self.per_ip = per_ip
        self.per_device = per_device

    async def check(self, group: str, *, address: str | None, device: str | None, cost: int = 1) -> float:
        """0 when the request may go on; else the seconds its client should wait (the longer of its buckets)."""
        wait = 0.0
        if address and self.per_ip.enabled:
            key = f"{group}:a:{keyed_hash(self.secret, address_key(address))}"
            wait = max(wait, await self.buckets.take(key, self.per_ip, min(cost, self.per_ip.burst)))
        if device and self.per_device.enabled:
            key = f"{group}:d:{keyed_hash(self.secret, device)}"
            wait = max(wait, await self.buckets.take(key, self.per_device, min(cost, self.per_device.burst)))
        return wait

    async def close(self) -> None:
        await self.buckets.close()


class RateRule:
    """Requests whose path matches ``pattern`` take ``cost`` tokens from the buckets of ``group``.

    A rule whose group is ``None`` exempts the paths it matches from the rules after it.
    """

    def __init__(self, pattern: str, group: str | None, *, cost: int = 1) -> None:
        self.regex = re.compile(pattern)
        self.group = group
        self.cost = cost

    def matches(self, path: str) -> bool:
        return self.regex.match(path) is not None


def _too_many(wait: float) -> tuple[list[tuple[bytes, bytes]], bytes]:
    seconds = max(1, math.ceil(wait))
    body = orjson.dumps(
        {
            "error": {
                "code": ERROR_CODE,
                "message": f"Too many requests from this address or device; wait {seconds} s "
                "(the Retry-After header) and try again.",
                "details": {"retry_after": seconds},
            }
        }
    )
    headers = [
        (b"content-type", b"application/json"),
        (b"retry-after", str(seconds).encode()),
        (b"cache-control", b"no-store"),
        (b"content-length", str(len(body)).encode()),
    ]
    return headers, body


DeviceOf = Callable[[Scope, str], str | None]
"""Reads the verified device of a request from its ``Cookie`` header (None: no device it can vouch for)."""


class RateLimitMiddleware:
    """Checks the rate limits of the first rule a request's path matches, before anything else reads it.

    The limiter is the application's ``state.rate_limiter`` (set when its services start); without one,
    requests pass. The device is what ``device_of`` reads from the request's cookies: a device the server
    issued and can verify, so that a client rotating made-up cookies has no device buckets of its own and
    counts against its address alone. Without ``device_of``, only addresses are counted.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        rules: Sequence[RateRule],
        prefixes: tuple[str, ...],
        device_of: DeviceOf | None = None,
    ):
        self.app = app
        self.rules = list(rules)
        self.prefixes = prefixes
        self.device_of = device_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        rule = next((r for r in self.rules if r.matches(scope["path"])), None)
        limiter: RateLimiter | None = getattr(scope["app"].state, "rate_limiter", None)
        if rule is None or rule.group is None or limiter is None:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        device = None
        if self.device_of is not None:
            for name, value in scope["headers"]:
                if name == b"cookie":
                    device = self.device_of(scope, value.decode("latin-1"))
                    if device is not None:
                        break
        wait = await limiter.check(rule.group, address=client[0] if client else None, device=device, cost=rule.cost)
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        headers, body = _too_many(wait)
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def document_limits(app: Any, rules: Sequence[RateRule]) -> None:
    """Add the 429 answer to the OpenAPI description of every operation a limiting rule covers."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema: dict[str, Any] = generate()
            for path, operations in schema.get("paths", {}).items():
                # Path parameters stand for any value: match the rules against a path with one filled in.
                rule = next((r for r in rules if r.matches(re.sub(r"\{[^}]+\}", "x", path))), None)
                if rule is None or rule.group is None:
                    continue
                for operation in operations.values():
                    operation.setdefault("responses", {})["429"] = error_response(429)
            app.openapi_schema = schema
        return app.openapi_schema  # type: ignore[no-any-return]

    app.openapi = openapi
