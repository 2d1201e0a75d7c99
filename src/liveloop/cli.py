"""The `liveloop` command."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.core import TyperCommand, TyperGroup

from liveloop.config import SecretKeyMissing, get_settings, persistent_secret_key
from liveloop.database import session_factory
from liveloop.kit import errors
from liveloop.kit.db import create_engine, transaction


def _plain_flags(params: list[Any]) -> list[Any]:
    # An on/off flag takes no value, so its help shows no value placeholder (Typer would print "<bool>").
    for param in params:
        if getattr(param, "is_bool_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class Command(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return _plain_flags(super().get_params(ctx))


class Group(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return _plain_flags(super().get_params(ctx))


class Typer(typer.Typer):
    """Typer whose commands and groups print flags without a value placeholder."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cls=Group, **kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", Command)
        return super().command(*args, **kwargs)


app = Typer(
    help="liveloop: growth engine for cross-border live commerce.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
shop_app = Typer(help="Create, list and configure shops (tenants).", no_args_is_help=True)
key_app = Typer(help="Create, list and revoke operator API keys.", no_args_is_help=True)
ledger_app = Typer(help="Inspect and prove the points, tickets and credit ledger.", no_args_is_help=True)
app.add_typer(shop_app, name="shop")
app.add_typer(key_app, name="apikey")
app.add_typer(ledger_app, name="ledger")
console = Console()
err = Console(stderr=True)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--database-url", envvar="LIVELOOP_DATABASE_URL", help="SQLAlchemy URL; LIVELOOP_DATABASE_URL or ./liveloop.db"
    ),
]


def _url(database_url: str | None) -> str:
    return database_url or get_settings().database_url


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(2)


def _refused(exc: errors.LiveloopError) -> None:
    """A domain error, said as the API says it: its message, then its code (listed at /docs/errors)."""
    if errors.recorder is not None:
        errors.recorder(str(exc.code), exc.status_code)
    _fail(f"{exc.message} ({exc.code})")


@app.command()
def migrate(database_url: DbOption = None) -> None:
    """Create or upgrade the database schema to the latest version, and say which migrations ran."""
    from liveloop.migrate import upgrade

    url = _url(database_url)
    with console.status(f"Migrating {url.split('@')[-1]} …"):
        applied = upgrade(url)
    if not applied:
        console.print("[green]The database is already up to date.[/]")
        return
    for revision, title in applied:
        console.print(f"Applied {revision}: {title}")
    console.print(f"[green]The database is up to date ({applied[-1][0]}).[/]")


def _secret_key(database_url: str, *, demo: bool = False) -> None:
    """Make sure this process and its children share a secret key that survives restarts (or stop here)."""
    os.environ["LIVELOOP_DATABASE_URL"] = database_url
    get_settings.cache_clear()
    try:
        key, notice = persistent_secret_key(get_settings())
    except SecretKeyMissing as exc:
        if not demo:
            _fail(str(exc))
        import secrets

        key, notice = secrets.token_urlsafe(48), "No secret key is kept for this database: the demo uses a new one."
    if notice:
        err.print(f"[yellow]{notice}[/]")
    # Worker processes must share one secret, or a viewer token minted by one would fail in another.
    os.environ["LIVELOOP_SECRET_KEY"] = key
    get_settings.cache_clear()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (LIVELOOP_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (LIVELOOP_PORT)")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
    database_url: DbOption = None,
    migrate_first: Annotated[bool, typer.Option("--migrate/--no-migrate", help="Migrate before serving")] = True,
) -> None:
    """Serve the API (docs at /docs) with the outbox worker inside."""
    import uvicorn

    from liveloop.kit import logs

    _secret_key(_url(database_url))
    settings = get_settings()
    if migrate_first:
        migrate(settings.database_url)
    uvicorn.run(
        "liveloop.app:create_server_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level=settings.log_level.lower(),
        log_config=logs.logging_config(settings.log_level, settings.log_format),
        access_log=False,  # liveloop.access logs each request, without query strings (see kit/edge.py)
        ws="liveloop.live.transport:GatewayProtocol",  # frames written once, straight to each socket
        ws_per_message_deflate=False,  # frames are encoded once for everyone; compressing per viewer would not be
        ws_max_size=64 * 1024,
    )


@app.command()
def worker(database_url: DbOption = None) -> None:
    """Run the outbox and scheduled-job worker on its own (when the API runs with LIVELOOP_RUN_WORKER=false)."""
    from liveloop.events.worker import Worker
    from liveloop.jobs import JOBS
    from liveloop.kit import logs

    _secret_key(_url(database_url))
    settings = get_settings()
    logs.configure(settings.log_level, settings.log_format)

    async def run() -> None:
        from liveloop.live.aliases import SECRET_INFO_KEY
        from liveloop.live.bus import create_bus
        from liveloop.live.notify import RELAY_KEY, RoomRelay

        engine = create_engine(_url(database_url))
        sessions = session_factory(engine)
        sessions.configure(info={SECRET_INFO_KEY: settings.secret_key})  # results name winners by alias
        bus = create_bus(settings.bus_url)
        relay: RoomRelay | None = None
        if bus.name == "memory":
            console.print(
                "[yellow]LIVELOOP_BUS_URL is memory://, so room messages from this worker (cues, results) reach "
                "viewers through the API process a few seconds late, and scoreboard updates not at all. Set it "
                "to the Redis or NATS URL the API uses.[/]"
            )
        else:
            await bus.start(None)  # publish only: the worker has no viewers
            relay = RoomRelay(sessions, bus)
            sessions.configure(info={RELAY_KEY: relay, SECRET_INFO_KEY: settings.secret_key})
            await relay.start()
        w = Worker.from_settings(sessions, settings, jobs=JOBS)
        _stop_on_signals(w.stop)
        console.print("Worker running; Ctrl-C (or SIGTERM) stops it after the pass under way.")
        try:
            await w.run_forever()
        finally:
            await w.close()
            if relay is not None:
                await relay.close()
            await bus.close()
            await engine.dispose()

    try:
        asyncio.run(run())
    except (KeyboardInterrupt, asyncio.CancelledError):
        console.print("Stopped.")
        return
    console.print("Stopped.")


def _stop_on_signals(stop: Callable[[], None]) -> None:
    """SIGINT and SIGTERM ask the running loops to stop after their current pass; a second one cancels them.

    Stopping between passes, not inside one, keeps every transaction whole: a database call cut short by a
    cancellation is not always closed cleanly by the driver, and the process would then wait on it forever.
    """
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    asked = False

    def on_signal() -> None:
        nonlocal asked
        if asked and main is not None:
            main.cancel()
        asked = True
        stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)


@shop_app.command("create")
def shop_create(
    slug: Annotated[str, typer.Argument(help="Short name used in URLs, e.g. acme-beauty")],
    name: Annotated[str, typer.Option(help="Display name")] = "",
    landing_url: Annotated[str, typer.Option(help="Where invite links land")] = "https://example.com/",
    timezone: Annotated[str, typer.Option(help="Reporting time zone (IANA)")] = "UTC",
    market: Annotated[str, typer.Option(help="Default market: sea, na, eu or me")] = "na",
    shopify_secret: Annotated[str | None, typer.Option(help="Shopify app secret for its webhooks")] = None,
    database_url: DbOption = None,
) -> None:
    """Create a shop with the four market presets and print its webhook secret and an admin API key."""
    from liveloop.kit.errors import LiveloopError
    from liveloop.shops.service import create_api_key, create_shop

    async def run() -> tuple[str, str, str]:
        engine = create_engine(_url(database_url))
        try:
            async with transaction(session_factory(engine)) as session:
                shop = await create_shop(
                    session,
                    slug=slug,
                    name=name or slug,
                    landing_url=landing_url,
                    reporting_timezone=timezone,
                    default_market=market,
                    shopify_secret=shopify_secret,
                )
                _, key = await create_api_key(session, shop, name="admin (created by CLI)", scopes=["admin"])
                return shop.id, shop.webhook_secret, key
        finally:
            await engine.dispose()

    try:
        shop_id, secret, key = asyncio.run(run())
    except LiveloopError as exc:
        _refused(exc)
        return
    table = Table(show_header=False, title=f"Shop {slug}")
    table.add_row("id", shop_id)
    table.add_row("webhook secret", secret)
    table.add_row("admin API key", key)
    console.print(table)
    console.print("[yellow]Store the API key now; it is not shown again.[/]")


@shop_app.command("set-shopify-secret")
def shop_set_shopify_secret(
    slug: Annotated[str, typer.Argument(help="The shop's slug")],
    secret: Annotated[
        str | None,
        typer.Option(help="The Shopify secret; without it, read from standard input or asked for (hidden)"),
    ] = None,
    grace_seconds: Annotated[
        int, typer.Option(help="How long the previous secret still verifies webhooks; 0 retires it at once")
    ] = 3600,
    database_url: DbOption = None,
) -> None:
    """Set or rotate the secret that verifies the shop's Shopify webhooks (never printed)."""
    from datetime import timedelta

    from liveloop.kit.errors import LiveloopError
    from liveloop.shops.service import get_shop_by_slug, set_shopify_secret

    if secret is None:  # asked for when typing at a terminal, read from a pipe otherwise
        interactive = sys.stdin.isatty()
        secret = typer.prompt("Shopify secret", hide_input=True) if interactive else sys.stdin.readline()
    secret = secret.strip()

    async def run() -> bool:
        engine = create_engine(_url(database_url))
        try:
            async with transaction(session_factory(engine)) as session:
                shop = await get_shop_by_slug(session, slug)
                rotated = shop.shopify_secret is not None and shop.shopify_secret != secret
                await set_shopify_secret(session, shop, secret, grace=timedelta(seconds=grace_seconds))
                return rotated
        finally:
            await engine.dispose()

    try:
        rotated = asyncio.run(run())
    except LiveloopError as exc:
        _refused(exc)
        return
    if rotated and grace_seconds:
        console.print(
            f"Shopify secret of {slug} rotated; the previous one still verifies webhooks for {grace_seconds} s."
        )
    else:
        console.print(f"Shopify secret of {slug} set.")


@shop_app.command("list")
def shop_list(database_url: DbOption = None) -> None:
    """List shops."""
    from liveloop.models import Shop
    from liveloop.shops.service import list_shops

    async def run() -> list[Shop]:
        engine = create_engine(_url(database_url))
        try:
            async with transaction(session_factory(engine)) as session:
                return await list_shops(session)
        finally:
            await engine.dispose()

    table = Table("slug", "name", "id", "time zone", "default market")
    for shop in asyncio.run(run()):
        table.add_row(shop.slug, shop.name, shop.id, shop.reporting_timezone, shop.default_market)
    console.print(table)


@key_app.command("create")
def apikey_create(
    shop: Annotated[str, typer.Option(help="Shop slug")],
    scope: Annotated[list[str], typer.Option(help="Repeat for several scopes, e.g. --scope members:read")],
    name: Annotated[str, typer.Option(help="What the key is for")] = "cli",
    database_url: DbOption = None,
) -> None:
    """Create an API key with the given scopes; it is printed once."""
    from liveloop.kit.errors import LiveloopError
    from liveloop.shops.service import create_api_key, get_shop_by_slug

    async def run() -> str:
        engine = create_engine(_url(database_url))
        try:
            async with transaction(session_factory(engine)) as session:
                row = await get_shop_by_slug(session, shop)
                _, key = await create_api_key(session, row, name=name, scopes=scope)
                return key
        finally:
            await engine.dispose()

    try:
        key = asyncio.run(run())
    except LiveloopError as exc:
        _refused(exc)
        return
    console.print(key)
    err.print("[yellow]Store the key now; it is not shown again.[/]")


@key_app.command("list")
def apikey_list(shop: Annotated[str, typer.Option(help="Shop slug")], database_url: DbOption = None) -> None:
    """List a shop's API keys (never the keys themselves)."""
    from liveloop.shops.service import get_shop_by_slug, list_api_keys

    async def run() -> list[tuple[str, str, str, str, str]]:
        engine = create_engine(_url(database_url))
        try:
            async with transaction(session_factory(engine)) as session:
                row = await get_shop_by_slug(session, shop)
                return [
                    (k.id, k.name, k.prefix, " ".join(k.scopes), "revoked" if k.revoked_at else "active")
                    for k in await list_api_keys(session, row.id)
                ]
        finally:
            await engine.dispose()

    table = Table("id", "name", "prefix", "scopes", "state")
    for r in asyncio.run(run()):
        table.add_row(*r)
    console.print(table)


@key_app.command("revoke")
def apikey_revoke(
    key: Annotated[str, typer.Argument(help="The key's id (key_…) or prefix (ll_…), as `liveloop apikey list` shows")],
    shop: Annotated[str, typer.Option(help="Shop slug")],
    database_url: DbOption = None,
) -> None:
    """Revoke an API key: requests made with it are refused from now on (401 invalid_api_key)."""
    from liveloop.kit.errors import LiveloopError
    from liveloop.shops.service import get_shop_by_slug, revoke_api_key

    async def run() -> tuple[str, str, bool]:
        engine = create_engine(_url(database_url))
        try:
            async with transaction(session_factory(engine)) as session:
                row = await get_shop_by_slug(session, shop)
                found = await revoke_api_key(session, row.id, key)
                return found.id, found.name, found.revoked_at is not None
        finally:
            await engine.dispose()

    try:
        key_id, name, _ = asyncio.run(run())
    except LiveloopError as exc:
        _refused(exc)
        return
    console.print(f"Revoked {key_id} ({name}).")


@ledger_app.command("verify")
def ledger_verify(database_url: DbOption = None) -> None:
    """Prove the ledger: balanced transactions, balances equal to entry sums, no negatives, lots in step."""
    from liveloop.ledger.verify import CHECKS, VerifyReport, verify

    async def run() -> VerifyReport:
        engine = create_engine(_url(database_url))
        try:
            with Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                TimeElapsedColumn(),
                console=err,
                transient=True,
            ) as progress:
                task = progress.add_task("Checking the ledger", total=len(CHECKS))
                async with transaction(session_factory(engine)) as session:
                    return await verify(session, on_check=lambda name: progress.advance(task))
        finally:
            await engine.dispose()

    started = time.perf_counter()
    report = asyncio.run(run())
    elapsed = time.perf_counter() - started
    table = Table("check", "result")
    for name, title, _ in CHECKS:
        problems = report.problems[name]
        table.add_row(
            title, "[green]ok[/]" if not problems else f"[red]{len(problems)}+ problems[/] e.g. {problems[:3]}"
        )
    console.print(table)
    console.print(
        f"{report.entries:,} entries, {report.transactions:,} transactions, "
        f"{report.accounts:,} accounts verified in {elapsed:.2f} s"
    )
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def assets(
    force: Annotated[bool, typer.Option(help="Download again even when the pinned versions are present")] = False,
    registry: Annotated[
        str | None, typer.Option(help="npm registry (LIVELOOP_NPM_REGISTRY; default: registry.npmjs.org)")
    ] = None,
) -> None:
    """Fetch the browser libraries (video players; Swagger UI and ReDoc for /docs) from npm, pinned and checked."""
    from liveloop.web import assets as vendor

    if not force and all(vendor.present(a) for a in vendor.ASSETS):
        console.print("The video players and the API reference viewers are up to date.")
        return
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), console=console
    ) as progress:
        tasks: dict[str, TaskID] = {}

        def on_progress(asset: vendor.Asset, done: int, total: int) -> None:
            if asset.name not in tasks:
                tasks[asset.name] = progress.add_task(f"{asset.package}@{asset.version}", total=total or None)
            progress.update(tasks[asset.name], completed=done)

        try:
            written = vendor.fetch(force=force, registry=registry, on_progress=on_progress)
        except (vendor.AssetError, httpx.HTTPError) as exc:
            console.print(f"[red]Could not fetch the browser libraries: {exc}[/]")
            console.print(
                "The viewer page still works (it plays HLS where the browser can and shows a test card elsewhere), "
                "and /docs says how to get its viewer. Run `liveloop assets` again when the npm registry is "
                "reachable, or set LIVELOOP_NPM_REGISTRY."
            )
            raise typer.Exit(1) from exc
    packages = dict.fromkeys(f"{a.package}@{a.version}" for a in written)
    console.print(f"Fetched {', '.join(packages)} into {vendor.VENDOR}.")


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Port to serve on")] = 8000,
    database_url: DbOption = None,
    serve_after: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve the API afterwards")] = True,
) -> None:
    """Migrate, seed a demo shop with a running campaign and simulated traffic, print a summary, and serve."""
    from liveloop.demo import run_demo

    url = _url(database_url)
    _secret_key(url, demo=True)
    migrate(url)
    summary = asyncio.run(run_demo(url, console, base_url=f"http://127.0.0.1:{port}"))
    if serve_after:
        os.environ["LIVELOOP_DATABASE_URL"] = url
        os.environ["LIVELOOP_DEMO_SHOW_ID"] = summary["show_id"]
        os.environ["LIVELOOP_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"
        get_settings.cache_clear()
        console.print(f"\nServing on [bold]http://127.0.0.1:{port}[/] — API docs at http://127.0.0.1:{port}/docs")
        serve(host="127.0.0.1", port=port, workers=1, database_url=url, migrate_first=False)


@app.command()
def bench(
    name: Annotated[str, typer.Argument(help="clicks, conversions, verify, room, flood or all")] = "all",
    quick: Annotated[bool, typer.Option(help="Short runs, for a smoke test")] = False,
) -> None:
    """Run the benchmarks under benchmarks/ (they report median, p99 and the ratio to their baseline)."""
    root = Path.cwd() / "benchmarks"
    if not root.is_dir():
        _fail("Run this from the liveloop source tree: the benchmarks live in ./benchmarks.")
    names = ["clicks", "conversions", "verify", "room", "flood"] if name == "all" else [name]
    code = 0
    for n in names:
        script = root / f"bench_{n}.py"
        if not script.exists():
            _fail(f"No benchmark {n!r}; choose clicks, conversions, verify, room, flood or all.")
        args = [sys.executable, str(script)] + (["--quick"] if quick else []) + (["--baseline"] if n == "room" else [])
        code |= subprocess.call(args)  # noqa: S603 - our own scripts
    raise typer.Exit(code)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
