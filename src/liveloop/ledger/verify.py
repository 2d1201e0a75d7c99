"""Prove the ledger consistent: every transaction balances, every balance equals the sum of its entries."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from liveloop.ledger.repository import CHECKS, count_rows, problems

__all__ = ["CHECKS", "VerifyReport", "verify"]


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
    report.entries, report.accounts, report.transactions = await count_rows(session)
    for name, _title, sql in CHECKS:
        report.problems[name] = await problems(session, sql, sample)
        if callable(on_check):
            on_check(name)
    return report
