"""Normalizing contact details: E.164 phones, canonical emails, and how alike two emails are."""

from __future__ import annotations

import phonenumbers

from liveloop.kit.errors import Unprocessable

_GMAIL = {"gmail.com", "googlemail.com"}


def normalize_email(email: str) -> str:
    email = email.strip()
    local, sep, domain = email.rpartition("@")
    if not sep or not local or "." not in domain or " " in email:
        raise Unprocessable(f"{email!r} is not an email address.", code="invalid_email")
    return f"{local}@{domain.lower()}"


def canonical_email(email: str) -> str:
    """Lower-case, plus-tag removed, and for Gmail dots removed: two addresses of one inbox compare equal."""
    local, _, domain = email.strip().lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in _GMAIL:
        domain = "gmail.com"
        local = local.replace(".", "")
    return f"{local}@{domain}"


def email_domain(email: str) -> str:
    return email.rpartition("@")[2].lower()


def edit_distance(a: str, b: str, limit: int = 2) -> int:
    """Levenshtein distance, giving up (returning ``limit + 1``) once it is over ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        if min(current) > limit:
            return limit + 1
        previous = current
    return previous[-1]


def emails_look_alike(a: str, b: str) -> bool:
    """Same inbox after canonicalization, or near-identical local parts at the same domain (``anna.k1``/``anna.k2``)."""
    ca, cb = canonical_email(a), canonical_email(b)
    if ca == cb:
        return True
    la, _, da = ca.rpartition("@")
    lb, _, db = cb.rpartition("@")
    if da != db or min(len(la), len(lb)) < 5:
        return False
    strip = str.maketrans("", "", "0123456789._-")
    letters_a, letters_b = la.translate(strip), lb.translate(strip)
    # Only meaningful with enough letters left: "anna.k1"/"anna.k2" are alike, but numeric addresses common
    # in some markets ("a12345@qq.com", "a67890@qq.com") reduce to almost nothing and are different people.
    if len(letters_a) >= 4 and letters_a == letters_b:
        return True
    return edit_distance(la, lb, limit=1) <= 1


def normalize_phone(phone: str, region: str | None = None) -> str:
    try:
        parsed = phonenumbers.parse(phone, region)
    except phonenumbers.NumberParseException as exc:
        raise Unprocessable(
            f"{phone!r} is not a phone number; send it in international form such as +6591234567.",
            code="invalid_phone",
        ) from exc
    if not phonenumbers.is_possible_number(parsed):
        raise Unprocessable(
            f"{phone!r} is not a possible phone number; send it in international form such as +6591234567.",
            code="invalid_phone",
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
