"""Error codes of the ledger: points, draw tickets and store credit."""

from __future__ import annotations

from liveloop.kit.errors import ErrorCode


class LedgerErrorCode(ErrorCode):
    """The ledger: credits, debits, holds, releases and reversals of points, tickets and store credit."""

    INVALID_ASSET = (
        "invalid_asset",
        422,
        "The asset is not `points`, `ticket` or `credit:<ISO currency>`.",
        "Use `points`, `ticket` or store credit in a currency such as `credit:EUR`.",
    )
    INVALID_EXPIRY = (
        "invalid_expiry",
        422,
        "`expires_at` is not in the future.",
        "Give a future UTC time, or leave it out for the market's default expiry.",
    )
    INSUFFICIENT_BALANCE = (
        "insufficient_balance",
        409,
        "The member's available balance of the asset is too low for this debit or reversal.",
        "Debit at most the available balance (`GET /v1/members/{id}/balances`); a reversal of credit already "
        "spent can take back what is left with `allow_partial: true`.",
    )
    TRANSACTION_NOT_FOUND = (
        "transaction_not_found",
        404,
        "The shop has no ledger transaction with this id.",
        "Check the id returned when the transaction was posted.",
    )
    NOT_PENDING = (
        "not_pending",
        422,
        "Only a held (pending) credit can be released, and this transaction is not one.",
        "Release the transaction of a held credit; an available one needs nothing.",
    )
    ALREADY_REVERSED = (
        "already_reversed",
        409,
        "The held credit was reversed already, so it cannot be released.",
        "Nothing to do: it will not become available.",
    )
    NOT_REVERSIBLE = (
        "not_reversible",
        422,
        "This transaction cannot be reversed: it is itself a reversal, or an expiry of points.",
        "Post a new correcting transaction instead.",
    )
    NOTHING_TO_REVERSE = (
        "nothing_to_reverse",
        422,
        "A partial reversal found nothing left to take back: the member has used all of it.",
        "Nothing to reverse; settle the shortfall (in `details.shortfall`) another way if needed.",
    )
