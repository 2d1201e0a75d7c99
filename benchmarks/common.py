"""Helpers shared by the benchmarks: a server in a subprocess, wrk, percentiles and a results file."""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from liveloop.client import free_port, start_server

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


# Starting the server is shared with the tests.
__all__ = ["free_port", "start_server"]


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def wrk(url: str, *, seconds: int, connections: int, threads: int = 1) -> dict[str, float]:
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed for this benchmark: apt-get install wrk")
    out = subprocess.run(
        ["wrk", "--latency", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lat = {}
    for pct, value, unit in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
        lat[pct] = float(value) * _UNITS[unit]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {
        "rps": rps,
        "p50_ms": lat.get("50", 0.0),
        "p99_ms": lat.get("99", 0.0),
        "non_2xx_3xx": float(non2xx.group(1)) if non2xx else 0.0,
        "socket_errors": 1.0 if errors else 0.0,
    }


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = max(0, min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1))))
    return ordered[k]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def save(name: str, result: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": name, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **result}
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2))


def h2load_rate(url: str, *, rate: int, seconds: int, clients: int = 16, warmup: int = 2) -> dict[str, float]:
    """Constant-rate load (open loop per client) with h2load; exact percentiles from its per-request log."""
    if shutil.which("h2load") is None:
        sys.exit("h2load is needed for this benchmark: apt-get install nghttp2-client")
    log = Path(tempfile.mkstemp(prefix="h2load-", suffix=".log")[1])
    out = subprocess.run(
        [
            "h2load",
            "--h1",
            "-c",
            str(clients),
            "--rps",
            str(max(1, rate // clients)),
            "-D",
            str(seconds),
            "--warm-up-time",
            str(warmup),
            "--log-file",
            str(log),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    achieved = float(re.search(r"finished in [\d.]+s, ([\d.]+) req/s", out).group(1))  # type: ignore[union-attr]
    failed = int(re.search(r"(\d+) failed", out).group(1))  # type: ignore[union-attr]
    latencies = [int(line.split("\t")[2]) / 1000 for line in log.read_text().splitlines() if line]
    log.unlink()
    return {
        "offered_per_s": float(rate),
        "achieved_per_s": achieved,
        "failed": float(failed),
        "requests": float(len(latencies)),
        "median_ms": median(latencies),
        "p99_ms": percentile(latencies, 99),
        "p999_ms": percentile(latencies, 99.9),
        "max_ms": max(latencies) if latencies else 0.0,
    }
