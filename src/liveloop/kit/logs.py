"""Log lines: plain text or one JSON object per line, each carrying the id of the request it belongs to.

`configure` sets up the ``liveloop`` and ``uvicorn`` loggers (also as a dictConfig for uvicorn's worker
processes). The access log is ``liveloop.access``, written by :mod:`liveloop.kit.edge`; uvicorn's own
access log stays off, because it prints the raw request line, query string included.
"""

from __future__ import annotations

import logging
import logging.config
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

request_id: ContextVar[str | None] = ContextVar("liveloop_request_id", default=None)

# Attributes every LogRecord has; anything else was passed with ``extra=`` and belongs in the JSON line.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "request_id"}


class RequestIdFilter(logging.Filter):
    """Stamps each record with the id of the request being served (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", "request_id", …extra fields}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id.get() or "-",
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """``time level logger [request id] message``; the access log's fields follow as ``key=value``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get() or "-"
        return super().format(record)


def logging_config(level: str = "INFO", fmt: str = "text") -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` for liveloop and uvicorn (``fmt``: ``text`` or ``json``)."""
    formatter = "liveloop.kit.logs.JsonFormatter" if fmt == "json" else "liveloop.kit.logs.TextFormatter"
    handler = {"class": "logging.StreamHandler", "formatter": "default", "filters": ["request_id"]}
    logger = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "liveloop.kit.logs.RequestIdFilter"}},
        "formatters": {"default": {"()": formatter}},
        "handlers": {"default": {**handler, "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["default"], "level": "WARNING"},  # libraries' warnings, in the same format
        "loggers": {
            "liveloop": logger,
            "uvicorn": logger,
            "uvicorn.error": {"level": level.upper()},
            # Off: it logs the raw request line with its query string. liveloop.access replaces it.
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
        },
    }


def configure(level: str = "INFO", fmt: str = "text") -> dict[str, Any]:
    """Apply :func:`logging_config` in this process and return it (for uvicorn's ``log_config``)."""
    config = logging_config(level, fmt)
    logging.config.dictConfig(config)
    return config
