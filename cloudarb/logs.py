"""One log format for every CloudArb process: a JSON object per line.

The API (and uvicorn's own loggers), the workers, their work horses and the node agent all call
``configure``. Each line carries ``ts``, ``level``, ``logger``, ``msg``, the process id, the
``request_id`` of the HTTP request and the ``job_id`` of the job being run (from context variables,
set by the API's middleware and by the job runtime), every field passed as ``extra={...}``, and
``exc`` with the traceback when there is one.

Standard library only: the node agent imports it and imports nothing of the server.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("cloudarb_request_id", default=None)
job_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("cloudarb_job_id", default=None)

# attributes every LogRecord has; anything else on a record came from ``extra={...}``
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime",
                                                                                   "color_message"}


def _plain(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON (see the module docstring for the fields)."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,
        }
        rid, jid = request_id.get(), job_id.get()
        if rid is not None:
            body["request_id"] = rid
        if jid is not None:
            body["job_id"] = jid
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                body.setdefault(key, _plain(value))
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            body["exc"] = record.exc_text
        if record.stack_info:
            body["stack"] = self.formatStack(record.stack_info)
        return json.dumps(body, default=str, ensure_ascii=False)


# loggers that install their own handlers; they go through the root handler instead
_SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "rq", "rq.worker", "rq.scheduler")


def configure(level: str | int = "INFO", *, stream: TextIO | None = None) -> None:
    """Send every logger of this process through one JSON handler on stderr (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_cloudarb", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler._cloudarb = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else level.upper())
    for name in _SERVER_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True


def uvicorn_config(level: str = "INFO") -> dict[str, Any]:
    """uvicorn's ``log_config``: applied in each server process it starts (``serve --workers N``)."""
    fmt = {"()": "cloudarb.logs.JsonFormatter"}
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": fmt},
        "handlers": {"default": handler},
        "root": {"handlers": ["default"], "level": level.upper()},
        "loggers": {name: {"handlers": [], "propagate": True} for name in ("uvicorn", "uvicorn.error",
                                                                            "uvicorn.access")},
    }


@contextmanager
def bound(*, request: str | None = None, job: str | None = None) -> Iterator[None]:
    """Within the block, every line this thread or task logs names the request and/or job."""
    tokens: list[tuple[contextvars.ContextVar[str | None], contextvars.Token[str | None]]] = []
    if request is not None:
        tokens.append((request_id, request_id.set(request)))
    if job is not None:
        tokens.append((job_id, job_id.set(job)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def level_from_env(default: str = "INFO") -> str:
    """The agent's level (it has no server settings): ``CLOUDARB_LOG_LEVEL`` or the default."""
    return os.environ.get("CLOUDARB_LOG_LEVEL", default).upper()
