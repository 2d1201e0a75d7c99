"""The outgoing-request guard: which addresses it refuses, and that it refuses them when connecting too."""

from __future__ import annotations

import ipaddress
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from liveloop.kit.netguard import GuardedTransport, TargetRefused, check_url, parse_ipv4

# A name the resolver refuses before asking any DNS server (a label over 63 characters): no query leaves.
UNRESOLVABLE = "https://" + "a" * 64 + ".example/hooks"

# Every spelling a resolver accepts for the loopback address.
LOOPBACK_SPELLINGS = ["127.0.0.1", "2130706433", "0177.0.0.1", "0x7f.1", "127.1", "0x7f000001", "017700000001"]

FORBIDDEN = [
    ("http://127.0.0.1/", "loopback"),
    ("http://2130706433/", "loopback"),
    ("http://0177.0.0.1/", "loopback"),
    ("http://0x7f.1/", "loopback"),
    ("http://127.1/", "loopback"),
    ("http://127.0.0.1./", "loopback"),
    ("http://localhost:8000/hooks", "loopback"),  # a DNS name, resolved
    ("http://[::1]/", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),  # IPv4-mapped IPv6
    ("http://[::ffff:7f00:1]/", "loopback"),
    ("http://[64:ff9b::7f00:1]/", "loopback"),  # NAT64
    ("http://[2002:7f00:1::]/", "loopback"),  # 6to4
    ("http://169.254.169.254/latest/meta-data/", "link-local"),  # cloud metadata
    ("http://[::ffff:169.254.169.254]/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://10.0.0.1/", "private"),
    ("http://172.16.5.4/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://0xc0a80101/", "private"),  # 192.168.1.1
    ("http://100.64.0.1/", "private"),  # carrier-grade NAT
    ("http://[fd00::1]/", "private"),
    ("http://224.0.0.1/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://0.1.2.3/", "unspecified"),
    ("http://240.0.0.1/", "reserved"),
    ("http://255.255.255.255/", "reserved"),
    ("http://[::7f00:1]/", "reserved"),  # IPv4-compatible IPv6
    ("http://192.0.2.10/", "non-public"),  # documentation range
    ("http://198.18.0.1/", "non-public"),  # benchmarking range
]


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
def test_every_ipv4_spelling_is_read_as_the_address_it_means(host: str) -> None:
    assert parse_ipv4(host) == ipaddress.IPv4Address("127.0.0.1")


@pytest.mark.parametrize("host", ["example.com", "1.2.3.4.5", "256.1.1.1", "08.0.0.1", "1..2", "1.2.3.", ""])
def test_names_and_malformed_numbers_are_not_addresses(host: str) -> None:
    assert parse_ipv4(host) is None


@pytest.mark.parametrize(("url", "kind"), FORBIDDEN)
async def test_non_public_targets_are_refused(url: str, kind: str) -> None:
    with pytest.raises(TargetRefused) as refused:
        await check_url(url)
    assert refused.value.kind == "forbidden"
    assert f"a {kind} address" in refused.value.reason


@pytest.mark.parametrize(
    "url",
    ["https://93.184.216.34/hooks", "http://8.8.8.8:8080/x?y=1", "https://[2606:4700:4700::1111]/", "http://1.1/"],
)
async def test_public_addresses_are_accepted(url: str) -> None:
    target = await check_url(url)
    assert all(a.is_global for a in target.addresses)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/", "http://localhost/", "http://10.1.2.3/", "http://[fd00::1]/"])
async def test_private_targets_pass_only_when_allowed(url: str) -> None:
    with pytest.raises(TargetRefused):
        await check_url(url)
    await check_url(url, allow_private=True)


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/", "http://[fe80::1]/", "http://224.0.0.1/", "http://0.0.0.0/", "http://240.0.0.1/"]
)
async def test_metadata_multicast_and_reserved_stay_refused_when_private_targets_are_allowed(url: str) -> None:
    with pytest.raises(TargetRefused):
        await check_url(url, allow_private=True)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://93.184.216.34/", "must start with"),
        ("file:///etc/passwd", "must start with"),
        ("gopher://93.184.216.34/", "must start with"),
        ("http://user:secret@93.184.216.34/", "user name or password"),
        ("http://:secret@93.184.216.34/", "user name or password"),
        ("http:///path", "no host"),
        ("http://93.184.216.34/a b", "spaces"),
        ("http://93.184.216.34/\r\nX: y", "control"),
        ("http://[::1/", "cannot be parsed"),
    ],
)
async def test_malformed_urls_are_refused_with_a_reason(url: str, words: str) -> None:
    with pytest.raises(TargetRefused) as refused:
        await check_url(url)
    assert refused.value.kind == "invalid"
    assert words in refused.value.reason


async def test_a_name_that_does_not_resolve_is_refused() -> None:
    with pytest.raises(TargetRefused) as refused:
        await check_url(UNRESOLVABLE)
    assert refused.value.kind == "unresolvable"


class Server:
    """An HTTP server on 127.0.0.1 that counts the connections it accepts and records each request's Host."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.connections = 0
        self.hosts: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hosts.append(self.headers["Host"])
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        class Counting(ThreadingHTTPServer):
            def get_request(self) -> Any:
                sock, addr = super().get_request()
                server.connections += 1
                return (tls.wrap_socket(sock, server_side=True) if tls else sock), addr

        self.httpd = Counting(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "2130706433", "127.1"])
async def test_the_transport_refuses_to_connect_to_a_non_public_address(server: Server, host: str) -> None:
    async with httpx.AsyncClient(transport=GuardedTransport()) as client:
        with pytest.raises(TargetRefused):
            await client.get(f"http://{host}:{server.port}/")
    assert server.connections == 0  # refused before connecting, whatever the name resolved to


async def test_the_transport_connects_to_the_checked_address_and_keeps_the_host_header(server: Server) -> None:
    async with httpx.AsyncClient(transport=GuardedTransport(allow_private=True)) as client:
        by_name = await client.get(f"http://localhost:{server.port}/")
        by_number = await client.get(f"http://2130706433:{server.port}/")
    assert by_name.text == by_number.text == "ok"
    assert server.hosts == [f"localhost:{server.port}", f"2130706433:{server.port}"]


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for the name localhost (and not for 127.0.0.1): (cert, key)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_tls_checks_the_certificate_of_the_host_in_the_url(certificate: tuple[Path, Path]) -> None:
    """The guard connects to the IP it checked, while TLS still verifies the URL's host name."""
    cert, key = certificate
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    names: list[str | None] = []
    server_ctx.sni_callback = lambda _sock, name, _ctx: names.append(name)  # type: ignore[assignment,func-returns-value]
    client_ctx = ssl.create_default_context(cafile=str(cert))
    tls = Server(tls=server_ctx)
    try:
        async with httpx.AsyncClient(transport=GuardedTransport(allow_private=True, verify=client_ctx)) as client:
            assert (await client.get(f"https://localhost:{tls.port}/")).text == "ok"
            with pytest.raises(httpx.ConnectError):  # the certificate names localhost, not 127.0.0.1
                await client.get(f"https://127.0.0.1:{tls.port}/")
    finally:
        tls.close()
    assert names[0] == "localhost"
