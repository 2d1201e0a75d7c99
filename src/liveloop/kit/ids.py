"""Identifiers: sortable public ids and short human codes."""

from __future__ import annotations

import os
import secrets
import time

# Crockford-like alphabet without look-alikes (no 0/O, 1/I/L, no U) for codes people type.
UNAMBIGUOUS = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
_B32 = "0123456789abcdefghjkmnpqrstvwxyz"


def new_id(prefix: str) -> str:
    """A k-sortable id such as ``mem_01hv3…``: 48 bits of milliseconds, 80 random bits."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_B32[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"


def short_code(length: int = 7) -> str:
    return "".join(secrets.choice(UNAMBIGUOUS) for _ in range(length))


def code_from_pattern(pattern: str) -> str:
    """Fill a pattern: ``#`` becomes a random unambiguous character, anything else stays.

    ``"BF-####-####"`` → ``"BF-7KQ3-XW2M"``.
    """
    return "".join(secrets.choice(UNAMBIGUOUS) if ch == "#" else ch for ch in pattern)


def pattern_space(pattern: str) -> int:
    space: int = len(UNAMBIGUOUS) ** pattern.count("#")
    return space
