"""Error codes of the referral engine: campaigns, attribution, invite links, draws, groups and reviews.

The reasons a referral is rejected or held (``self_referral``, ``budget_exhausted`` …) are not errors: they
are the referral's ``reason_codes`` (see ``fraud.py``).
"""

from __future__ import annotations

from liveloop.kit.errors import ErrorCode


class ReferralErrorCode(ErrorCode):
    """Referral campaigns, attribution of sign-ups, invite links and QR codes, draws, VIP groups and reviews."""

    CAMPAIGN_NOT_FOUND = (
        "campaign_not_found",
        404,
        "The shop has no campaign with this id.",
        "List campaigns with `GET /v1/campaigns` and use one of their ids.",
    )
    NO_REWARDS = (
        "no_rewards",
        422,
        "The campaign gives nothing: it has no inviter or invitee reward, no market rewards and no milestones.",
        "Give at least one of `inviter_reward`, `invitee_reward`, `market_rewards` or `milestones`, or set "
        "`use_market_presets: true`.",
    )
    INVALID_MARKET_PRESET = (
        "invalid_market_preset",
        422,
        "`use_market_presets` would copy a market's preset reward that is not a valid reward (a market's "
        "`reward_presets` are the shop's own JSON).",
        "Fix the market's `reward_presets` with `PATCH /v1/markets/{code}` (each side a reward such as "
        '`{"type": "points", "amount": 500}`), or give the campaign its own `inviter_reward`/`invitee_reward`.',
    )
    INVALID_TRANSITION = (
        "invalid_transition",
        409,
        "The campaign cannot move from its status to the one asked for (an ended campaign stays ended).",
        "Follow draft → active ⇄ paused → ended; to run an ended campaign again, create a new one.",
    )
    INVALID_MILESTONES = (
        "invalid_milestones",
        422,
        "Two milestones have the same threshold.",
        "Give each milestone its own number of invites.",
    )
    BUDGET_TOO_LOW = (
        "budget_too_low",
        422,
        "A budget was lowered below what the campaign has spent of it already.",
        "Set the budget to at least the amount spent, given in the message.",
    )
    UNKNOWN_CLICK = (
        "unknown_click",
        422,
        "`referral.click_id` is not a click this shop recorded.",
        "Pass the `ll_click` value of the landing URL exactly as it came, or leave it out.",
    )
    UNKNOWN_INVITE_CODE = (
        "unknown_invite_code",
        (422, 404),
        "No member or VIP group of the shop has this invite code: at sign-up (422), or in an invite link (404).",
        "Pass the `ll_ref` value (or the code the friend shared) as it is; an invite link needs a fresh copy from "
        "the inviter.",
    )
    UNKNOWN_FORMAT = (
        "unknown_format",
        404,
        "A QR code was asked for in a format other than PNG or SVG.",
        "End the QR address with `.png` or `.svg`.",
    )
    INVALID_QR_LINK = (
        "invalid_qr_link",
        404,
        "The public QR address was altered, or signed with another secret key (the key changed since it was given).",
        "Take a fresh address from `qr_png` / `qr_svg` of `GET /v1/members/{id}/invite-links`.",
    )
    GROUP_NOT_FOUND = (
        "group_not_found",
        404,
        "The shop has no VIP group with this id.",
        "Check the id returned when the group was created.",
    )
    DRAW_NOT_FOUND = (
        "draw_not_found",
        404,
        "There is no lottery draw with this id (in this shop).",
        "Check the id returned when the draw was committed.",
    )
    DRAW_IN_PROGRESS = (
        "draw_in_progress",
        409,
        "Another request is running this draw right now.",
        "Wait a moment and read the draw: once drawn, it shows its winners.",
    )
    REVIEW_NOT_FOUND = (
        "review_not_found",
        404,
        "The shop has no fraud review (a held referral waiting for a decision) with this id.",
        "List the review queue with `GET /v1/reviews` and use one of its ids.",
    )
    REVIEW_DECIDED = (
        "review_decided",
        409,
        "The fraud review was decided the other way already; a decision is final (the same decision again is "
        "accepted and changes nothing).",
        "Nothing to do; read the review (`GET /v1/reviews?status=all`) to see the decision.",
    )
