"""The four market presets every shop starts with. Shops edit their own copies."""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    "sea": {
        "name": "Southeast Asia",
        "currency": "USD",
        "timezone": "Asia/Bangkok",
        "locales": ["en", "th", "id", "vi", "ms", "fil"],
        "consent_regime": "none",
        "points_expiry_months": 12,
        "return_window_days": 7,
        # Small coupons (USD 2-3 equivalent) convert best here.
        "reward_presets": {
            "inviter": {"type": "credit", "amount": 300, "currency": "USD"},
            "invitee": {"type": "credit", "amount": 200, "currency": "USD"},
        },
    },
    "na": {
        "name": "North America",
        "currency": "USD",
        "timezone": "America/New_York",
        "locales": ["en", "es", "fr"],
        "consent_regime": "ccpa",
        "points_expiry_months": 12,
        "return_window_days": 30,
        # Quality gifts and long-term perks.
        "reward_presets": {
            "inviter": {
                "type": "gift",
                "sku": "GIFT-PREMIUM-SAMPLE",
                "label": "Premium sample set",
                "value_minor": 1500,
                "currency": "USD",
            },
            "invitee": {"type": "points", "amount": 1000},
        },
    },
    "eu": {
        "name": "Europe",
        "currency": "EUR",
        "timezone": "Europe/Berlin",
        "locales": ["en", "de", "fr", "es", "it", "nl", "pl"],
        "consent_regime": "gdpr",
        "points_expiry_months": 12,
        "return_window_days": 14,
        "reward_presets": {
            "inviter": {"type": "perk", "label": "Free express shipping for 3 months"},
            "invitee": {"type": "points", "amount": 800},
        },
    },
    "me": {
        "name": "Middle East",
        "currency": "AED",
        "timezone": "Asia/Dubai",
        "locales": ["ar", "en"],
        "consent_regime": "none",
        "points_expiry_months": 12,
        "return_window_days": 14,
        # Group and community rewards.
        "reward_presets": {
            "inviter": {"type": "points", "amount": 1500},
            "invitee": {"type": "credit", "amount": 1500, "currency": "AED"},
        },
    },
}
