"""Logging for every poolgate process: human-readable lines by default, JSON lines with ``--log-format json``.

While the edge serves a request it sets :data:`REQUEST_ID`; every line logged in that request's context (its own
request line, failover warnings, background outcome reports) then carries the id, in either format. Structured
fields for JSON lines go in ``extra={"fields": {...}}`` (or a callable returning them); text lines show only the
message.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

REQUEST_ID: ContextVar[str] = ContextVar("poolgate_request_id", default="")
"""The id of the request being served in this context; empty outside requests."""

LOG_FORMATS = ("text", "json")


_template: dict[str, Any] | None = None


def log_record(logger: logging.Logger, level: int, msg: str, args: tuple[Any, ...], created: float,
               request_id: str = "", fields: Any = None) -> logging.LogRecord:
    """A record as ``logger.log(level, msg, *args)`` would make it, made at about half the cost (a copy of a
    template record's attributes instead of a run of LogRecord's constructor), for a moment that has passed
    (``created``, epoch seconds) and the request ``request_id``; pass it to ``logger.handle``."""
    global _template
    if _template is None:
        _template = logging.LogRecord("", logging.INFO, "(unknown file)", 0, "", (), None).__dict__
    attributes = _template.copy()
    attributes.update(name=logger.name, msg=msg, args=args, levelno=level, levelname=logging.getLevelName(level),
                      created=created, msecs=(created - int(created)) * 1000, request_id=request_id, fields=fields,
                      relativeCreated=_template["relativeCreated"] + (created - _template["created"]) * 1000)
    record = logging.LogRecord.__new__(logging.LogRecord)
    record.__dict__ = attributes
    return record


class _RequestIdFilter(logging.Filter):
    """Copies the context's request id onto each record (as ``request_id``) as it is handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = REQUEST_ID.get()
        return True


class _StampedFormatter(logging.Formatter):
    """A formatter whose time stamp, down to the second, is formatted once per second; lines add the milliseconds."""

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._stamp = ""

    def _stamp_of(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:
            self._second, self._stamp = second, self._format_second(second)
        return self._stamp

    def _format_second(self, second: int) -> str:
        raise NotImplementedError


class TextFormatter(_StampedFormatter):
    """``TIME LEVEL LOGGER: message request_id=ID`` (the id only when there is one); the time as
    ``%(asctime)s`` writes it, in local time."""

    def _format_second(self, second: int) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", self.converter(second))

    def format(self, record: logging.LogRecord) -> str:
        stamp = self._stamp_of(record)
        line = f"{stamp},{int(record.msecs):03d} {record.levelname} {record.name}: {record.getMessage()}"
        request_id = getattr(record, "request_id", "")
        if request_id:
            line = f"{line} request_id={request_id}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line = f"{line}\n{record.exc_text}"
        if record.stack_info:
            line = f"{line}\n{self.formatStack(record.stack_info)}"
        return line


_JSON = json.JSONEncoder(ensure_ascii=False, default=str)  # built once: json.dumps(**options) builds one per call


class JsonFormatter(_StampedFormatter):
    """One JSON object per line: ``time`` (ISO 8601, UTC, milliseconds), ``level``, ``logger``, ``message``,
    ``request_id`` when set, the record's ``fields`` (a dict, or a callable returning one, so that text lines never
    build it), and ``exception`` with the traceback."""

    def _format_second(self, second: int) -> str:
        return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": f"{self._stamp_of(record)}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", "")
        if request_id:
            out["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if callable(fields):
            fields = fields()
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return _JSON.encode(out)


class LineHandler(logging.Handler):
    """Writes one formatted line per record to a stream.

    With ``buffered``, lines below WARNING are collected and written together — at most :data:`FLUSH_INTERVAL`
    seconds later (by a background thread), or every :data:`BUFFER_LINES` lines — which saves a system call per
    request line. A warning or an error goes out at once, after the lines buffered before it; :meth:`flush` (also
    called at exit) writes what is buffered.
    """

    def __init__(self, stream: IO[str], buffered: bool = False) -> None:
        super().__init__()
        self.stream = stream
        self._buffered = buffered
        self._lines: list[str] = []
        self._pending = threading.Event()
        self._flusher: threading.Thread | None = None

    def emit(self, record: logging.LogRecord) -> None:  # called with the handler's lock held
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self._lines.append(line)
        if not self._buffered or record.levelno >= logging.WARNING or len(self._lines) >= BUFFER_LINES:
            self._write()
        elif len(self._lines) == 1:
            if self._flusher is None:
                self._flusher = threading.Thread(target=self._flush_soon, name="poolgate-log-flush", daemon=True)
                self._flusher.start()
            self._pending.set()

    def _write(self) -> None:
        lines, self._lines = self._lines, []
        if not lines:
            return
        try:
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # the stream is gone (closed pipe, shutdown): nothing else to write to
            pass

    def _flush_soon(self) -> None:
        while True:
            self._pending.wait()
            time.sleep(FLUSH_INTERVAL)
            self._pending.clear()
            self.flush()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write()


FLUSH_INTERVAL = 0.2
"""Longest time a buffered line waits before it is written."""
BUFFER_LINES = 256


def make_handler(log_format: str = "text", stream: IO[str] | None = None, buffered: bool = False) -> LineHandler:
    """A handler writing ``log_format`` lines with request ids to ``stream`` (stderr by default)."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format {log_format!r}: use one of {', '.join(LOG_FORMATS)}")
    handler = LineHandler(stream if stream is not None else sys.stderr, buffered)
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    return handler


def configure_logging(level: str = "info", log_format: str = "text", stream: IO[str] | None = None) -> None:
    """Set the root logger's level and its one poolgate handler (``text`` or ``json`` lines, buffered).

    Records skip what no poolgate line shows — the calling source line, thread and process — which halves the cost
    of a log call (the logging HOWTO's "Optimization" section).
    """
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None  # no stack walk per record (no %(pathname)s/%(lineno)d)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, LineHandler):
            root.removeHandler(handler)
            handler.close()
    root.addHandler(make_handler(log_format, stream, buffered=True))
    root.setLevel(getattr(logging, level.upper()))
