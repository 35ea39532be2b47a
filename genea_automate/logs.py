"""Log set-up: plain lines for people, or key=value or JSON lines for machines."""

from __future__ import annotations

import json
import logging
import sys

STABLE_FIELDS = ("event_id", "rule_id", "endpoint", "kind")
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


# Event data reaches log messages (a door's name, a uuid): a newline in it must
# not be able to start a forged log line.
_CONTROLS = {code: f"\\x{code:02x}" for code in [*range(0x20), 0x7F]}
_CONTROLS.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})


def one_line(text: str) -> str:
    """`text` with control characters written as escapes, so it stays one line."""
    return text.translate(_CONTROLS)


class TextFormatter(logging.Formatter):
    """The plain format, one line per message (tracebacks aside)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = one_line(record.message)
        return super().formatMessage(record)


class KeyValueFormatter(logging.Formatter):
    """`time=... level=... logger=... msg="..." event_id=...`, one line each."""

    def format(self, record: logging.LogRecord) -> str:
        parts = _entry(self, record)
        line = " ".join(f"{key}={_quote(value)}" for key, value in parts.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, msg, then the stable fields
    that are set (always under the same names), and `exc` for a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry = _entry(self, record)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def _entry(formatter: logging.Formatter, record: logging.LogRecord) -> dict[str, str]:
    """The fields both machine formats write, in their order."""
    entry = {
        "time": formatter.formatTime(record),
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": one_line(record.getMessage()),
    }
    for name in STABLE_FIELDS:
        value = getattr(record, name, None)
        if value is not None:
            entry[name] = str(value)
    return entry


def _quote(value: str) -> str:
    if value and not any(c in value for c in ' "='):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


_settings = ("INFO", "text")


def logging_settings() -> tuple[str, str]:
    """The level and format configure_logging was last given, for a process
    that should log the same way."""
    return _settings


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    global _settings  # one logging setup per process
    _settings = (level, fmt)
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "keyvalue":
        handler.setFormatter(KeyValueFormatter())
    elif fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request URL at INFO, and a Slack webhook URL is a secret.
    logging.getLogger("httpx").setLevel(logging.WARNING)
