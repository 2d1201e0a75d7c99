"""The room bus on real Redis and real NATS: every process sees the same numbers in the same order."""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest

from liveloop.live.bus import Bus, MemoryBus, NatsBus, RedisBus


class Collector:
    def __init__(self) -> None:
        self.got: dict[str, list[tuple[int, dict]]] = {}

    def __call__(self, room: str, seq: int, raw: bytes) -> None:
        body = orjson.loads(raw)
        assert body["q"] == seq
        self.got.setdefault(room, []).append((seq, body))


async def _two_processes_agree(a: Bus, b: Bus) -> None:
    seen_a, seen_b = Collector(), Collector()
    await a.start(seen_a)
    await b.start(seen_b)
    room, other = f"shw_{uuid.uuid4().hex[:10]}", f"shw_{uuid.uuid4().hex[:10]}"
    try:

        async def sender(bus: Bus, name: str) -> None:  # like one viewer: each message after the last
            for i in range(50):
                await bus.publish(room, orjson.dumps({"k": "c", "from": name, "i": i}))

        await asyncio.gather(sender(a, "a"), sender(b, "b"), *(b.publish(other, b"{}") for _ in range(5)))
        for _ in range(100):
            if len(seen_a.got.get(room, [])) == 100 and len(seen_b.got.get(room, [])) == 100:
                break
            await asyncio.sleep(0.05)
        assert seen_a.got[room] == seen_b.got[room]  # same numbers, same order, in both processes
        numbers = [seq for seq, _ in seen_a.got[room]]
        assert numbers == sorted(numbers)
        assert len(set(numbers)) == 100
        if a.contiguous:
            assert numbers == list(range(1, 101))
        for sender in ("a", "b"):  # each sender's own order is kept
            assert [m["i"] for _, m in seen_a.got[room] if m["from"] == sender] == list(range(50))
        assert len(seen_a.got[other]) == 5
    finally:
        await a.close()
        await b.close()


async def test_memory_bus_numbers_per_room() -> None:
    bus, seen = MemoryBus(), Collector()
    await bus.start(seen)
    assert [await bus.publish("r1", b'{"x":1}') for _ in range(3)] == [1, 2, 3]
    assert await bus.publish("r2", b"{}") == 1
    assert seen.got["r1"][0] == (1, {"q": 1, "x": 1})


async def test_redis_bus_between_two_processes(redis_url: str) -> None:
    await _two_processes_agree(RedisBus(redis_url), RedisBus(redis_url))


async def test_nats_bus_between_two_processes(nats_url: str) -> None:
    await _two_processes_agree(NatsBus(nats_url), NatsBus(nats_url))


@pytest.mark.parametrize("url", ["redis://127.0.0.1:1/0"])
async def test_an_unreachable_bus_fails_loudly(url: str) -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError

    bus = RedisBus(url)
    with pytest.raises((OSError, RedisConnectionError)):
        await bus.start(Collector())
    await bus.close()
