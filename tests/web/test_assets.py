"""The viewer page's players come from an npm registry, pinned and checked before anything is written."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from liveloop.client import free_port
from liveloop.web.assets import Asset, AssetError, fetch, present


def tarball(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, body in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
    return out.getvalue()


def registry(files: dict[str, bytes]) -> tuple[str, ThreadingHTTPServer]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("content-length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server


def test_a_pinned_player_is_unpacked_once_and_a_tampered_one_is_refused(tmp_path: Path) -> None:
    good = tarball({"package/dist/player.js": b"window.Player = 1;", "package/LICENSE": b"Apache-2.0"})
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(good).digest()).decode()
    asset = Asset("player.js", "player", "1.2.3", "package/dist/player.js", integrity)
    url, server = registry({"/player/-/player-1.2.3.tgz": good})
    try:
        assert fetch((asset,), directory=tmp_path, registry=url) == [asset]
        assert (tmp_path / "player.js").read_bytes() == b"window.Player = 1;"
        assert (tmp_path / "player.js.LICENSE.txt").read_bytes() == b"Apache-2.0"
        assert present(asset, tmp_path)
        assert fetch((asset,), directory=tmp_path, registry=url) == []  # already there: nothing downloaded

        pinned_elsewhere = "sha512-" + base64.b64encode(hashlib.sha512(b"another tarball").digest()).decode()
        tampered = Asset("other.js", "player", "1.2.3", "package/dist/player.js", pinned_elsewhere)
        with pytest.raises(AssetError, match="integrity"):
            fetch((tampered,), directory=tmp_path, registry=url)
        assert not (tmp_path / "other.js").exists()

        missing = Asset("gone.js", "player", "9.9.9", "package/dist/player.js", integrity)
        with pytest.raises(AssetError, match="404"):
            fetch((missing,), directory=tmp_path, registry=url)
    finally:
        server.shutdown()
