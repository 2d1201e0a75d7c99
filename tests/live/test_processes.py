"""Two gateway processes share rooms through real Redis and real NATS; a killed one's viewers resume on the other."""

from __future__ import annotations

import asyncio
import signal
import subprocess

import pytest

from liveloop.client import free_port, start_server
from tests.conftest import ShopCtx
from tests.live.conftest import LiveServer, anonymous_token, join, live_show

SECRET = "test-secret-key-that-is-long-enough-for-hs256"  # the test app's, so its tokens work everywhere


def _gateway(database_url: str, bus_url: str) -> tuple[subprocess.Popen[bytes], LiveServer]:
    port = free_port()
    proc = start_server(
        {
            "LIVELOOP_DATABASE_URL": database_url,
            "LIVELOOP_BUS_URL": bus_url,
            "LIVELOOP_RUN_WORKER": "false",
            "LIVELOOP_SECRET_KEY": SECRET,
            "LIVELOOP_LOG_LEVEL": "warning",
        },
        port,
    )
    return proc, LiveServer(base=f"http://127.0.0.1:{port}", ws_base=f"ws://127.0.0.1:{port}")


@pytest.fixture(params=["redis", "nats"])
def bus_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


async def _run(shop: ShopCtx, database_url: str, bus: str) -> None:
    assert shop.app.state.settings.secret_key == SECRET
    show = await live_show(shop)
    (proc_a, a), (proc_b, b) = _gateway(database_url, bus), _gateway(database_url, bus)
    try:
        x_token = (await anonymous_token(shop, show["id"], "Xia"))["token"]
        x = await join(a, x_token, show["id"])
        y = await join(b, (await anonymous_token(shop, show["id"], "Yusuf"))["token"], show["id"])
        assert x.hello["process"] != y.hello["process"]
        await x.send(t="c", x="from A")
        await y.until(lambda v: "from A" in v.comments())
        await y.send(t="c", x="from B")
        await x.until(lambda v: "from B" in v.comments())
        await y.until(lambda v: "from B" in v.comments())
        numbers_x = {m["x"]: m["q"] for m in x.messages if m["k"] == "c"}
        numbers_y = {m["x"]: m["q"] for m in y.messages if m["k"] == "c"}
        assert numbers_x == numbers_y  # the same numbers in both processes

        last = x.last_q
        proc_a.send_signal(signal.SIGKILL)  # gateway A dies mid-show
        proc_a.wait(10)
        for text in ("while you were away", "and one more"):
            await y.send(t="c", x=text)
        await y.until(lambda v: "and one more" in v.comments())
        back = await join(b, x_token, show["id"], since=last)  # X's page reconnects, to B this time
        await back.until(lambda v: v.frames and v.frames[0]["t"] == "r")
        assert back.frames[0]["gap"] is False
        assert [m["x"] for m in back.frames[0]["m"] if m["k"] == "c"] == ["while you were away", "and one more"]
        await back.close()
        await y.close()
    finally:
        for proc in (proc_a, proc_b):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()


async def test_two_gateways_share_a_room_and_survive_one_dying(shop: ShopCtx, database_url: str, bus_url: str) -> None:
    await asyncio.wait_for(_run(shop, database_url, bus_url), 60)
