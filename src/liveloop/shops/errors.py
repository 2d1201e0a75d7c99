"""Error codes of shops, their settings and their API keys."""

from __future__ import annotations

from liveloop.kit.errors import ErrorCode


class ShopErrorCode(ErrorCode):
    """Shops, their settings, API keys and the authentication of operators."""

    MISSING_API_KEY = (
        "missing_api_key",
        401,
        "The request carries no API key.",
        "Send the key as `Authorization: Bearer <key>`; create one with `liveloop apikey create` or "
        "`POST /v1/api-keys`.",
    )
    INVALID_API_KEY = (
        "invalid_api_key",
        401,
        "The API key is unknown, mistyped or revoked.",
        "Send a key in force exactly as it was shown when created; `liveloop apikey list` shows the keys of a "
        "shop, and a lost key is replaced by a new one.",
    )
    MISSING_SCOPE = (
        "missing_scope",
        403,
        "The API key is valid but lacks the scope this operation needs (named in the message).",
        "Use a key with that scope (`liveloop apikey create --scope <scope>`) or an admin key.",
    )
    INVALID_SCOPES = (
        "invalid_scopes",
        422,
        "A new API key was asked for with no scope, or with a scope that does not exist.",
        "Give at least one of the scopes listed in the message.",
    )
    API_KEY_NOT_FOUND = (
        "api_key_not_found",
        404,
        "The shop has no API key with this id.",
        "List the keys with `GET /v1/api-keys` (or `liveloop apikey list`) and use one of their ids.",
    )
    INVALID_SLUG = (
        "invalid_slug",
        422,
        "The shop slug is not 2 to 63 lower-case letters, digits or dashes.",
        "Pick a slug such as `acme-beauty`.",
    )
    SHOP_EXISTS = (
        "shop_exists",
        409,
        "A shop with this slug exists already.",
        "Pick another slug, or use the existing shop.",
    )
    SHOP_NOT_FOUND = (
        "shop_not_found",
        404,
        "No shop has this slug (in the `X-Liveloop-Shop` header, the webhook URL or the command).",
        "Use the slug the shop was created with; `liveloop shop list` lists them.",
    )
    INVALID_ORIGIN = (
        "invalid_origin",
        422,
        "A storefront origin is not `scheme://host[:port]`: it has a path, a query, credentials or another scheme "
        "than http(s).",
        "Give origins only, such as `https://shop.example` or `https://shop.example:8443`.",
    )
    INVALID_SHOPIFY_SECRET = (
        "invalid_shopify_secret",
        422,
        "The Shopify secret is not 8 to 128 visible ASCII characters without spaces.",
        "Copy the app's client secret (or the webhook signing key shown under Settings → Notifications) as it is.",
    )
    INVALID_GRACE = (
        "invalid_grace",
        422,
        "`grace_seconds` is outside 0 to 604800 (seven days).",
        "Give how long the previous Shopify secret keeps verifying, from 0 (retire it at once) to 604800.",
    )
