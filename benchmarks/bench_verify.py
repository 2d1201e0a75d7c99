"""`liveloop ledger verify` over 1,000,000 ledger entries on SQLite. Target: under 10 s.

The ledger is filled with balanced transactions (member earns and spends, with point lots) through bulk
SQL, then the real CLI command is timed end to end in a subprocess, three times (median reported).
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median, save

from liveloop.migrate import upgrade


def fill(path: str, entries: int, members: int = 20_000) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    now = "2026-11-22 00:00:00.000000"
    expires = "2027-11-22 00:00:00.000000"
    db.execute(
        "INSERT INTO shops (id, slug, name, reporting_timezone, default_market, landing_url, webhook_secret, "
        "created_at) VALUES ('shop_b', 'b', 'B', 'UTC', 'na', 'https://x/', 's', ?)",
        (now,),
    )
    db.execute(
        "INSERT INTO ledger_accounts (id, shop_id, owner_type, owner_id, asset, bucket, balance, allow_negative,"
        " created_at) VALUES (1, 'shop_b', 'system', 'issuance', 'points', 'available', 0, 1, ?)",
        (now,),
    )
    db.execute(
        "INSERT INTO ledger_accounts (id, shop_id, owner_type, owner_id, asset, bucket, balance, allow_negative,"
        " created_at) VALUES (2, 'shop_b', 'system', 'redemption', 'points', 'available', 0, 0, ?)",
        (now,),
    )
    db.executemany(
        "INSERT INTO ledger_accounts (id, shop_id, owner_type, owner_id, asset, bucket, balance, "
        "allow_negative, created_at) VALUES (?, 'shop_b', 'member', ?, 'points', 'available', 0, 0, ?)",
        [(10 + m, f"mem_{m}", now) for m in range(members)],
    )
    rng = random.Random(1)
    balances = [0] * members
    issued = redeemed = 0
    txns, rows, lots = [], [], []
    for t in range(entries // 2):
        m = rng.randrange(members)
        if balances[m] >= 10 and rng.random() < 0.3:
            amount = -rng.randint(1, balances[m] // 2)
            redeemed -= amount
            rows += [(f"t{t}", 10 + m, "points", amount), (f"t{t}", 2, "points", -amount)]
            kind = "spend"
        else:
            amount = rng.randint(10, 500)
            issued += amount
            rows += [(f"t{t}", 1, "points", -amount), (f"t{t}", 10 + m, "points", amount)]
            kind = "earn"
        balances[m] += amount
        txns.append((f"t{t}", kind, now))
    # Lots carry what each member holds now (spending already taken from them).
    lots = [(f"lot{m}", 10 + m, "t0", b, b, expires, now) for m, b in enumerate(balances) if b > 0]
    db.executemany(
        "INSERT INTO ledger_transactions (id, shop_id, kind, memo, meta, created_at) "
        "VALUES (?, 'shop_b', ?, '', '{}', ?)",
        txns,
    )
    db.executemany("INSERT INTO ledger_entries (transaction_id, account_id, asset, amount) VALUES (?, ?, ?, ?)", rows)
    db.executemany(
        "INSERT INTO point_lots (id, shop_id, account_id, transaction_id, amount, remaining, expires_at, "
        "created_at) VALUES (?, 'shop_b', ?, ?, ?, ?, ?, ?)",
        lots,
    )
    db.executemany("UPDATE ledger_accounts SET balance = ? WHERE id = ?", [(b, 10 + m) for m, b in enumerate(balances)])
    db.commit()
    db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--entries", type=int, default=1_000_000)
    args = parser.parse_args()
    entries = 100_000 if args.quick else args.entries
    tmp = tempfile.mkdtemp(prefix="liveloop-verify-")
    path = f"{tmp}/ledger.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)
    started = time.perf_counter()
    fill(path, entries)
    print(f"filled {entries:,} entries in {time.perf_counter() - started:.1f} s")
    times = []
    for _ in range(3):
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "liveloop.cli", "ledger", "verify", "--database-url", url],
            capture_output=True,
            text=True,
        )
        times.append(time.perf_counter() - t)
        if proc.returncode != 0:
            sys.exit(f"verify failed:\n{proc.stdout}\n{proc.stderr}")
    result = {
        "entries": entries,
        "median_s": round(median(times), 2),
        "max_s": round(max(times), 2),
        "runs_s": [round(x, 2) for x in times],
        "target": "< 10 s for 1,000,000 entries",
        "ratio_to_target": round(median(times) / 10.0, 3),
    }
    save("verify", result)
    print(
        f"ledger verify over {entries:,} entries: median {result['median_s']} s, worst {result['max_s']} s "
        f"(target < 10 s: {'MET' if result['max_s'] < 10 else 'NOT MET'})"
    )


if __name__ == "__main__":
    main()
