"""The API reference, served from this server only: Swagger UI at ``/docs``, ReDoc at ``/redoc``.

Both viewers are fetched by `liveloop assets` (pinned, integrity-checked; see :mod:`liveloop.web.assets`)
and started by ``static/docs.js``, so the pages hold no inline script. Without them, each page says how to
fetch them and links the OpenAPI document itself.

``/docs/errors`` lists every error code (see :mod:`liveloop.web.errors`): a page rendered here, with no script.
"""

from __future__ import annotations

import html
import re

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from liveloop.kit.errors import ErrorCode
from liveloop.web import assets, errors
from liveloop.web.pages import content_security_policy, json_for_script

docs = APIRouter(include_in_schema=False)

OPENAPI_URL = "/openapi.json"
VENDOR_DIR = assets.VENDOR
VENDOR_URL = "/static/live/vendor/"
# The viewers style their widgets inline (ReDoc injects <style> elements), so styles may be inline; scripts not.
POLICY = content_security_policy(
    {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
)

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
{head}
<script type="application/json" id="ll-docs">{config}</script>
{scripts}
</head>
<body>
{body}
</body>
</html>
"""

_MISSING = """<main>
<h1>{title}</h1>
<p>The API reference viewer ({viewer}) is not installed on this server. Fetch it where liveloop is installed with
<code>liveloop assets</code> (or <code>make install</code>): it comes from npm, pinned and integrity-checked
(<code>LIVELOOP_NPM_REGISTRY</code> points it at a mirror). Nothing is loaded from a CDN.</p>
<p>The OpenAPI document itself is at <a href="{openapi}">{openapi}</a>.</p>
</main>"""


def _page(*, title: str, viewer: str, files: tuple[assets.Asset, ...], body: str) -> HTMLResponse:
    headers = {"content-security-policy": POLICY, "cache-control": "no-cache", "x-frame-options": "DENY"}
    if not all(assets.present(asset, VENDOR_DIR) for asset in files):
        page = _PAGE.format(
            title=html.escape(title),
            head="",
            config="{}",
            scripts="",
            body=_MISSING.format(title=html.escape(title), viewer=viewer, openapi=OPENAPI_URL),
        )
        return HTMLResponse(page, status_code=503, headers=headers)
    styles = "".join(f'<link rel="stylesheet" href="{VENDOR_URL}{a.name}">\n' for a in files if a.name.endswith(".css"))
    scripts = "".join(f'<script src="{VENDOR_URL}{a.name}" defer></script>\n' for a in files if a.name.endswith(".js"))
    config = {"viewer": viewer, "openapi_url": OPENAPI_URL}
    page = _PAGE.format(
        title=html.escape(title),
        head=styles,
        config=json_for_script(config),
        scripts=scripts + '<script src="/static/live/docs.js" defer></script>',
        body=body,
    )
    return HTMLResponse(page, headers=headers)


@docs.get("/docs", response_class=HTMLResponse)
async def swagger_ui() -> HTMLResponse:
    files = tuple(a for a in assets.DOCS if a.package == "swagger-ui-dist")
    return _page(title="liveloop API", viewer="swagger-ui", files=files, body='<div id="swagger-ui"></div>')


@docs.get("/redoc", response_class=HTMLResponse)
async def redoc() -> HTMLResponse:
    files = tuple(a for a in assets.DOCS if a.package == "redoc")
    return _page(
        title="liveloop API reference",
        viewer="redoc",
        files=files,
        body='<div id="redoc"></div>',
    )


# The error catalogue has no script and no inline style: the strictest policy of all the pages.
ERRORS_POLICY = content_security_policy(
    {
        "default-src": ["'none'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "base-uri": ["'none'"],
        "form-action": ["'none'"],
        "frame-ancestors": ["'none'"],
    }
)

_ERRORS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>liveloop error codes</title>
<link rel="stylesheet" href="/static/live/errors.css">
</head>
<body>
<main>
<h1>Error codes</h1>
<p>Every error the liveloop API answers has the body
<code>{{"error": {{"code": "…", "message": "…", "details": {{…}}}}}}</code>: branch on <code>code</code>, which never
changes; <code>message</code> says the same for a person, with the values of this request. The live room refuses a
viewer's input on its WebSocket with <code>{{"t": "err", "code": "…", "message": "…"}}</code> and keeps the connection
open. The same catalogue, as JSON: <a href="/v1/error-codes">/v1/error-codes</a>. The operations and the statuses
each can answer: <a href="/docs">/docs</a>.</p>
<nav><ul>
{toc}
</ul></nav>
{sections}
</main>
</body>
</html>
"""

_TICKS = re.compile(r"`([^`]+)`")


def _text(sentence: str) -> str:
    """A catalogue sentence as HTML: escaped, with `backticked` spans as code."""
    return _TICKS.sub(r"<code>\1</code>", html.escape(sentence, quote=False))


def _status(code: ErrorCode) -> str:
    return ", ".join("WebSocket" if s == "room" else str(s) for s in code.statuses)


def _section(domain: errors.Domain) -> str:
    rows = "\n".join(
        f'<tr id="{html.escape(errors.anchor(code))}"><td><code>{html.escape(code.value)}</code></td>'
        f"<td>{_status(code)}</td><td>{_text(code.meaning)}</td><td>{_text(code.fix)}</td></tr>"
        for code in domain.codes
    )
    return (
        f'<section id="{domain.name}">\n<h2>{html.escape(domain.title)}</h2>\n<p>{_text(domain.summary)}</p>\n'
        "<table>\n<thead><tr><th>Code</th><th>Status</th><th>Meaning</th><th>How to fix it</th></tr></thead>\n"
        f"<tbody>\n{rows}\n</tbody>\n</table>\n</section>"
    )


def errors_page() -> str:
    toc = "\n".join(
        f'<li><a href="#{domain.name}">{html.escape(domain.title)}</a> ({len(domain.codes)})</li>'
        for domain in errors.DOMAINS
    )
    return _ERRORS_PAGE.format(toc=toc, sections="\n".join(_section(domain) for domain in errors.DOMAINS))


@docs.get("/docs/errors", response_class=HTMLResponse)
async def error_codes_page() -> HTMLResponse:
    headers = {"content-security-policy": ERRORS_POLICY, "cache-control": "no-cache", "x-frame-options": "DENY"}
    return HTMLResponse(errors_page(), headers=headers)
