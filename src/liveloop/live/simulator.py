"""A simulated audience for the demo show: comments, likes, shares and a mechanic now and then.

It talks to the room the way real viewers' sockets do (through the gateway's bus and counters) and launches
mechanics through the same service the host console uses, so the demo exercises the real paths.
"""

from __future__ import annotations

import asyncio
import logging
import random

import orjson

from liveloop.kit.db import transaction
from liveloop.kit.ids import new_id
from liveloop.live import interactions, schemas
from liveloop.live.aliases import alias
from liveloop.live.gateway import Gateway
from liveloop.live.protocol import BusKind
from liveloop.live.service import live_shows
from liveloop.referral.schemas import PointsReward

log = logging.getLogger(__name__)

NAMES = ["Mai", "Arif", "Linh", "Sofia", "Nok", "Budi", "Hana", "Omar", "Wei", "Lucía", "Dewi", "Tuan", "Aisha"]
LINES = [
    "Is this available in size M?",
    "So pretty 😍",
    "Does it ship to Jakarta?",
    "สวยมากค่ะ",
    "Cho mình xin giá với",
    "¿Hacen envíos a México?",
    "كم السعر؟",
    "Just ordered two!",
    "Can you show the back?",
    "666",
    "love the colour",
]


async def run(gateway: Gateway, show_id: str, *, seed: int = 11) -> None:
    rng = random.Random(seed)
    tick = 0
    while True:
        await asyncio.sleep(rng.uniform(0.4, 1.6))
        tick += 1
        try:
            name = rng.choice(NAMES)
            a = alias(gateway.secret, show_id, f"d:demo-{name}")  # as the room shows a real viewer
            message = {"k": BusKind.COMMENT, "id": new_id("c")[-12:], "u": name, "a": a, "x": rng.choice(LINES)}
            await gateway.bus.publish(show_id, orjson.dumps(message))
            gateway.add_likes(show_id, rng.randint(1, 30))  # counted like a viewer's: the sprint and console see them
            if tick % 20 == 0:
                await gateway.bus.publish(
                    show_id, orjson.dumps({"k": BusKind.SHARES, "ch": rng.choice(["whatsapp", "line", "x"])})
                )
            if tick % 90 == 0:
                await _mechanic(gateway, show_id, rng)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("demo audience hiccup")


async def _mechanic(gateway: Gateway, show_id: str, rng: random.Random) -> None:
    async with transaction(gateway.sessions) as session:
        show = next((s for s in await live_shows(session) if s.id == show_id), None)
        if show is None or await interactions.open_in_show(session, show_id):
            return
        data: schemas.Poll | schemas.LikeSprint
        if rng.random() < 0.5:
            data = schemas.Poll(
                kind="poll", question="Which colour next?", options=["Rose", "Sand", "Night"], window_seconds=45
            )
        else:
            data = schemas.LikeSprint(
                kind="like_sprint",
                target=500,
                reward=PointsReward(type="points", amount=20),
                window_seconds=60,
            )
        await interactions.launch(session, show, data)
