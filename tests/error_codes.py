"""Every catalogued error code is produced by at least one test (pytest hooks, imported by tests/conftest.py).

The run records the codes the app answers (``LIVELOOP_RECORD_ERROR_CODES``, see :mod:`liveloop.kit.errors`):
this process, and the ``liveloop serve`` processes tests start, which inherit the variable. At the end:

- a code answered with a status the catalogue does not list for it, or a code not in the catalogue at all,
  fails any run: the catalogue is what clients branch on;
- after a **full run** (the whole of ``tests/`` collected, no ``-k``, ``-m`` only the default, no
  ``--deselect``, every test passed), a catalogued code that no test produced fails the session, listed
  with its domain. A partial run says nothing about that.

Set ``LIVELOOP_RECORD_ERROR_CODES`` yourself to keep the file (it is appended to, never emptied); otherwise
a temporary one is used.
"""

from __future__ import annotations

import os
import shlex
import tempfile
from pathlib import Path
from typing import Any

import pytest

from liveloop.kit import errors
from liveloop.web.errors import DOMAINS

TESTS = Path(__file__).resolve().parent

# Codes catalogued ahead of the code that produces them (code → what will produce it); none today. A code
# listed here is exempt from the "produced by a test" check until its producer lands.
PENDING_MERGE: dict[str, str] = {}

_state: dict[str, Any] = {"path": None, "own_file": False, "problems": [], "missing": [], "full": False}


def _catalogued() -> dict[tuple[str, str], str]:
    """``(code, status)`` → domain name, for every status each catalogued code is answered with."""
    return {
        (str(code.value), str(status)): domain.name
        for domain in DOMAINS
        for code in domain.codes
        for status in code.statuses
    }


def _default_markexpr(config: pytest.Config) -> str:
    addopts = config.getini("addopts")  # already split, as the shell would
    args = shlex.split(addopts) if isinstance(addopts, str) else list(addopts)
    for i, arg in enumerate(args):
        if arg == "-m" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("-m") and len(arg) > 2:
            return arg[2:]
    return ""


def is_full_run(config: pytest.Config) -> bool:
    """Whether this run collected every test of ``tests/`` with no narrowing other than the default ``-m``."""
    option = config.option
    if getattr(option, "keyword", "") or getattr(option, "collectonly", False):
        return False
    if getattr(option, "markexpr", "") not in ("", _default_markexpr(config)):
        return False
    if getattr(option, "deselect", None) or getattr(option, "lf", False) or getattr(option, "ignore", None):
        return False
    if getattr(option, "ignore_glob", None):
        return False
    roots = []
    for arg in config.args:
        if "::" in arg:
            return False
        roots.append(Path(config.invocation_params.dir, arg).resolve())
    return any(root == TESTS or root in TESTS.parents for root in roots)


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: the variable came from the controller
        return
    path = os.environ.get(errors.RECORD_ENV)
    if not path:
        fd, path = tempfile.mkstemp(prefix="liveloop-error-codes-", suffix=".txt")
        os.close(fd)
        os.environ[errors.RECORD_ENV] = path  # inherited by the servers the tests start
        _state["own_file"] = True
    _state["path"] = path
    errors.record_codes_to(path)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = _state["path"]
    if path is None or hasattr(session.config, "workerinput"):
        return
    produced = errors.read_recorded(path)
    catalogued = _catalogued()
    known = {code for code, _ in catalogued}
    problems = []
    for code, status in sorted(produced):
        if (code, status) in catalogued:
            continue
        if code in known:
            statuses = sorted(s for c, s in catalogued if c == code)
            problems.append(f"{code}: answered with {status}, catalogued with {', '.join(statuses)}")
        else:
            problems.append(
                f"{code}: answered with {status}, and not in any catalogue (add it to a domain's errors.py)"
            )
    _state["problems"] = problems
    full = (
        is_full_run(session.config)
        and exitstatus == pytest.ExitCode.OK
        and session.testsfailed == 0
        and session.testscollected > 0
        and not session.shouldfail
        and not session.shouldstop
    )
    _state["full"] = full
    if full:
        _state["missing"] = [
            f"{domain.name}: {code.value} ({', '.join(str(s) for s in code.statuses)})"
            for domain in DOMAINS
            for code in domain.codes
            if code.value not in PENDING_MERGE and not any((code.value, str(s)) in produced for s in code.statuses)
        ]
    if problems or _state["missing"]:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if _state["full"] and not _state["missing"]:
        count = sum(len(domain.codes) for domain in DOMAINS)
        terminalreporter.line(
            f"error codes: every catalogued code was produced by a test ({count} codes, {len(PENDING_MERGE)} of them "
            "in PENDING_MERGE)"
        )
    if _state["problems"]:
        terminalreporter.section("error codes answered outside the catalogue", red=True)
        for line in _state["problems"]:
            terminalreporter.line(line)
    if _state["missing"]:
        terminalreporter.section("catalogued error codes no test produced", red=True)
        terminalreporter.line(
            "Each catalogued code needs a test that meets it as a client would (assert the code in the answer):"
        )
        for line in _state["missing"]:
            terminalreporter.line(line)


def pytest_unconfigure(config: pytest.Config) -> None:
    path = _state["path"]
    if path and _state["own_file"]:
        Path(path).unlink(missing_ok=True)
        os.environ.pop(errors.RECORD_ENV, None)
