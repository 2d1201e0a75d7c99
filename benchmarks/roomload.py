"""A cheap WebSocket load generator for the live room, run as its own process.

Viewers are raw asyncio sockets: an HTTP upgrade, then bytes read and thrown away — no WebSocket library
per connection. A sample of viewers parses frames to find the send time stamped in each comment, which gives
the delivery latency (from the talker's send to the viewer's read; both on this machine's clock). Talkers
send masked client frames at random moments (Poisson arrivals at a fixed mean rate): comments, and likes in
batches of 50.

Two protocols: ``liveloop`` (our gateway) and ``socketio`` (Engine.IO 4 over WebSocket, for the baseline).
The result is printed as one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import random
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None


def _q(payload: bytes) -> int:
    """The highest message number a frame carries (frames put it first: {"t":"f","n":…,"q":N,…})."""
    at = payload.find(b'"q":')
    if at < 0:
        return 0
    end = at + 4
    while end < len(payload) and 48 <= payload[end] <= 57:
        end += 1
    return int(payload[at + 4 : end] or 0)


def client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A masked client frame (mask key 0: the XOR changes nothing, and it is still a valid masked frame)."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + b"\x00\x00\x00\x00" + payload


async def open_ws(
    host: str, port: int, path: str, token: str | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(host, port, limit=2**22)
    writer.write(upgrade_request(host, port, path, token))
    head = await reader.readuntil(b"\r\n\r\n")
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
    return reader, writer


_SINK = bytearray(1 << 18)  # shared by every plain viewer: what they read is counted, then thrown away


class Watchers:
    """Plain viewers of our gateway, read in sweeps instead of one event-loop callback per frame.

    Each is a non-blocking socket that is never registered with the event loop: every ``interval`` seconds one
    task reads whatever each socket holds into a shared buffer and counts it. Every byte of every frame is still
    read (the kernel's socket buffers hold the few frames that arrive between sweeps, so the gateway writes the
    same bytes with the same calls), but a sweep costs one recv per viewer however many frames are waiting.
    The sweep yields to the event loop every ``chunk`` sockets so that the sampled viewers, which read each
    frame as it arrives, keep timing delivery without waiting behind it.
    """

    def __init__(self, run: Run, interval: float = 0.25, chunk: int = 250) -> None:
        self.run = run
        self.interval = interval
        self.chunk = chunk
        self.sockets: list[socket.socket] = []
        self.view = memoryview(_SINK)

    async def open(self, host: str, port: int, path: str, token: str | None) -> bool:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, (host, port))
            await loop.sock_sendall(sock, upgrade_request(host, port, path, token))
            head = b""
            while b"\r\n\r\n" not in head:
                data = await loop.sock_recv(sock, 4096)
                if not data:
                    raise ConnectionError("closed during the upgrade")
                head += data
        except OSError:
            sock.close()
            return False
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            sock.close()
            return False
        self.run.bytes += len(head) - head.index(b"\r\n\r\n") - 4
        self.sockets.append(sock)
        return True

    async def sweep_forever(self) -> None:
        size = len(_SINK)
        while not self.run.stop.is_set():
            started = time.monotonic()
            alive = []
            count = len(self.sockets)
            for i, sock in enumerate(self.sockets[:count]):
                try:
                    n = sock.recv_into(self.view)
                    while n == size:  # more is waiting
                        self.run.bytes += n
                        n = sock.recv_into(self.view)
                except BlockingIOError:
                    n = -1
                except OSError:
                    n = 0
                if n == 0:
                    sock.close()
                    continue
                if n > 0:
                    self.run.bytes += n
                alive.append(sock)
                if i % self.chunk == self.chunk - 1:
                    await asyncio.sleep(0)
            self.sockets = alive + self.sockets[count:]  # those opened during the sweep come after
            await asyncio.sleep(max(self.interval - (time.monotonic() - started), 0.01))

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
        self.sockets.clear()


def upgrade_request(host: str, port: int, path: str, token: str | None = None) -> bytes:
    """The HTTP upgrade; the room's token goes in the subprotocol header, as the viewer page sends it."""
    key = base64.b64encode(os.urandom(16)).decode()
    protocol = f"Sec-WebSocket-Protocol: liveloop.v1, {token}\r\n" if token else ""
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{protocol}\r\n"
    ).encode()


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", await reader.readexactly(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", await reader.readexactly(8))[0]
    return b0 & 0x0F, await reader.readexactly(n)


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.latencies: list[float] = []
        self.measuring = False
        self.connected = 0
        self.failed = 0
        self.bytes = 0
        self.stop = asyncio.Event()
        self.resume = {"ok": 0, "gap": 0, "failed": 0, "dropped": 0}
        self.storm_at = 0.0
        self.ports = [int(p) for p in str(args.port).split(",")]
        self.watchers = Watchers(self)

    def path(self, since: int | None = None) -> str:
        if self.args.protocol == "socketio":
            return "/socket.io/?EIO=4&transport=websocket"
        path = f"/v1/live/{self.args.show}/ws"
        return path if since is None else f"{path}?since={since}"

    def token(self, token: str) -> str | None:
        """What goes in the subprotocol header: our gateway's token (Socket.IO sends none)."""
        return None if self.args.protocol == "socketio" else token

    def port(self, index: int) -> int:
        """Viewers and talkers are spread over the gateways round-robin."""
        return self.ports[index % len(self.ports)]

    async def watcher(self, token: str, index: int) -> None:
        """A plain viewer of our gateway: reads every byte of every frame, in sweeps (see Watchers)."""
        if await self.watchers.open(self.args.host, self.port(index), self.path(), self.token(token)):
            self.connected += 1
        else:
            self.failed += 1

    async def viewer(self, token: str, sampled: bool, index: int = 0) -> None:
        if not sampled and self.args.protocol != "socketio":
            return await self.watcher(token, index)
        try:
            reader, writer = await open_ws(self.args.host, self.port(index), self.path(), self.token(token))
        except (OSError, ConnectionError, asyncio.IncompleteReadError):
            self.failed += 1
            return None
        self.connected += 1
        socketio = self.args.protocol == "socketio"
        try:
            if socketio:
                await read_frame(reader)  # Engine.IO open packet
                writer.write(client_frame(b"40"))  # join the default namespace: the server puts us in the room
            while not self.stop.is_set():
                _, payload = await read_frame(reader)
                self.bytes += len(payload) + 2
                if socketio and payload == b"2":
                    writer.write(client_frame(b"3"))  # Engine.IO pong
                    continue
                if not sampled or not self.measuring:
                    continue
                now = time.time_ns()
                start = 0
                while True:
                    at = payload.find(b"T~", start)
                    if at < 0:
                        break
                    end = payload.find(b"~", at + 2)
                    self.latencies.append((now - int(payload[at + 2 : end])) / 1e6)
                    start = end + 1
        except (asyncio.IncompleteReadError, ConnectionError, OSError, ValueError):
            return None
        finally:
            writer.close()

    async def reconnecting_viewer(self, token: str, within: float, rng_seed: int) -> None:
        port = self.port(rng_seed)
        """Watch, drop the connection at ``at`` (+ up to ``within`` s), come back with ?since, check the resume."""
        import random

        rng = random.Random(rng_seed)
        last = 0
        try:
            reader, writer = await open_ws(self.args.host, port, self.path(), self.token(token))
        except (OSError, ConnectionError, asyncio.IncompleteReadError):
            self.failed += 1
            return
        self.connected += 1
        delay = rng.uniform(0, within)
        try:
            while not (self.storm_at and time.monotonic() >= self.storm_at + delay):
                try:
                    _, payload = await asyncio.wait_for(read_frame(reader), 0.2)
                except TimeoutError:
                    continue
                last = max(last, _q(payload))
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            self.resume["dropped"] += 1
            return
        writer.close()
        try:
            # Back to another gateway when there are several: a resume must not depend on the process.
            reader, writer = await open_ws(
                self.args.host, self.port(rng_seed + 1), self.path(since=last), self.token(token)
            )
            await read_frame(reader)  # hello
            _, resumed = await read_frame(reader)
            if b'"t":"r","gap":false' in resumed[:30]:
                self.resume["ok"] += 1
            else:
                self.resume["gap"] += 1
        except (OSError, ConnectionError, asyncio.IncompleteReadError):
            self.resume["failed"] += 1
            return
        try:
            while not self.stop.is_set():
                await read_frame(reader)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            return
        finally:
            writer.close()

    async def talker(self, token: str, index: int, comments_per_s: float, likes_per_s: float) -> None:
        reader, writer = await open_ws(self.args.host, self.port(index), self.path(), self.token(token))
        socketio = self.args.protocol == "socketio"
        if socketio:
            await read_frame(reader)
            writer.write(client_frame(b"40"))
        drain = asyncio.create_task(self._drain(reader))
        # Each talker sends at its own random moments (a Poisson process), as an audience does: a fixed 100 ms
        # tick shared by all talkers would lock every comment to one phase of the gateway's frame clock and turn
        # that phase, different in every run, into a constant offset of 0-100 ms on every latency measured.
        rng = random.Random(index)
        likes_rate = likes_per_s / 50  # likes go in batches of 50
        now = time.monotonic()
        next_comment = now + rng.expovariate(comments_per_s) if comments_per_s > 0 else math.inf
        next_like = now + rng.expovariate(likes_rate) if likes_rate > 0 else math.inf
        try:
            while not self.stop.is_set():
                due = min(next_comment, next_like)
                if due == math.inf:
                    await self.stop.wait()
                    break
                await asyncio.sleep(max(due - time.monotonic(), 0))
                if next_comment <= next_like:
                    text = f"T~{time.time_ns()}~ from {index}"
                    if socketio:
                        data = b"42" + json.dumps(["comment", {"x": text}]).encode()
                    else:
                        data = json.dumps({"t": "c", "x": text}).encode()
                    writer.write(client_frame(data))
                    next_comment += rng.expovariate(comments_per_s)
                else:
                    data = b'42["like",{"n":50}]' if socketio else b'{"t":"l","n":50}'
                    writer.write(client_frame(data))
                    next_like += rng.expovariate(likes_rate)
        finally:
            drain.cancel()
            writer.close()

    async def _drain(self, reader: asyncio.StreamReader) -> None:
        while await reader.read(262144):
            pass


async def main_async(args: argparse.Namespace, tokens: list[str]) -> dict[str, Any]:
    run = Run(args)
    viewer_tokens = tokens[: args.viewers]
    talker_tokens = tokens[args.viewers : args.viewers + args.talkers]
    every = max(args.viewers // max(args.sampled, 1), 1)
    tasks = [asyncio.create_task(run.watchers.sweep_forever())]
    started = time.perf_counter()
    for i, token in enumerate(viewer_tokens):
        if args.reconnect_within:
            job = run.reconnecting_viewer(token, args.reconnect_within, i)
        else:
            job = run.viewer(token, sampled=i % every == 0, index=i)
        tasks.append(asyncio.create_task(job))
        if i % 200 == 199:
            await asyncio.sleep(0.05)  # a connection storm is another benchmark
    while run.connected + run.failed < len(viewer_tokens) and time.perf_counter() - started < 120:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    connect_s = time.perf_counter() - started
    print(f"READY {run.connected}", file=sys.stderr, flush=True)
    per_comments = args.comments / max(args.talkers, 1)
    per_likes = args.likes / max(args.talkers, 1)
    talkers = [asyncio.create_task(run.talker(t, i, per_comments, per_likes)) for i, t in enumerate(talker_tokens)]
    if args.reconnect_within:
        run.storm_at = time.monotonic() + args.warmup  # everyone drops and comes back within the window
    await asyncio.sleep(args.warmup)
    run.measuring = True
    bytes0 = run.bytes
    cpu0 = time.process_time()
    print("MEASURE", file=sys.stderr, flush=True)
    await asyncio.sleep(args.seconds)
    print("MEASURED", file=sys.stderr, flush=True)
    run.measuring = False
    loader_cpu = (time.process_time() - cpu0) / args.seconds
    received = run.bytes - bytes0
    run.stop.set()
    for t in talkers + tasks:
        t.cancel()
    await asyncio.gather(*talkers, *tasks, return_exceptions=True)
    run.watchers.close()
    lat = sorted(run.latencies)

    def pct(p: float) -> float:
        return round(lat[min(int(len(lat) * p / 100), len(lat) - 1)], 2) if lat else float("nan")

    return {
        "viewers": args.viewers,
        "connected": run.connected,
        "failed": run.failed,
        "connect_seconds": round(connect_s, 2),
        "samples": len(lat),
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "max_ms": round(lat[-1], 2) if lat else None,
        "mb_per_s_received": round(received / args.seconds / 1e6, 1),
        "loader_cpu": round(loader_cpu, 2),
        "resume": run.resume if args.reconnect_within else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", required=True, help="the gateway's port, or several separated by commas")
    parser.add_argument("--protocol", choices=["liveloop", "socketio"], default="liveloop")
    parser.add_argument("--show", default="")
    parser.add_argument("--tokens", required=True, help="a file with one viewer token per line")
    parser.add_argument("--viewers", type=int, required=True)
    parser.add_argument("--talkers", type=int, default=50)
    parser.add_argument("--comments", type=float, default=500.0, help="comments per second, all talkers together")
    parser.add_argument("--likes", type=float, default=10_000.0, help="likes per second, all talkers together")
    parser.add_argument("--sampled", type=int, default=200, help="viewers that time their frames")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument(
        "--reconnect-within", type=float, default=0.0, help="every viewer drops and resumes within this many seconds"
    )
    args = parser.parse_args()
    if uvloop is not None:
        uvloop.install()
    tokens = [line.strip() for line in Path(args.tokens).read_text(encoding="utf-8").splitlines() if line.strip()]
    print(json.dumps(asyncio.run(main_async(args, tokens))))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
