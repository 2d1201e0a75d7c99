"""Error codes of coupons: batches, binding, validation, redemption and rollback."""

from __future__ import annotations

from liveloop.kit.errors import ErrorCode


class CouponErrorCode(ErrorCode):
    """Coupons: batches, binding to members, validation, redemption and rollback."""

    INVALID_COUPON = (
        "invalid_coupon",
        422,
        "The batch's terms do not fit its kind: a fixed coupon without an amount and currency, a percent outside "
        "1 to 10000 basis points, a gift without a SKU, or a currency rule broken (the message says which).",
        "Fix the terms named in the message: `fixed` needs `amount_minor` and `currency`, `percent` needs "
        "`percent_bp` and a currency (or `currency_free: true`), `gift` needs `gift_sku`.",
    )
    PATTERN_TOO_SMALL = (
        "pattern_too_small",
        422,
        "The code pattern has too few `#` positions to give this many distinct, hard-to-guess codes.",
        "Add `#` characters to the pattern (at least four, more for large batches), or ask for fewer codes.",
    )
    INVALID_WINDOW = (
        "invalid_window",
        422,
        "`ends_at` is not after `starts_at`.",
        "Give a validity window that ends after it starts, or leave either end open.",
    )
    COUPON_BATCH_NOT_FOUND = (
        "coupon_batch_not_found",
        404,
        "The shop has no coupon batch with this id.",
        "Check the id returned when the batch was created.",
    )
    COUPON_BATCH_GENERATING = (
        "coupon_batch_generating",
        409,
        "The coupon's batch is still being generated in the background, and a batch is used only once it is ready.",
        "Poll `GET /v1/coupon-batches/{id}` until `status` is `ready`, then retry.",
    )
    COUPON_NOT_FOUND = (
        "coupon_not_found",
        404,
        "The shop has no coupon with this code.",
        "Check the code for typos; codes are matched without regard to case.",
    )
    COUPON_BOUND_TO_OTHER = (
        "coupon_bound_to_other",
        (422, 409),
        "The coupon belongs to another member: it cannot be redeemed by this one (422), nor bound to them (409).",
        "Use a coupon bound to this member, or an unbound one.",
    )
    COUPON_VOID = (
        "coupon_void",
        422,
        "The coupon was voided, for example because the referral reward it came with was clawed back after a refund.",
        "Use another coupon.",
    )
    COUPON_NOT_STARTED = (
        "coupon_not_started",
        422,
        "The coupon's validity window has not started yet.",
        "Use it from the time given in the message.",
    )
    COUPON_EXPIRED = (
        "coupon_expired",
        422,
        "The coupon's validity window has ended.",
        "Use another coupon.",
    )
    COUPON_USED_UP = (
        "coupon_used_up",
        422,
        "The coupon has been used as many times as it allows.",
        "Use another coupon.",
    )
    MEMBER_LIMIT_REACHED = (
        "member_limit_reached",
        422,
        "This member has used this offer (the coupon's batch) as many times as it allows per member.",
        "Use a coupon of another offer.",
    )
    CURRENCY_MISMATCH = (
        "currency_mismatch",
        422,
        "The coupon is in another currency than the order; only a currency-free percent coupon applies to orders in "
        "any currency.",
        "Use a coupon in the order's currency, or a batch created with `currency_free: true`.",
    )
    MIN_SPEND_NOT_MET = (
        "min_spend_not_met",
        422,
        "The order total is below the coupon's minimum spend.",
        "Apply it to an order that reaches the minimum given in the message (in minor units).",
    )
    COUPON_NOT_STACKABLE = (
        "coupon_not_stackable",
        409,
        "The order already uses a coupon, and this one or that one cannot be combined with others.",
        "Roll the other redemption back first, or use stackable coupons.",
    )
    IDEMPOTENCY_KEY_REQUIRED = (
        "idempotency_key_required",
        422,
        "A redemption was sent with neither an `Idempotency-Key` header nor an `order_ref`, so a retry could "
        "redeem twice.",
        "Send an `Idempotency-Key` header or the order's `order_ref` with each redemption.",
    )
    REDEMPTION_NOT_FOUND = (
        "redemption_not_found",
        404,
        "The shop has no coupon redemption with this id.",
        "Check the id returned by the redemption.",
    )
