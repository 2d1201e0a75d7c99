"""Invite links per channel with a prefilled message in the member's language, and QR codes."""

from __future__ import annotations

import io
from urllib.parse import quote, urlencode

import segno

CHANNELS = ("whatsapp", "facebook", "instagram", "tiktok", "x", "telegram", "line", "email", "copy", "qr")

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
) -> list[dict[str, str | None]]:
    lang = pick_locale(locale)
    message = MESSAGES[lang].format(shop=shop_name)
    subject = SUBJECTS[lang].format(shop=shop_name)
    targets = []
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
