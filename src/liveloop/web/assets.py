"""Browser libraries the viewer page loads on demand, fetched from npm at install time.

The page plays HLS natively where the browser can (Safari, Android) and through hls.js elsewhere; it plays
LiveKit rooms through livekit-client. Both are pinned to a version and to the integrity hash npm publishes
for that tarball, checked before anything is written. They land in ``static/vendor`` (not in the
repository); without them the page still works, showing the test card where it cannot play the stream.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

VENDOR = Path(__file__).parent / "static" / "vendor"
REGISTRY = "https://registry.npmjs.org"


@dataclass(frozen=True)
class Asset:
    name: str  # the file served under /static/live/vendor/
    package: str
    version: str
    member: str  # the file inside the package's tarball
    integrity: str  # npm's dist.integrity of the tarball

    @property
    def tarball(self) -> str:
        return f"{self.package}/-/{self.package.rsplit('/', 1)[-1]}-{self.version}.tgz"


ASSETS = (
    Asset(
        name="hls.light.min.js",
        package="hls.js",
        version="1.6.19",
        member="package/dist/hls.light.min.js",
        integrity="sha512-A//aZeaAgM5rgUCbTURD4gkfyw5Uag2/4Jky7CfDOukL/DN+P5DjbgK2BYteyP3/KnCkPfkGVkbLxQG2T0AbUQ==",
    ),
    Asset(
        name="livekit-client.umd.js",
        package="livekit-client",
        version="2.23.0",
        member="package/dist/livekit-client.umd.js",
        integrity="sha512-j9Kg86nJjBjNFUD+ukp2jwMCGa0k+YD5gU//RzAM+ZY3pbG631QCte7fQjwqWMmtBzhDJL9nKYuOLMv/9IbAxg==",
    ),
)


class AssetError(Exception):
    pass


def present(asset: Asset, directory: Path = VENDOR) -> bool:
    stamp = directory / f"{asset.name}.version"
    return (directory / asset.name).exists() and stamp.exists() and stamp.read_text().strip() == asset.version


def check_integrity(data: bytes, integrity: str) -> None:
    algorithm, _, expected = integrity.partition("-")
    if algorithm not in ("sha512", "sha384", "sha256"):
        raise AssetError(f"Unsupported integrity algorithm {algorithm!r}.")
    actual = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    if actual != expected:
        raise AssetError("The downloaded tarball does not match its pinned integrity hash; nothing was written.")


def fetch(
    assets: tuple[Asset, ...] = ASSETS,
    *,
    directory: Path = VENDOR,
    registry: str | None = None,
    force: bool = False,
    on_progress: Callable[[Asset, int, int], None] | None = None,
) -> list[Asset]:
    """Download, verify and unpack the assets not present yet; returns those written."""
    base = (registry or os.environ.get("LIVELOOP_NPM_REGISTRY") or REGISTRY).rstrip("/")
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    with httpx.Client(timeout=60.0, follow_redirects=True) as client:
        for asset in assets:
            if not force and present(asset, directory):
                continue
            buffer = io.BytesIO()
            with client.stream("GET", f"{base}/{asset.tarball}") as response:
                if response.status_code != 200:
                    raise AssetError(f"{asset.package}@{asset.version}: the registry answered {response.status_code}.")
                total = int(response.headers.get("content-length") or 0)
                for chunk in response.iter_bytes():
                    buffer.write(chunk)
                    if on_progress is not None:
                        on_progress(asset, buffer.tell(), total)
            data = buffer.getvalue()
            check_integrity(data, asset.integrity)
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
                member = archive.extractfile(asset.member)
                if member is None:
                    raise AssetError(f"{asset.member} is not in {asset.package}@{asset.version}.")
                body = member.read()
                license_member = next((m for m in archive.getnames() if m.lower() == "package/license"), None)
                license_text = archive.extractfile(license_member).read() if license_member else b""  # type: ignore[union-attr]
            (directory / asset.name).write_bytes(body)
            if license_text:
                (directory / f"{asset.name}.LICENSE.txt").write_bytes(license_text)
            (directory / f"{asset.name}.version").write_text(asset.version + "\n")
            written.append(asset)
    return written
