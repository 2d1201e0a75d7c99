"""Error codes of members."""

from __future__ import annotations

from liveloop.kit.errors import ErrorCode


class MemberErrorCode(ErrorCode):
    """Members: their records, contact details and devices."""

    MEMBER_NOT_FOUND = (
        "member_not_found",
        404,
        "The shop has no member with this id (or with this `external_id`).",
        "Check the id; list members with `GET /v1/members`, or create the member first.",
    )
    MEMBER_EXISTS = (
        "member_exists",
        409,
        "A member with this `external_id` exists already.",
        "Update that member with `PATCH /v1/members/{id}` instead of creating it again.",
    )
    INVALID_EMAIL = (
        "invalid_email",
        422,
        "The email is not an email address.",
        "Send an address such as `ana@example.com`, or leave the field out.",
    )
    INVALID_PHONE = (
        "invalid_phone",
        422,
        "The phone number cannot be read, or is not a possible number.",
        "Send it in international form with the country code, such as `+6591234567`.",
    )
    INVALID_DEVICE = (
        "invalid_device",
        422,
        "The device id is not one this server issued (a forged, altered or foreign `ll_did` value).",
        "Pass the `ll_did` cookie's value exactly as liveloop set it (by an invite link or the live room), or "
        "leave the field out.",
    )
    RETRY = (
        "retry",
        409,
        "The member could not be given a unique referral code this time (a collision, extremely rare).",
        "Send the same request again.",
    )
