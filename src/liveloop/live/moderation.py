"""Danmaku moderation: per-viewer token buckets, slow mode, length, blocked words per language, escaping."""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; each allowed action takes one."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def allow(self, now: float, cost: float = 1.0) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False


@dataclass(frozen=True)
class Rules:
    max_length: int = 200
    slow_mode_seconds: float = 0.0  # at most one comment per viewer per this many seconds (0: off)
    comments_per_10s: int = 5  # the token bucket: burst of this many, refilled over ten seconds
    likes_per_second: int = 30
    blocked_words: dict[str, list[str]] = field(default_factory=dict)  # language (or "*") → words

    @classmethod
    def of(cls, settings: dict[str, Any] | None) -> Rules:
        settings = settings or {}
        return cls(
            max_length=int(settings.get("max_length", 200)),
            slow_mode_seconds=float(settings.get("slow_mode_seconds", 0)),
            comments_per_10s=int(settings.get("comments_per_10s", 5)),
            likes_per_second=int(settings.get("likes_per_second", 30)),
            blocked_words={k: [w.casefold() for w in v] for k, v in (settings.get("blocked_words") or {}).items()},
        )


class Rejected(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_CONTROL = re.compile(r"[\u0000-\u0008\u000b-\u001f\u007f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def clean_comment(text: str, language: str, rules: Rules) -> str:
    """The comment as it may be shown (HTML-escaped), or ``Rejected`` with a reason code."""
    text = _CONTROL.sub("", unicodedata.normalize("NFC", text)).strip()
    if not text:
        raise Rejected("empty_comment", "Write something first.")
    if len(text) > rules.max_length:
        raise Rejected("comment_too_long", f"Comments are at most {rules.max_length} characters.")
    folded = text.casefold()
    base = language.split("-")[0].lower()
    for lang in ("*", base):
        for word in rules.blocked_words.get(lang, ()):
            if word and word in folded:
                raise Rejected("blocked_word", "This comment contains a word that is not allowed here.")
    return html.escape(text, quote=True)


def contains_keyword(text: str, keyword: str) -> bool:
    """Whether a comment enters a keyword mechanic: the keyword as a whole word, case-insensitive."""
    key = keyword.casefold().strip()
    if not key:
        return False
    folded = html.unescape(text).casefold()
    if not key.isalnum() or not key.isascii():
        return key in folded
    return re.search(rf"(?<![\w]){re.escape(key)}(?![\w])", folded) is not None
