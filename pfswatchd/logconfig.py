"""Logging: one structlog processor chain for pfswatchd and the libraries under it.

JSON lines on stdout when not on a terminal (journald keeps them whole), a
readable console rendering on a terminal; ``log.format`` forces either.  Event
names are snake_case past-tense facts (``file_ingested``, ``file_failed``,
``archive_unpacked``) and are part of the operator interface.  Standard-library
records (the butler, SQLAlchemy, watchdog) go through the same chain.  A
redaction processor removes passwords from database URLs in every event.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

# The password runs to the last "@" of the URL (a word without spaces or quotes): SQLAlchemy takes a
# password with "/" or ":" as written, and "@" in a password may be left unquoted by mistake.
_URL_PASSWORD = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s'\"]*):(?P<password>[^\s'\"]*)@(?=[^@\s'\"]*(?:[\s'\"]|$))"
)


def redact(text: str) -> str:
    """Replace the password of every URL in ``text`` (a URL alone, or a message holding URLs) by ***."""
    return _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)


def _redact_processor(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    for key, value in event.items():
        if isinstance(value, str) and "://" in value:
            event[key] = redact(value)
    return event


def configure(fmt: str = "auto", level: str = "info", stream: Any = None) -> None:
    stream = stream or sys.stdout
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact_processor,
    ]
    renderer: Any = structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(
        colors=False)
    numeric = getattr(logging, level.upper(), logging.INFO)
    structlog.configure(
        processors=[*shared, structlog.processors.dict_tracebacks if use_json else structlog.processors.format_exc_info,
                    renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processor=renderer, foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared]))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, logging.WARNING))  # libraries: warnings and errors only
    logging.captureWarnings(True)


def get(name: str = "pfswatchd") -> Any:
    return structlog.get_logger(name)
