from __future__ import annotations

import pytest

from liveloop.kit.errors import Unprocessable
from liveloop.members.normalize import canonical_email, emails_look_alike, normalize_email, normalize_phone


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("maria.lopez@gmail.com", "Maria.Lopez+deals@googlemail.com"),  # Gmail: dots, plus tag, alias domain
        ("anna.k1@example.com", "anna.k2@example.com"),  # numbered twins
        ("jonathan@example.com", "jonathon@example.com"),  # one letter apart
        ("sam@shop.com", "sam+2@shop.com"),
    ],
)
def test_alike(a: str, b: str) -> None:
    assert emails_look_alike(a, b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("a12345@qq.com", "a67890@qq.com"),  # numeric addresses: almost nothing left after the digits
        ("12345678@qq.com", "87654321@qq.com"),
        ("anna.k1@example.com", "anna.k1@other.com"),  # other domain
        ("jonathan@example.com", "margaret@example.com"),
        ("jo@x.com", "jb@x.com"),  # too short to judge
    ],
)
def test_not_alike(a: str, b: str) -> None:
    assert not emails_look_alike(a, b)


def test_canonical_email() -> None:
    assert canonical_email("J.Doe+promo@GoogleMail.com") == "jdoe@gmail.com"
    assert canonical_email("J.Doe+promo@example.com") == "j.doe@example.com"


def test_normalize() -> None:
    assert normalize_email(" Ana@Example.COM ") == "Ana@example.com"
    assert normalize_phone("+66 81 234 5678") == "+66812345678"
    assert normalize_phone("0812345678", "TH") == "+66812345678"
    with pytest.raises(Unprocessable):
        normalize_email("not-an-email")
    with pytest.raises(Unprocessable):
        normalize_phone("12")
