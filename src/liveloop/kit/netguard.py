"""Outgoing requests only to addresses the operator may reach: a guard against server-side request forgery.

One rule, applied twice: when a URL is accepted (its host, or every address its name resolves to, must be
public) and again when a connection is opened, on the very address connected to, so a name that resolves
to a public address at registration and to ``127.0.0.1`` later (DNS rebinding) is still refused.

``GuardedBackend`` is an httpcore network backend: it resolves the host itself, checks every address and
connects to a checked one, while the Host header and the TLS server name stay those of the URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Reachable only inside the operator's own network: allowed when private targets are (self-hosted setups).
_PRIVATE = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")  # Linux connects 0.x.x.x to the local host
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the well-known NAT64 prefix carries an IPv4 address
_PRIVATE_KINDS = frozenset({"loopback", "private"})
RESOLVE_TIMEOUT_SECONDS = 5.0


class TargetRefused(Exception):
    """A URL or address the guard will not let a request go to. ``reason`` is a sentence for the operator."""

    def __init__(self, reason: str, *, kind: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind  # forbidden (an address class), unresolvable, invalid


@dataclass(frozen=True)
class Target:
    url: httpx.URL
    host: str
    port: int
    addresses: tuple[IPAddress, ...]


def parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """An IPv4 address in any spelling ``inet_aton`` accepts (``2130706433``, ``0177.0.0.1``, ``0x7f.1``,
    ``127.1``), or None. These are what a resolver turns such a host into, so they are checked as such."""
    if host.endswith(".") and host.count(".") == 4:  # "127.0.0.1." is the same address
        host = host[:-1]
    parts = host.split(".") if host else []
    if not 1 <= len(parts) <= 4:
        return None
    numbers = []
    for part in parts:
        try:
            if part[:2].lower() == "0x":
                numbers.append(int(part[2:] or "0", 16))
            elif len(part) > 1 and part.startswith("0"):
                numbers.append(int(part[1:], 8))
            else:
                numbers.append(int(part, 10) if part.isdigit() else -1)
        except ValueError:
            return None
    if any(n < 0 for n in numbers):
        return None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        return None
    value = 0
    for n in head:
        value = value << 8 | n
    return ipaddress.IPv4Address(value << 8 * (4 - len(head)) | last)


def parse_ip(host: str) -> IPAddress | None:
    """``host`` as an IP address (IPv6 with or without brackets, IPv4 in any spelling), or None for a name."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        return parse_ipv4(bare)


def address_kind(address: IPAddress) -> str | None:
    """Why ``address`` is not a public one (``"loopback"``, ``"link-local"``…), or None when it is."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return address_kind(embedded)
    if address.is_unspecified or address in _THIS_NETWORK:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if any(address in network for network in _PRIVATE):
        return "private"
    if address.is_reserved:
        return "reserved"
    if not address.is_global:
        return "non-public"
    return None


def check_address(address: IPAddress, *, allow_private: bool = False) -> None:
    """Raise ``TargetRefused`` unless a request may go to ``address``.

    With ``allow_private``, loopback and private networks are allowed (a self-hosted receiver next to
    liveloop); link-local (cloud metadata at 169.254.169.254), multicast, unspecified and reserved
    addresses never are.
    """
    kind = address_kind(address)
    if kind is None or (allow_private and kind in _PRIVATE_KINDS):
        return
    hint = "" if kind not in _PRIVATE_KINDS else " (self-hosted setups may allow private targets in the settings)"
    raise TargetRefused(f"{address} is a {kind} address, not a public one{hint}.", kind="forbidden")


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to, looked up off the event loop (``loop.getaddrinfo``)."""
    literal = parse_ip(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, TimeoutError, UnicodeError) as exc:
        raise TargetRefused(
            f"The host {host!r} could not be resolved ({type(exc).__name__}).", kind="unresolvable"
        ) from None
    addresses: list[IPAddress] = []
    for family, *_, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise TargetRefused(f"The host {host!r} has no IPv4 or IPv6 address.", kind="unresolvable")
    return addresses


async def resolve_checked(host: str, port: int, *, allow_private: bool = False) -> list[IPAddress]:
    """The addresses of ``host``, all of them allowed; ``TargetRefused`` if any one is not."""
    addresses = await resolve(host, port)
    for address in addresses:
        check_address(address, allow_private=allow_private)
    return addresses


def parse_url(url: str, *, schemes: Iterable[str] = ("http", "https")) -> tuple[httpx.URL, str, int]:
    """Parse ``url`` as the HTTP client will; refuse other schemes, credentials and a missing host."""
    allowed = tuple(schemes)
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise TargetRefused("The URL contains spaces or control characters.", kind="invalid")
    try:
        parsed = httpx.URL(url)
        host = parsed.raw_host.decode("ascii")
    except (httpx.InvalidURL, UnicodeError, ValueError):
        # Say so when it is an address we would refuse anyway (httpx rejects "0177.0.0.1", for one).
        with contextlib.suppress(ValueError):
            literal = parse_ip(urlsplit(url).hostname or "")
            if literal is not None:
                check_address(literal)
        raise TargetRefused(
            "The URL cannot be parsed; write it like https://hooks.example.com/liveloop.", kind="invalid"
        ) from None
    if parsed.scheme not in allowed:
        raise TargetRefused(f"The URL must start with {' or '.join(s + '://' for s in allowed)}.", kind="invalid")
    if parsed.userinfo:
        raise TargetRefused(
            "The URL must not carry a user name or password; receivers verify the signature instead.", kind="invalid"
        )
    if not host:
        raise TargetRefused("The URL has no host.", kind="invalid")
    return parsed, host, parsed.port or (443 if parsed.scheme == "https" else 80)


async def check_url(url: str, *, allow_private: bool = False) -> Target:
    """Accept ``url`` only if it is http(s), carries no credentials and its host is (resolves only to) public
    addresses. Raise ``TargetRefused`` otherwise."""
    parsed, host, port = parse_url(url)
    addresses = await resolve_checked(host, port, allow_private=allow_private)
    return Target(url=parsed, host=host, port=port, addresses=tuple(addresses))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to checked addresses: resolves the host, checks every address, connects to one of them.

    TLS is started by httpcore on the returned stream with the URL's host as server name, and the Host
    header comes from the URL, so certificates and virtual hosts work as usual.
    """

    def __init__(self, *, allow_private: bool = False, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.allow_private = allow_private
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (the httpcore interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await resolve_checked(host, port, allow_private=self.allow_private)
        error: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    str(address), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (the httpcore interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise TargetRefused("Unix sockets are not a webhook target.", kind="forbidden")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """An httpx transport whose connections go through ``GuardedBackend`` (no proxies, no Unix sockets)."""

    def __init__(
        self, *, allow_private: bool = False, max_connections: int = 100, verify: ssl.SSLContext | bool = True
    ) -> None:
        super().__init__(verify=verify, limits=httpx.Limits(max_connections=max_connections))
        # The pool httpx would build, but connecting through the guard (httpx has no option for the backend).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=5.0,
            http1=True,
            http2=False,
            network_backend=GuardedBackend(allow_private=allow_private),
        )
