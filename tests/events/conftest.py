"""Real receivers on 127.0.0.1 for the webhook tests: a well-behaved one and the ways an endpoint misbehaves."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from liveloop.events.worker import Worker
from tests.conftest import ShopCtx


class Receiver:
    """Answers 204 and records each request; ``fail_next`` answers 503 that many times first."""

    def __init__(self, path: str = "/hooks") -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.paths: list[str] = []
        self.fail_next = 0
        self.status = 204
        self.headers: dict[str, str] = {}
        self.connections = 0
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with lock:
                    fail = receiver.fail_next > 0
                    receiver.fail_next -= fail
                if fail:
                    self.send_response(503)
                else:
                    receiver.received.append((dict(self.headers), body))
                    receiver.paths.append(self.path)
                    self.send_response(receiver.status)
                for name, value in receiver.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        class Counting(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self) -> Any:
                accepted = super().get_request()
                receiver.connections += 1
                return accepted

        self.server = Counting(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}{path}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class RawServer:
    """A TCP server on 127.0.0.1 that reads a request and then misbehaves as ``behaviour`` says:

    - ``hang``: never answers;
    - ``trickle``: sends its answer one byte every 100 ms, forever;
    - ``huge``: answers 200 with a 1 GB body as fast as it can.

    ``open`` counts connections currently held, ``accepted`` all of them, ``sent`` the bytes written to
    each, ``closed_by_peer`` the connections the client hung up on.
    """

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.accepted = 0
        self.open = 0
        self.sent: list[int] = []
        self.closed_by_peer = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/{behaviour}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                self.open += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        sent = 0
        index = len(self.sent)
        self.sent.append(0)
        try:
            conn.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            if self.behaviour == "hang":
                self._stop.wait()
            elif self.behaviour == "trickle":
                for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Pad: " + b"x" * 100_000:
                    if self._stop.wait(0.1):
                        return
                    conn.sendall(bytes([byte]))
                    sent += 1
            elif self.behaviour == "huge":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1073741824\r\n\r\n")
                block = b"x" * 65536
                while sent < 1 << 30 and not self._stop.is_set():
                    conn.sendall(block)
                    sent += len(block)
                    self.sent[index] = sent
        except OSError:
            with self._lock:
                self.closed_by_peer += 1
        finally:
            self.sent[index] = sent
            conn.close()
            with self._lock:
                self.open -= 1

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        self.thread.join(5)
        deadline = time.monotonic() + 5
        while self.open and time.monotonic() < deadline:
            time.sleep(0.01)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
async def worker(shop: ShopCtx) -> AsyncIterator[Worker]:
    """A worker that may reach the test's receivers on 127.0.0.1."""
    w = Worker(shop.app.state.sessions, poll_seconds=0.01, allow_private_targets=True)
    try:
        yield w
    finally:
        await w.close()
