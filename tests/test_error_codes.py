"""The error-code catalogue: well formed, complete against the source, and shown to integrators.

The source scan reads every place in ``src/liveloop`` that gives an answer a code — a domain error raised
with ``code=…`` (a string or a catalogue member) or with its class's own code, a room refusal, an error body
built by hand — and checks it against the catalogue both ways: every code used is catalogued with the status
it is answered with, and every catalogued code is used. That every code is also *produced* by some test is
checked at the end of a full run (tests/error_codes.py).
"""

from __future__ import annotations

import ast
import importlib
import os
import pkgutil
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import orjson
import pytest

import liveloop
from liveloop.client import free_port, start_server
from liveloop.kit import errors
from liveloop.kit.errors import ROOM, ApiErrorCode, ErrorCode, LiveloopError, NotFound
from liveloop.models import Member
from liveloop.web.errors import DOMAINS
from tests import error_codes
from tests.conftest import ShopCtx
from tests.error_codes import PENDING_MERGE, TESTS, is_full_run
from tests.factories import create_member
from tests.live.conftest import LiveServer, anonymous_token, join, live_show

SRC = Path(liveloop.__file__).resolve().parent

# Calls that give a code to an answer without being a LiveloopError: name → (index of the code among the
# positional arguments, the status it is answered with; an int index means "the status is that argument").
CARRIERS: dict[str, tuple[int, Any]] = {
    "Refused": (0, ROOM),  # live/interactions.py: a refused room input
    "Rejected": (0, ROOM),  # live/moderation.py: a refused comment
    "_refuse": (1, ROOM),  # live/gateway.py: Gateway._refuse(viewer, code, message)
    "_reject": (0, 422),  # coupons/service.py: a CouponRejected (422) with its rule's code
    "error_response": (1, 0),  # kit/http.py: error_response(status, code, message)
}

# Codes raised where no client can meet them, so not in the catalogue. Should one ever be answered, the check at
# the end of the test run fails on a code outside the catalogue: catalogue it then, with a test that meets it.
NOT_ANSWERED = {
    "budget_exhausted": "referral/rewards.py: caught by the referral service; it becomes the referral's reason code",
    "idempotency_key_in_use": "kit/http.py: a request racing one with the same key waits on its row and replays "
    "its answer; the key is never found still in progress",
    "invalid_amount": "ledger/service.py: every caller passes a positive amount (the API's schemas require one)",
    "zero_amount": "ledger/service.py: a guard of the double entry; amounts are positive before they get there",
    "invalid_count": "coupons/service.py: the batch schema bounds `count` to 0..100,000 first (422 invalid_request)",
    "invalid_limit": "coupons/service.py: the batch schema requires limits of at least 1 first (invalid_request)",
    "not_a_flash_offer": "live/interactions.py: the room answers wrong_interaction to a claim on another card first",
    "invalid_currency": "markets/service.py: the market schema accepts ISO 4217 codes only (422 invalid_request)",
    "bad_request": "kit/http.py: the framework's 400 for a body it cannot read; a body that is not UTF-8 JSON is "
    "answered 422 invalid_request first, and no route reads forms",
}


@dataclass(frozen=True)
class Site:
    where: str
    code: str
    status: Any  # an HTTP status, ROOM, or None when the scan cannot tell


def _import_all() -> None:
    for module in pkgutil.walk_packages(liveloop.__path__, "liveloop."):
        importlib.import_module(module.name)


def _error_classes() -> dict[str, type[LiveloopError]]:
    _import_all()
    found: dict[str, type[LiveloopError]] = {}
    stack: list[type[LiveloopError]] = [LiveloopError]
    while stack:
        cls = stack.pop()
        found[cls.__name__] = cls
        stack.extend(cls.__subclasses__())
    return found


def _catalogue_classes() -> dict[str, type[ErrorCode]]:
    _import_all()
    return {cls.__name__: cls for cls in errors.catalogue()}


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


class _Scan:
    def __init__(self) -> None:
        self.classes = _error_classes()
        self.enums = _catalogue_classes()
        self.sites: list[Site] = []
        self.bad: list[str] = []  # uses the scan cannot accept (an unknown enum member …)

    def codes_of(self, node: ast.AST, constants: dict[str, ast.expr], where: str) -> Iterator[str] | None:
        """The codes an expression stands for; None when it is computed (passed through from elsewhere)."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return iter([node.value])
        if isinstance(node, ast.IfExp):
            body, orelse = self.codes_of(node.body, constants, where), self.codes_of(node.orelse, constants, where)
            return iter([*(body or ()), *(orelse or ())])
        if isinstance(node, ast.Name) and node.id in constants:  # a module constant: ERROR_CODE = "rate_limited"
            others = {name: value for name, value in constants.items() if name != node.id}
            return self.codes_of(constants[node.id], others, where)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in self.enums:
            member = getattr(self.enums[node.value.id], node.attr, None)
            if not isinstance(member, ErrorCode):
                self.bad.append(f"{where}: {node.value.id}.{node.attr} is not a member of the catalogue")
                return iter(())
            return iter([str(member.value)])
        return None

    def add(self, node: ast.AST | None, status: Any, constants: dict[str, ast.expr], where: str) -> None:
        if node is None:
            return
        for code in self.codes_of(node, constants, where) or ():
            self.sites.append(Site(where, code, status))

    def file(self, path: Path) -> None:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        rel = path.relative_to(SRC).as_posix()
        constants = {
            target.id: stmt.value
            for stmt in tree.body
            if isinstance(stmt, ast.Assign) and (isinstance(stmt.value, ast.Constant | ast.Attribute))
            for target in stmt.targets
            if isinstance(target, ast.Name)
        }
        for node in ast.walk(tree):
            where = f"{rel}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Call):
                self.call(node, constants, where, rel)
            elif isinstance(node, ast.Dict):
                self.mapping(node, constants, where)
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                self.repository_miss(node, constants, where)

    def repository_miss(self, node: ast.Assign | ast.AnnAssign, constants: dict[str, ast.expr], where: str) -> None:
        """A repository's ``not_found = ("member_not_found", "…")``: what its ``get_or_raise`` answers (404)."""
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if not any(isinstance(t, ast.Name) and t.id == "not_found" for t in targets):
            return
        if isinstance(node.value, ast.Tuple) and len(node.value.elts) == 2:
            self.add(node.value.elts[0], 404, constants, where)

    def call(self, node: ast.Call, constants: dict[str, ast.expr], where: str, rel: str) -> None:
        name = _name(node.func)
        code = next((k.value for k in node.keywords if k.arg == "code"), None)
        if name in self.classes:
            cls = self.classes[name]
            if code is None:
                self.sites.append(Site(where, str(cls.code), cls.status_code))
            elif cls is LiveloopError:
                for value in self.codes_of(code, constants, where) or ():
                    member = _lookup(value, room=False)
                    self.sites.append(Site(where, value, member.status if member else None))
            else:
                self.add(code, cls.status_code, constants, where)
        elif name in CARRIERS:
            index, status = CARRIERS[name]
            if isinstance(status, int) and status < 100:  # the status is a positional argument
                arg = node.args[status] if len(node.args) > status else None
                status = arg.value if isinstance(arg, ast.Constant) else None
            self.add(code or (node.args[index] if len(node.args) > index else None), status, constants, where)
        # A reply built by hand with its status beside it: IdempotentReplay(422, {"error": {...}}).
        if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, int):
            for arg in node.args[1:]:
                for inner in ast.walk(arg):
                    if isinstance(inner, ast.Dict) and _is_error(inner):
                        self.mapping(inner, constants, f"{rel}:{inner.lineno}", status=node.args[0].value)

    def mapping(self, node: ast.Dict, constants: dict[str, ast.expr], where: str, status: Any = None) -> None:
        keys = [k.value if isinstance(k, ast.Constant) else None for k in node.keys]
        if _is_error(node):
            value = node.values[keys.index("code")]
            if "t" in keys:  # {"t": "err", "code": …}: a room refusal
                status = ROOM
            self.add(value, status, constants, where)
            return
        # A table of the framework's own errors: {404: ("not_found", "…"), …}.
        if keys and all(isinstance(k, int) and 400 <= k < 600 for k in keys):
            for key, value in zip(keys, node.values, strict=True):
                if isinstance(value, ast.Tuple) and len(value.elts) == 2:
                    self.add(value.elts[0], key, constants, where)


def _is_error(node: ast.Dict) -> bool:
    keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
    return {"code", "message"} <= keys


def _fallback_codes(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """``("bad_request" if … else "internal_error", "")``: codes chosen inline as the first of a pair."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Tuple) and len(node.elts) == 2 and isinstance(node.elts[0], ast.IfExp):
            for branch in (node.elts[0].body, node.elts[0].orelse):
                if isinstance(branch, ast.Constant) and isinstance(branch.value, str):
                    yield node.lineno, branch.value


def _lookup(code: str, *, room: bool | None) -> ErrorCode | None:
    for member in errors.catalogued_codes():
        if member.value == code and (room is None or member.room == room):
            return member
    return None


_SCAN: _Scan | None = None


def scan() -> _Scan:
    global _SCAN
    if _SCAN is None:
        found = _Scan()
        for path in sorted(SRC.rglob("*.py")):
            found.file(path)
            for line, code in _fallback_codes(ast.parse(path.read_text(encoding="utf-8"))):
                found.sites.append(Site(f"{path.relative_to(SRC).as_posix()}:{line}", code, None))
        # A reply with its status beside it was seen twice (as a dict, and inside its call): keep the status.
        with_status = {(s.where, s.code) for s in found.sites if s.status is not None}
        found.sites = [s for s in found.sites if s.status is not None or (s.where, s.code) not in with_status]
        _SCAN = found
    return _SCAN


def test_every_code_the_source_answers_is_catalogued_with_its_status() -> None:
    found = scan()
    problems = list(found.bad)
    for site in found.sites:
        if site.code in NOT_ANSWERED:
            continue
        room = None if site.status is None else site.status == ROOM
        member = _lookup(site.code, room=room)
        if member is None:
            problems.append(f"{site.where}: {site.code!r} ({site.status}) is not in the catalogue")
        elif site.status is not None and site.status not in member.statuses:
            problems.append(
                f"{site.where}: {site.code!r} is answered with {site.status}, catalogued with {member.statuses}"
            )
    assert problems == [], "\n".join(problems)
    assert len(found.sites) > 150  # the scan sees the raise sites (a broken scan finds nothing)


def test_every_catalogued_code_is_used_in_the_source_and_pending_ones_are_not_yet() -> None:
    used = {(s.code, s.status == ROOM) for s in scan().sites} | {
        (s.code, False) for s in scan().sites if s.status is None
    }
    dead = []
    landed = []
    for member in errors.catalogued_codes():
        if (str(member.value), member.room) in used:
            if member.value in PENDING_MERGE:
                landed.append(f"{member.value}: it is in the source now, remove it from PENDING_MERGE")
        elif member.value not in PENDING_MERGE:
            dead.append(f"{member.value}: no raise site, refusal or error body uses it")
    assert dead == [], "\n".join(dead)
    assert landed == [], "\n".join(landed)
    catalogued = {str(m.value) for m in errors.catalogued_codes()}
    assert set(PENDING_MERGE) <= catalogued
    assert set(NOT_ANSWERED).isdisjoint(catalogued)


def test_the_catalogue_is_well_formed() -> None:
    _import_all()
    listed = [domain.codes for domain in DOMAINS]
    assert sorted(listed, key=lambda c: c.__name__) == sorted(errors.catalogue(), key=lambda c: c.__name__)
    assert len(set(listed)) == len(listed)  # every enum on the page, once
    assert len({domain.name for domain in DOMAINS}) == len(DOMAINS)
    seen: dict[tuple[str, bool], str] = {}
    for cls in errors.catalogue():
        assert cls.__module__.endswith(".errors"), f"{cls.__name__} belongs in its domain's errors.py"
        assert (cls.__doc__ or "").strip(), f"{cls.__name__} needs a docstring: it heads its section of the page"
        for member in cls:
            where = f"{cls.__name__}.{member.name}"
            assert re.fullmatch(r"[a-z][a-z0-9_]*", member.value), where
            assert member.name == member.value.upper(), f"{where} is named after its code"
            assert member.statuses, where
            assert all(s == ROOM or (isinstance(s, int) and 400 <= s < 600) for s in member.statuses), where
            assert member.room == (member.statuses == (ROOM,)), f"{where}: a room refusal has no HTTP status"
            for sentence in (member.meaning, member.fix):
                assert sentence[:1].isupper() or sentence[:1] in "`'\"", f"{where}: {sentence!r}"
                assert sentence.endswith("."), f"{where}: {sentence!r} ends with a full stop"
                assert len(sentence) <= 300, f"{where}: one sentence, not a paragraph"
            key = (str(member.value), member.room)
            assert key not in seen, f"{member.value} is catalogued twice: {seen[key]} and {where}"
            seen[key] = where


def test_kit_knows_no_domain() -> None:
    tree = ast.parse((SRC / "kit" / "errors.py").read_text(encoding="utf-8"))
    imported = [
        alias.name if isinstance(node, ast.Import) else node.module or ""
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (node.names if isinstance(node, ast.Import) else [node.names[0]])
    ]
    assert [m for m in imported if m.startswith("liveloop") and not m.startswith("liveloop.kit")] == []


def test_a_domain_error_takes_a_catalogue_member_or_its_string() -> None:
    from liveloop.members.errors import MemberErrorCode

    by_member = NotFound("No such member in this shop.", code=MemberErrorCode.MEMBER_NOT_FOUND)
    by_string = NotFound("No such member in this shop.", code="member_not_found")
    assert orjson.dumps(by_member.to_body()) == orjson.dumps(by_string.to_body())
    assert by_member.to_body()["error"]["code"].__class__ is str  # plain JSON, whatever the encoder
    assert by_member.code == "member_not_found"
    assert by_member.status_code == 404
    # Raised as the base class, an error answers the status its code is catalogued with.
    assert LiveloopError("x", code=MemberErrorCode.MEMBER_NOT_FOUND).status_code == 404
    assert LiveloopError("x", code=ApiErrorCode.RATE_LIMITED).status_code == 429
    assert ApiErrorCode("not_found") is ApiErrorCode.NOT_FOUND
    assert ApiErrorCode.NOT_FOUND.status == 404


# --- what an integrator sees ----------------------------------------------------------------------------


async def test_the_catalogue_is_served_as_json_without_a_key(shop: ShopCtx) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=shop.app), base_url="http://t") as anonymous:
        response = await anonymous.get("/v1/error-codes")
    assert response.status_code == 200
    codes = response.json()["codes"]
    expected = [
        (domain.name, str(m.value)) for domain in DOMAINS for m in domain.codes
    ]  # every code, grouped by domain, in the page's order
    assert [(c["domain"], c["code"]) for c in codes] == expected
    by_code = {(c["code"], c["room"]): c for c in codes}
    assert by_code[("member_not_found", False)]["statuses"] == [404]
    assert by_code[("coupon_bound_to_other", False)]["statuses"] == [422, 409]
    assert by_code[("rate_limited", False)]["statuses"] == [429]
    assert by_code[("rate_limited", True)] == {**by_code[("rate_limited", True)], "statuses": [], "domain": "room"}
    assert "Retry-After" in by_code[("rate_limited", False)]["fix"]

    document = shop.app.openapi()
    operation = document["paths"]["/v1/error-codes"]["get"]
    assert "security" not in operation
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorCatalogue"
    }
    assert "/docs/errors" in document["info"]["description"]  # Swagger UI and ReDoc show the link on top
    assert "/docs/errors" in document["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["description"]


async def test_the_docs_page_lists_every_code_with_its_meaning_and_fix(shop: ShopCtx) -> None:
    response = await shop.api.get("/docs/errors")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src" not in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    page = response.text
    assert "<script" not in page
    assert "style=" not in page
    for domain in DOMAINS:
        assert f'<section id="{domain.name}">' in page
        assert f'href="#{domain.name}"' in page
    rows = dict(re.findall(r'<tr id="([^"]+)"><td><code>[^<]+</code></td>(.*?)</tr>', page))
    assert len(rows) == len(errors.catalogued_codes())
    member = rows["member_not_found"]
    assert "<td>404</td>" in member
    assert "The shop has no member with this id" in member
    assert "<code>GET /v1/members</code>" in member  # `backticks` become code
    assert "<td>WebSocket</td>" in rows["room-rate_limited"]
    assert "<td>429</td>" in rows["rate_limited"]
    assert "<td>422, 409</td>" in rows["coupon_bound_to_other"]
    assert "&lt;scope&gt;" in rows["missing_scope"]  # text is escaped
    css = await shop.api.get("/static/live/errors.css")
    assert css.status_code == 200
    assert "table" in css.text


async def test_a_write_that_loses_a_race_for_a_unique_key_is_a_conflict(shop: ShopCtx) -> None:
    app = shop.app
    member = await create_member(shop.api, external_id="twin")

    async def late_twin() -> None:
        # What the loser of two racing writes meets: the winner committed the same key a moment earlier.
        async with app.state.sessions() as session:
            session.add(
                Member(
                    id="mem_twin",
                    shop_id=shop.shop.id,
                    external_id="twin",
                    market="sea",
                    locale="en",
                    referral_code="TWINCODE",
                )
            )
            await session.flush()

    app.add_api_route("/v1/test-late-twin", late_twin, methods=["POST"])
    r = await shop.api.post("/v1/test-late-twin")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "conflict"
    assert "twin" not in r.text  # the conflicting values are never echoed
    assert (await shop.api.get("/v1/members/mem_twin")).status_code == 404  # the loser's write left nothing
    assert (await shop.api.get(f"/v1/members/{member['id']}")).json()["external_id"] == "twin"


# --- recording: what the checks at the end of a run rely on -----------------------------------------------


def _fake_session(tmp_path: Path, *args: str, keyword: str = "", markexpr: str = "not slow") -> Any:
    option = SimpleNamespace(keyword=keyword, markexpr=markexpr, deselect=None, ignore=None, collectonly=False)
    config = SimpleNamespace(
        option=option,
        args=list(args),
        invocation_params=SimpleNamespace(dir=TESTS.parent),
        getini=lambda name: ["-m", "not slow", "-p", "no:cacheprovider"] if name == "addopts" else [],
    )
    return SimpleNamespace(
        config=config,
        testsfailed=0,
        testscollected=600,
        shouldfail=False,
        shouldstop=False,
        exitstatus=pytest.ExitCode.OK,
    )


def test_a_full_run_is_told_from_a_partial_one(tmp_path: Path) -> None:
    assert is_full_run(_fake_session(tmp_path, "tests").config)
    assert is_full_run(_fake_session(tmp_path, str(TESTS)).config)
    assert is_full_run(_fake_session(tmp_path, ".").config)  # the repository holds tests/
    assert is_full_run(_fake_session(tmp_path, "tests", markexpr="").config)  # slow tests too: still everything
    assert not is_full_run(_fake_session(tmp_path, "tests/live").config)
    assert not is_full_run(_fake_session(tmp_path, "tests/test_cli.py::test_help").config)
    assert not is_full_run(_fake_session(tmp_path, "tests", keyword="room").config)
    assert not is_full_run(_fake_session(tmp_path, "tests", markexpr="slow").config)


def test_the_end_of_a_run_fails_on_codes_no_test_produced_or_outside_the_catalogue(tmp_path: Path) -> None:
    recorded = tmp_path / "codes.txt"
    every = "".join(f"{m.value} {m.statuses[0]}\n" for m in errors.catalogued_codes() if m.value not in PENDING_MERGE)
    saved = dict(error_codes._state)
    try:
        error_codes._state.update(path=str(recorded), problems=[], missing=[])
        recorded.write_text(every)
        session = _fake_session(tmp_path, "tests")
        error_codes.pytest_sessionfinish(session, 0)  # everything produced: the run stands
        assert session.exitstatus == pytest.ExitCode.OK
        assert error_codes._state["missing"] == []

        recorded.write_text(every.replace("sold_out room\n", ""))
        error_codes.pytest_sessionfinish(session, 0)
        assert session.exitstatus == pytest.ExitCode.TESTS_FAILED
        assert error_codes._state["missing"] == ["room: sold_out (room)"]

        partial = _fake_session(tmp_path, "tests/live")
        error_codes._state["missing"] = []
        error_codes.pytest_sessionfinish(partial, 0)  # a partial run says nothing about what it did not run
        assert partial.exitstatus == pytest.ExitCode.OK

        recorded.write_text("member_not_found 409\nmystery_code 400\nnot_found 404\n")
        error_codes.pytest_sessionfinish(partial, 0)  # …but a code outside the catalogue fails any run
        assert partial.exitstatus == pytest.ExitCode.TESTS_FAILED
        assert error_codes._state["problems"] == [
            "member_not_found: answered with 409, catalogued with 404",
            "mystery_code: answered with 400, and not in any catalogue (add it to a domain's errors.py)",
        ]
    finally:
        error_codes._state.clear()
        error_codes._state.update(saved)


def test_recording_is_off_unless_asked_for() -> None:
    env = {k: v for k, v in os.environ.items() if k != errors.RECORD_ENV}
    probe = "from liveloop.kit import errors, edge; print(errors.recorder)"
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "None"


async def test_a_server_process_records_the_codes_it_answers_over_http_and_in_the_room(
    shop: ShopCtx, database_url: str, tmp_path: Path
) -> None:
    show = await live_show(shop)
    token = (await anonymous_token(shop, show["id"], "Rec"))["token"]
    recorded = tmp_path / "codes.txt"
    port = free_port()
    proc = start_server(
        {
            "LIVELOOP_DATABASE_URL": database_url,
            "LIVELOOP_RUN_WORKER": "false",
            "LIVELOOP_SECRET_KEY": shop.app.state.settings.secret_key,
            "LIVELOOP_LOG_LEVEL": "warning",
            errors.RECORD_ENV: str(recorded),
        },
        port,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/v1/members")).json()["error"]["code"] == "missing_api_key"
            assert (await client.get("/v1/members")).status_code == 401  # recorded once
            assert (await client.get("/no/such/page")).status_code == 404
        viewer = await join(LiveServer(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"), token, show["id"])
        await viewer.send(t="dance")
        await viewer.until(lambda v: v.errors)
        assert viewer.errors[0]["code"] == "unknown_type"
        await viewer.close()
    finally:
        proc.terminate()
        proc.wait(10)
    lines = recorded.read_text().splitlines()
    assert sorted(lines) == ["missing_api_key 401", "not_found 404", "unknown_type room"]
