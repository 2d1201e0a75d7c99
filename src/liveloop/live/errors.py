"""Error codes of the live room: shows, tokens, mechanics and moderation over HTTP, and the room's refusals.

:class:`LiveErrorCode` holds what the HTTP API answers; :class:`RoomErrorCode` what the room answers on a
viewer's WebSocket to an input it refuses (``{"t": "err", "code", "message"}``; the socket stays open).
"""

from __future__ import annotations

from liveloop.kit.errors import ROOM, ErrorCode


class LiveErrorCode(ErrorCode):
    """Live shows over HTTP: shows, viewer and host tokens, mechanics, moderation, co-hosts and video."""

    SHOW_NOT_FOUND = (
        "show_not_found",
        404,
        "There is no show with this id (in this shop).",
        "Check the show id; operators list shows with `GET /v1/shows`.",
    )
    SHOW_NOT_LIVE = (
        "show_not_live",
        409,
        "The operation needs a live show, and this one is scheduled or ended: mechanics are launched, and a show "
        "ended, only while it is live.",
        "Start the show first (`POST /v1/shows/{id}/start`).",
    )
    SHOW_ENDED = (
        "show_ended",
        409,
        "The show has ended: it cannot go live again, and only its title, video and replay can change.",
        "Schedule a new show for another broadcast.",
    )
    SHOW_STARTED = (
        "show_started",
        409,
        "The show has started, so it cannot be rescheduled.",
        "Leave `scheduled_at` out of the change, or schedule a new show.",
    )
    UNKNOWN_MEMBER = (
        "unknown_member",
        422,
        "`host_member_id` names no member of this shop.",
        "Give the id of an existing member, or leave the field out.",
    )
    UNKNOWN_PRODUCT = (
        "unknown_product",
        422,
        "A next-product poll lists SKUs that are not pinned in the show.",
        "Pin the products first, or list only pinned SKUs as the poll's options.",
    )
    INTERACTION_NOT_FOUND = (
        "interaction_not_found",
        404,
        "There is no interaction (poll, quiz, lottery, flash offer …) with this id.",
        "Check the id returned when the mechanic was launched.",
    )
    INVALID_RESTRICTION = (
        "invalid_restriction",
        422,
        "A restriction's kind is neither `mute` nor `ban`.",
        "Use `mute` (the viewer may watch but not comment) or `ban` (the viewer is closed out of the show).",
    )
    CANNOT_RESTRICT_HOST = (
        "cannot_restrict_host",
        403,
        "The alias named is the show's host, who cannot be muted or banned in its own show.",
        "Pick the alias of a viewer's comment instead.",
    )
    VIEWER_NOT_FOUND = (
        "viewer_not_found",
        404,
        "No viewer of this show has the alias named: it is not the `a` of anyone who watched this show (aliases "
        "differ from show to show).",
        "Take the alias from a comment of this show (`a`), or name a member of the shop by `member_id`.",
    )
    MISSING_TOKEN = (
        "missing_token",
        401,
        "The request carries no viewer token.",
        "Send the token from `POST /v1/public/shows/{id}/join` (or the member token the shop minted) as "
        "`Authorization: Bearer <token>`.",
    )
    INVALID_TOKEN = (
        "invalid_token",
        401,
        "The viewer or host token is not one this server signed: altered, truncated, or signed with another key.",
        "Ask for a new token (join the show again, or mint a new host token).",
    )
    TOKEN_EXPIRED = (
        "token_expired",
        401,
        "The viewer or host token has expired.",
        "Ask for a new token (join the show again, or mint a new host token).",
    )
    TOKEN_REVOKED = (
        "token_revoked",
        401,
        "The API key that minted this host token has been revoked, so the token no longer works.",
        "Sign in to the host console with an API key in force to get a new host token.",
    )
    WRONG_SHOW = (
        "wrong_show",
        401,
        "The token was issued for another show.",
        "Use the token of this show: join it, or mint a token for it.",
    )
    COHOST_REQUEST_NOT_FOUND = (
        "cohost_request_not_found",
        404,
        "The show has no co-host request with this id.",
        "List the queue with `GET /v1/shows/{id}/cohosts` and use one of its ids.",
    )
    COHOST_REQUEST_CLOSED = (
        "cohost_request_closed",
        409,
        "The co-host request was declined (or closed otherwise), so it can no longer be approved or declined.",
        "Nothing to do; the viewer can ask again from the room.",
    )
    VIDEO_NOT_CONFIGURED = (
        "video_not_configured",
        409,
        "No video provider is configured, so no provider token can be minted.",
        "Set `LIVELOOP_LIVEKIT_URL`, `LIVELOOP_LIVEKIT_API_KEY` and `LIVELOOP_LIVEKIT_API_SECRET`, or play the "
        "show from its HLS URL.",
    )


class RoomErrorCode(ErrorCode):
    """The live room's refusals of a viewer's input, answered on its WebSocket (the connection stays open)."""

    UNKNOWN_TYPE = (
        "unknown_type",
        ROOM,
        "The message's `t` is not an input the room takes.",
        'Send one of `"hb"`, `"c"`, `"l"`, `"s"`, `"a"`, `"v"`, `"team"`, `"claim"`, `"cohost"` as `t`.',
    )
    RATE_LIMITED = (
        "rate_limited",
        ROOM,
        "The viewer sends comments, shares or other inputs faster than the room allows (likes beyond the rate are "
        "dropped without a refusal).",
        "Wait a few seconds before sending more; the viewer page does so by itself.",
    )
    INVALID_LIKES = (
        "invalid_likes",
        ROOM,
        "A like message's `n` is not a whole number in the range given in the message.",
        "Send `n` from 1 up to the maximum in the message, or leave it out for one like.",
    )
    UNKNOWN_CHANNEL = (
        "unknown_channel",
        ROOM,
        "A share message's `ch` is not a channel liveloop knows.",
        "Send one of the channels listed in the message (`whatsapp`, `facebook`, `copy` …).",
    )
    INVALID_COMMENT = (
        "invalid_comment",
        ROOM,
        "A comment message has no text in `x`.",
        "Send the comment's text as a string in `x`.",
    )
    EMPTY_COMMENT = (
        "empty_comment",
        ROOM,
        "The comment is empty once spaces and control characters are removed.",
        "Write something before sending.",
    )
    COMMENT_TOO_LONG = (
        "comment_too_long",
        ROOM,
        "The comment is longer than the show allows.",
        "Shorten it to the number of characters given in the message.",
    )
    BLOCKED_WORD = (
        "blocked_word",
        ROOM,
        "The comment contains a word the show blocks in this language.",
        "Rephrase the comment without it.",
    )
    MUTED = (
        "muted",
        ROOM,
        "The host has muted this viewer in this show: they may watch, not comment.",
        "Nothing to send; the mute ends when its time is up or the host lifts it.",
    )
    SLOW_MODE = (
        "slow_mode",
        ROOM,
        "The show is in slow mode, and this viewer commented less than its interval ago.",
        "Wait the seconds given in the message between comments.",
    )
    INVALID_INTERACTION = (
        "invalid_interaction",
        ROOM,
        "An answer, vote, team join or claim has no card id in `i`.",
        "Send the id of the card being answered as `i`.",
    )
    UNKNOWN_INTERACTION = (
        "unknown_interaction",
        ROOM,
        "The card named in `i` is not one of this show's.",
        "Answer a card the room has shown in this show.",
    )
    WRONG_INTERACTION = (
        "wrong_interaction",
        ROOM,
        "The input does not fit the card: a vote on a quiz, a claim on a poll, and so on.",
        'Send `"a"` to a quiz, `"v"` to a poll, `"team"` to a team PK and `"claim"` to a flash offer.',
    )
    CLOSED = (
        "closed",
        ROOM,
        "The card has closed; it takes no more answers, votes, entries or claims.",
        "Nothing to send; wait for the next card.",
    )
    MEMBERS_ONLY = (
        "members_only",
        ROOM,
        "Only signed-in members may enter this lottery or claim this offer, since the prize goes to an account.",
        "Sign in through the shop (a member token), then enter or claim again.",
    )
    INVALID_OPTION = (
        "invalid_option",
        ROOM,
        "The answer's or vote's `o` is not an index of the card's options.",
        "Send `o` as an option index from 0 to the last one given in the message.",
    )
    ALREADY_ANSWERED = (
        "already_answered",
        ROOM,
        "This viewer has answered or voted on this card already; the first answer counts.",
        "Nothing to send; wait for the result.",
    )
    UNKNOWN_TEAM = (
        "unknown_team",
        ROOM,
        "The team named is not one of this team PK's.",
        "Join one of the teams listed in the message.",
    )
    LIMIT_REACHED = (
        "limit_reached",
        ROOM,
        "This viewer has claimed this flash offer as many times as it allows.",
        "Nothing to send; the offer's other places go to other viewers.",
    )
    SOLD_OUT = (
        "sold_out",
        ROOM,
        "Every place of the flash offer is taken.",
        "Nothing to send; watch for the next offer.",
    )
    TRY_AGAIN = (
        "try_again",
        ROOM,
        "The room could not record the input this time: its queue of writes was full (a flood of answers, votes "
        "and claims), or the write failed on the server's side. Nothing is wrong with the input.",
        "Send the same input again in a moment.",
    )
