"""The baseline: the live room as a plain python-socketio broadcast server, the way most teams would write it.

Every comment is broadcast to the room as it arrives; every batch of likes updates the total and broadcasts
it. Served by uvicorn (the same server and WebSocket implementation as the gateway). Bench use only.
"""

from __future__ import annotations

import argparse

import socketio
import uvicorn

sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*")
app = socketio.ASGIApp(sio)
ROOM = "show"
likes = 0


@sio.event
async def connect(sid: str, environ: dict, auth: object = None) -> None:
    await sio.enter_room(sid, ROOM)


@sio.on("comment")
async def comment(sid: str, data: dict) -> None:
    await sio.emit("comment", {"u": "viewer", "x": str(data.get("x", ""))[:200]}, room=ROOM)


@sio.on("like")
async def like(sid: str, data: dict) -> None:
    global likes
    likes += int(data.get("n", 1))
    await sio.emit("likes", likes, room=ROOM)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        app, host="127.0.0.1", port=args.port, log_level="warning", ws="websockets-sansio", ws_per_message_deflate=False
    )


if __name__ == "__main__":
    main()
