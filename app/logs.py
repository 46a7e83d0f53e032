"""Structured logs (structlog): one JSON object per line, with the request id bound per request.

Secrets never reach a log: query strings are logged with the values of sensitive keys
replaced, and headers are never logged.

>>> redact_query("token=abc&x=1")
'token=[redacted]&x=1'
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
from datetime import UTC, datetime
from typing import TextIO
from urllib.parse import parse_qsl, urlencode

import msgspec
import structlog

SENSITIVE_KEYS = {"token", "access_token", "password", "secret", "key", "api_key", "auth", "authorization"}


def redact_query(query: str) -> str:
    """The query string with the values of sensitive keys replaced by ``[redacted]``."""
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, "[redacted]" if k.lower() in SENSITIVE_KEYS else v) for k, v in pairs], safe="[]")


class _StderrLogger:
    """Where structlog writes a rendered line: whatever ``sys.stderr`` is at that moment."""

    def __init__(self, *_args: object) -> None:
        pass

    def msg(self, message: str) -> None:
        sys.stderr.write(message + "\n")

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


def configure(fmt: str = "json", level: int = logging.INFO) -> None:
    """Route structlog and the standard library's logging to stderr in ``fmt`` (json or console)."""
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # The studio's own lines are rendered by structlog and written straight to stderr: through
    # the logging module each cost a quarter of a millisecond, a tenth of creating a project.
    # Other libraries' lines (logging) go through the same processors and renderer.
    tracebacks = structlog.processors.format_exc_info  # an exception's traceback, not its repr
    structlog.configure(
        processors=[*shared, tracebacks, renderer],
        logger_factory=_StderrLogger,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, tracebacks, renderer],
        )
    )
    global _access_level, _access_format
    _access_level, _access_format = level, fmt
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    # Granian's own access log would print raw query strings (tokens); ours redacts them.
    logging.getLogger("granian.access").disabled = True
    # httpx logs whole URLs (query strings included) at INFO.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("watchfiles").setLevel(logging.WARNING)  # "2 changes detected" on every save


_access_level = logging.INFO
_access_format = "json"
_encode = msgspec.json.Encoder().encode  # a tenth of json.dumps' time for an access line


def access_log(entry: dict[str, object], *, routine: bool = False) -> None:
    """One access-log line, written straight to stderr; a ``routine`` one (a worker's progress,
    previews and heartbeats, which come many times a second) only at DEBUG.

    The access log is the one log written on every request; going around structlog and the
    logging module keeps it at a few microseconds (it was a sixth of a list request's time).
    """
    level = logging.DEBUG if routine else logging.INFO
    if _access_level > level:
        return
    entry["level"] = logging.getLevelName(level).lower()
    entry["timestamp"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    if _access_format == "json":
        _write_soon(_encode(entry).decode() + "\n")
    else:
        rest = " ".join(f"{k}={v}" for k, v in entry.items() if k not in ("event", "level", "timestamp"))
        _write_soon(f"{entry['timestamp']} [{entry['level']:<9}] request {rest}\n")


# An access line written on an event loop waits for the end of the loop's current turn and goes
# out with the others of that turn in one write: a busy server answers dozens of requests a
# turn, and a write per line cost a tenth of a cheap request's time. One buffer a loop (the
# server's, a test client's), written to the stderr of the moment its first line came.
_pending: dict[asyncio.AbstractEventLoop, tuple[TextIO, list[str]]] = {}


def _write_soon(line: str) -> None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        sys.stderr.write(line)
        return
    waiting = _pending.get(loop)
    if waiting is None:
        waiting = _pending[loop] = (sys.stderr, [])
        loop.call_soon(_flush, loop)
    waiting[1].append(line)


def _flush(loop: asyncio.AbstractEventLoop) -> None:
    stream, lines = _pending.pop(loop, (sys.stderr, []))
    if lines:
        text = "".join(lines)
        try:
            stream.write(text)
            stream.flush()
        except ValueError:  # closed since (a test's captured stderr): the stderr of now
            sys.stderr.write(text)


@atexit.register
def _flush_all() -> None:
    """Lines of a loop that stopped before its turn ended."""
    for loop in list(_pending):
        _flush(loop)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
