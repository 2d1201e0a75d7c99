"""Browser libraries the pages load, fetched from npm at install time (`liveloop assets`).

The viewer page plays HLS natively where the browser can (Safari, Android) and through hls.js elsewhere; it
plays LiveKit rooms through livekit-client. The API reference at ``/docs`` and ``/redoc`` runs on Swagger UI
and ReDoc. Each is pinned to a version and to the integrity hash npm publishes for that tarball, checked
before anything is written. They land in ``static/vendor`` (not in the repository), served from this server
only; without them the viewer page still works (showing the test card where it cannot play the stream) and
the docs pages say how to fetch them.
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
    # Absolute URLs the library would load from a third party, replaced in the copy served (after the check).
    offline: tuple[tuple[bytes, bytes], ...] = ()

    @property
    def tarball(self) -> str:
        return f"{self.package}/-/{self.package.rsplit('/', 1)[-1]}-{self.version}.tgz"


# The viewer page's video players.
PLAYERS = (
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
# The API reference: Swagger UI at /docs (two files of one package, downloaded once) and ReDoc at /redoc.
SWAGGER_UI_INTEGRITY = "sha512-U06rpMtW9V3XPGOBeamTUSr0Z09jMX4IJuANpE/EZbAhw0G8CgwrzU4YmXkn/h0wCDNsXdGarTNNHC3sU8yVUQ=="
DOCS = (
    Asset(
        name="swagger-ui-bundle.js",
        package="swagger-ui-dist",
        version="5.35.0",
        member="package/swagger-ui-bundle.js",
        integrity=SWAGGER_UI_INTEGRITY,
    ),
    Asset(
        name="swagger-ui.css",
        package="swagger-ui-dist",
        version="5.35.0",
        member="package/swagger-ui.css",
        integrity=SWAGGER_UI_INTEGRITY,
    ),
    Asset(
        name="redoc.standalone.js",
        package="redoc",
        version="2.5.4",
        member="package/bundles/redoc.standalone.js",
        integrity="sha512-M6jWhG1qoBnH6TFmzJnstyCZ87HmOY/UzDm78mHiYihEdlV/YcS9ogOo1NlElnJMeLsyxHFe2yFc4sNjHTrABQ==",
        # Its sidebar shows Redocly's logo from their CDN; served here, it shows none (the image hides itself).
        offline=((b"https://cdn.redoc.ly/redoc/logo-mini.svg", b"data:,"),),
    ),
)
ASSETS = PLAYERS + DOCS


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
    """Download, verify and unpack the assets not present yet; returns those written.

    Several assets from one package share one download.
    """
    base = (registry or os.environ.get("LIVELOOP_NPM_REGISTRY") or REGISTRY).rstrip("/")
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    tarballs: dict[tuple[str, str], bytes] = {}  # verified downloads, by (tarball, integrity)
    with httpx.Client(timeout=60.0, follow_redirects=True) as client:
        for asset in assets:
            if not force and present(asset, directory):
                continue
            data = tarballs.get((asset.tarball, asset.integrity))
            if data is None:
                buffer = io.BytesIO()
                with client.stream("GET", f"{base}/{asset.tarball}") as response:
                    if response.status_code != 200:
                        raise AssetError(
                            f"{asset.package}@{asset.version}: the registry answered {response.status_code}."
                        )
                    total = int(response.headers.get("content-length") or 0)
                    for chunk in response.iter_bytes():
                        buffer.write(chunk)
                        if on_progress is not None:
                            on_progress(asset, buffer.tell(), total)
                data = buffer.getvalue()
                check_integrity(data, asset.integrity)
                tarballs[(asset.tarball, asset.integrity)] = data
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
                member = archive.extractfile(asset.member)
                if member is None:
                    raise AssetError(f"{asset.member} is not in {asset.package}@{asset.version}.")
                body = member.read()
                for remote, local in asset.offline:
                    body = body.replace(remote, local)
                license_member = next((m for m in archive.getnames() if m.lower() == "package/license"), None)
                license_text = archive.extractfile(license_member).read() if license_member else b""  # type: ignore[union-attr]
            (directory / asset.name).write_bytes(body)
            if license_text:
                (directory / f"{asset.name}.LICENSE.txt").write_bytes(license_text)
            (directory / f"{asset.name}.version").write_text(asset.version + "\n")
            written.append(asset)
    return written
