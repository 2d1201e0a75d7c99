"""Prove the ledger consistent: every transaction balances, every balance equals the sum of its entries."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

CHECKS: list[tuple[str, str, str]] = [
    (
        "unbalanced_transactions",
        "Transactions whose entries do not sum to zero per asset",
        "SELECT transaction_id, asset, SUM(amount) FROM ledger_entries "
        "GROUP BY transaction_id, asset HAVING SUM(amount) <> 0",
    ),
    (
        "balance_mismatch",
        "Member accounts whose stored balance differs from the sum of their entries",
        "SELECT a.id, a.balance, COALESCE(s.total, 0) FROM ledger_accounts a "
        "LEFT JOIN (SELECT account_id, SUM(amount) AS total FROM ledger_entries GROUP BY account_id) s "
        "ON s.account_id = a.id WHERE a.owner_type = 'member' AND a.balance <> COALESCE(s.total, 0)",
    ),
    (
        "negative_balances",
        "Member accounts below zero",
        "SELECT id, balance FROM ledger_accounts WHERE balance < 0 AND NOT allow_negative",
    ),
    (
        "system_balance_stored",
        "System accounts with a stored balance (theirs is the sum of their entries)",
        "SELECT id, balance FROM ledger_accounts WHERE owner_type = 'system' AND balance <> 0",
    ),
    (
        "asset_mismatch",
        "Entries whose asset differs from their account's",
        "SELECT e.id, e.asset, a.asset FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id "
        "WHERE e.asset <> a.asset",
    ),
    (
        "lots_out_of_step",
        "Available point balances that differ from the points left in their lots",
        "SELECT a.id, a.balance, COALESCE(l.left_, 0) FROM ledger_accounts a "
        "LEFT JOIN (SELECT account_id, SUM(remaining) AS left_ FROM point_lots GROUP BY account_id) l "
        "ON l.account_id = a.id "
        "WHERE a.owner_type = 'member' AND a.asset = 'points' AND a.bucket = 'available' "
        "AND a.balance <> COALESCE(l.left_, 0)",
    ),
    (
        "empty_transactions",
        "Transactions without entries",
        "SELECT t.id FROM ledger_transactions t WHERE NOT EXISTS "
        "(SELECT 1 FROM ledger_entries e WHERE e.transaction_id = t.id)",
    ),
]


@dataclass
class VerifyReport:
    entries: int = 0
    accounts: int = 0
    transactions: int = 0
    problems: dict[str, list[tuple[object, ...]]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(self.problems.values())


async def verify(session: AsyncSession, *, sample: int = 20, on_check: object = None) -> VerifyReport:
    report = VerifyReport()
    report.entries = int((await session.execute(text("SELECT COUNT(*) FROM ledger_entries"))).scalar_one())
    report.accounts = int((await session.execute(text("SELECT COUNT(*) FROM ledger_accounts"))).scalar_one())
    report.transactions = int((await session.execute(text("SELECT COUNT(*) FROM ledger_transactions"))).scalar_one())
    for name, _title, sql in CHECKS:
        rows = (await session.execute(text(f"{sql} LIMIT {int(sample)}"))).all()
        report.problems[name] = [tuple(r) for r in rows]
        if callable(on_check):
            on_check(name)
    return report
