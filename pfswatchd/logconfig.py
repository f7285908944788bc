"""Logging: one structlog processor chain for pfswatchd and the libraries under it.

JSON lines on stdout when not on a terminal (journald keeps them whole), a
readable console rendering on a terminal; ``log.format`` forces either.  Event
names are snake_case past-tense facts (``file_ingested``, ``file_failed``,
``archive_unpacked``) and are part of the operator interface.  Standard-library
records (the butler, SQLAlchemy, watchdog) go through the same chain.  A
redaction processor removes passwords from database URLs in every event.

structlog is imported where a logger is configured or asked for, not with this module: the commands
that only read and print (``status``) import :func:`redact` and need no logging (structlog and the
rich it brings cost a third of a second at start-up).
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import MutableMapping
from typing import Any

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
        if isinstance(value, str):
            if "://" in value:
                value = event[key] = redact(value)
            if not value.isascii():
                event[key] = _printable(value)
        elif isinstance(value, list | tuple) and any(isinstance(v, str) and not v.isascii() for v in value):
            event[key] = [_printable(v) if isinstance(v, str) else v for v in value]
    return event


def _printable(text: str) -> str:
    """A byte of a file name that is not UTF-8 (a lone surrogate) as ``\\xNN``: a console log line that
    quotes such a name must not fail to print (the JSON renderer escapes it on its own)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text


class BurstSummary:
    """On a terminal, a burst of files is summarised, not told one line per file.

    The service logs an event per file (``file_ingested`` ...): right for journald and JSON logs,
    which keep every one, but 2,380 lines on a terminal for one burst.  With the console renderer the
    routine per-file events (info level; failures and retries are always shown) are counted instead
    and ``flush`` logs one ``files_done`` line when the burst is over (nothing new for QUIET seconds)
    or every EVERY seconds while it lasts.  A lone file is shown as its own event, as before.
    """

    EVENTS = frozenset({"file_ingested", "file_duplicate", "file_waiting", "file_ignored", "batch_ingested"})
    QUIET = 1.0
    EVERY = 10.0

    def __init__(self) -> None:
        self.enabled = False
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._first: dict[str, Any] | None = None
        self._began = self._last = 0.0

    def __call__(self, _logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        if event.pop("summarised", False) or not self.enabled or event.get("event") not in self.EVENTS:
            return event
        with self._lock:
            now = time.monotonic()
            if not self._counts:
                self._began, self._first = now, dict(event)
            self._last = now
            if event["event"] != "batch_ingested":
                self._counts[str(event["event"]).removeprefix("file_")] += 1
        import structlog

        raise structlog.DropEvent

    def flush(self, *, force: bool = False) -> None:
        with self._lock:
            now = time.monotonic()
            if not self._counts or not (force or now - self._last >= self.QUIET or now - self._began >= self.EVERY):
                return
            counts, first, seconds = self._counts, self._first, now - self._began
            self._counts, self._first = Counter(), None
        logger = get()
        if sum(counts.values()) == 1 and first is not None:
            name = first.pop("event")
            for key in ("level", "timestamp"):
                first.pop(key, None)
            logger.info(name, summarised=True, **first)
            return
        logger.info("files_done", summarised=True, files=sum(counts.values()), **dict(sorted(counts.items())),
                    seconds=round(seconds, 1))


_summary = BurstSummary()


def flush_summary(*, force: bool = False) -> None:
    """Log the summary of a finished burst (on a terminal); the service calls it from its loop."""
    _summary.flush(force=force)


def configure(fmt: str = "auto", level: str = "info", stream: Any = None) -> None:
    import structlog

    stream = stream or sys.stdout
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    _summary.enabled = not use_json
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
        processors=[*shared, _summary,
                    structlog.processors.dict_tracebacks if use_json else structlog.processors.format_exc_info,
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
    import structlog

    return structlog.get_logger(name)
