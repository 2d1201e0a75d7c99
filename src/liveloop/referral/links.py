"""Invite links per channel with a prefilled message in the member's language, and QR codes."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
from dataclasses import dataclass
from typing import TypedDict
from urllib.parse import quote, urlencode

import orjson
import segno

from liveloop.models.referral import ShareChannel

# The channels an invite link is offered on (and a live room accepts a share on), in the share sheet's order.
CHANNELS: tuple[str, ...] = tuple(c.value for c in ShareChannel if c not in (ShareChannel.LIVE, ShareChannel.OTHER))

# Plain, friendly copy per language; {shop} is the shop's name. Arabic renders right-to-left by itself.
MESSAGES = {
    "en": "I shop at {shop} and think you'll like it. Join with my link and we both get a reward:",
    "zh": "我在 {shop} 购物，觉得你也会喜欢。用我的链接加入，我们都能获得奖励：",
    "th": "ฉันช้อปที่ {shop} และคิดว่าคุณจะชอบ สมัครผ่านลิงก์ของฉันแล้วเราได้รางวัลทั้งคู่:",
    "id": "Aku belanja di {shop} dan kurasa kamu bakal suka. Gabung lewat linkku, kita berdua dapat hadiah:",
    "vi": "Mình mua sắm ở {shop} và nghĩ bạn sẽ thích. Tham gia qua link của mình, cả hai đều nhận quà:",
    "es": "Compro en {shop} y creo que te va a gustar. Únete con mi enlace y los dos recibimos un premio:",
    "ar": "أتسوق من {shop} وأظن أنه سيعجبك. انضم عبر رابطي وسنحصل كلانا على مكافأة:",
    "fr": ("J'achète chez {shop} et je pense que ça va te plaire. Inscris-toi avec mon lien, on gagne tous les deux :"),
    "de": (
        "Ich kaufe bei {shop} ein und glaube, es gefällt dir. Melde dich über meinen Link an, wir bekommen beide etwas:"
    ),
    "ms": "Saya membeli-belah di {shop} dan rasa anda akan suka. Sertai melalui pautan saya, kita berdua dapat ganjaran:",
}
SUBJECTS = {
    "en": "A gift for you from {shop}",
    "zh": "{shop} 送你一份礼物",
    "th": "ของขวัญจาก {shop} สำหรับคุณ",
    "id": "Hadiah dari {shop} untukmu",
    "vi": "Quà từ {shop} dành cho bạn",
    "es": "Un regalo de {shop} para ti",
    "ar": "هدية لك من {shop}",
    "fr": "Un cadeau de {shop} pour toi",
    "de": "Ein Geschenk von {shop} für dich",
    "ms": "Hadiah daripada {shop} untuk anda",
}


class ShareLink(TypedDict):
    channel: str  # one of CHANNELS
    url: str  # the invite link, with this channel in it
    share_url: str | None  # opens the channel's share dialog; None where the channel has none
    message: str


def pick_locale(locale: str) -> str:
    lang = locale.replace("_", "-").split("-")[0].lower()
    return lang if lang in MESSAGES else "en"


def invite_url(
    base_url: str, shop_slug: str, code: str, *, channel: str, show_id: str | None = None, host_id: str | None = None
) -> str:
    params = {"ch": channel}
    if show_id:
        params["show"] = show_id
    if host_id:
        params["host"] = host_id
    return f"{base_url.rstrip('/')}/r/{shop_slug}/{code}?{urlencode(params)}"


def share_url(channel: str, url: str, message: str, subject: str) -> str | None:
    text = f"{message} {url}"
    match channel:
        case "whatsapp":
            return f"https://wa.me/?text={quote(text)}"
        case "facebook":
            return f"https://www.facebook.com/sharer/sharer.php?u={quote(url, safe='')}"
        case "x":
            return f"https://twitter.com/intent/tweet?text={quote(message)}&url={quote(url, safe='')}"
        case "telegram":
            return f"https://t.me/share/url?url={quote(url, safe='')}&text={quote(message)}"
        case "line":
            return f"https://social-plugins.line.me/lineit/share?url={quote(url, safe='')}"
        case "email":
            return f"mailto:?subject={quote(subject)}&body={quote(message + chr(10) + chr(10) + url)}"
        case _:
            # Instagram and TikTok have no web share dialog; the page copies the message or uses the
            # device's share sheet. "copy" and "qr" are the link itself.
            return None


def share_targets(
    base_url: str,
    shop_slug: str,
    shop_name: str,
    code: str,
    locale: str,
    *,
    show_id: str | None = None,
    host_id: str | None = None,
) -> list[ShareLink]:
    lang = pick_locale(locale)
    message = MESSAGES[lang].format(shop=shop_name)
    subject = SUBJECTS[lang].format(shop=shop_name)
    targets: list[ShareLink] = []
    for channel in CHANNELS:
        url = invite_url(base_url, shop_slug, code, channel=channel, show_id=show_id, host_id=host_id)
        targets.append(
            {"channel": channel, "url": url, "share_url": share_url(channel, url, message, subject), "message": message}
        )
    return targets


def qr(url: str, kind: str) -> bytes:
    buffer = io.BytesIO()
    code = segno.make(url, error="m")
    if kind == "svg":
        code.save(buffer, kind="svg", scale=8, border=2, xmldecl=True, title="Invite link")
    else:
        code.save(buffer, kind="png", scale=8, border=2)
    return buffer.getvalue()


# --- signed public QR links ------------------------------------------------------------------------------
#
# ``/v1/public/qr/{token}.png`` works in an <img> or an email without an API key. The token is the invite
# link's own parts (shop, code, show, host: nothing the link does not show, no member id) and an HMAC of
# them under the server's secret key, so nobody can make one for a code or show of their choosing.

_QR_CONTEXT = b"liveloop.qr.v1:"


@dataclass(frozen=True)
class QrTarget:
    shop_slug: str
    code: str
    show_id: str | None = None
    host_id: str | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _qr_signature(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), _QR_CONTEXT + payload.encode(), hashlib.sha256).digest()[:18])


def qr_token(secret: str, target: QrTarget) -> str:
    parts = [target.shop_slug, target.code, target.show_id, target.host_id]
    while parts[-1] is None:
        parts.pop()
    payload = _b64(orjson.dumps(parts))
    return f"{payload}.{_qr_signature(secret, payload)}"


def read_qr_token(secret: str, token: str) -> QrTarget | None:
    """The invite link a token names, or None when it was not made with this server's key."""
    payload, _, signature = token.partition(".")
    if not payload or not signature or len(token) > 600:
        return None
    if not hmac.compare_digest(_qr_signature(secret, payload).encode(), signature.encode()):
        return None
    try:
        parts = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError):
        return None
    if (
        not isinstance(parts, list)
        or not 2 <= len(parts) <= 4
        or not all(p is None or isinstance(p, str) for p in parts)
    ):
        return None
    slug, code, show, host = [*parts, None, None][:4]
    if not slug or not code:
        return None
    return QrTarget(slug, code, show, host)


def qr_urls(base_url: str, secret: str, target: QrTarget) -> tuple[str, str]:
    """The public PNG and SVG addresses of an invite link's QR code."""
    prefix = f"{base_url.rstrip('/')}/v1/public/qr/{qr_token(secret, target)}"
    return f"{prefix}.png", f"{prefix}.svg"
