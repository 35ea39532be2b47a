"""Log set-up: plain lines for people, or key=value lines for machines."""

from __future__ import annotations

import logging
import sys

STABLE_FIELDS = ("event_id", "rule_id", "endpoint", "kind")
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class KeyValueFormatter(logging.Formatter):
    """`time=... level=... logger=... msg="..." event_id=...`, one line each."""

    def format(self, record: logging.LogRecord) -> str:
        parts = {
            "time": self.formatTime(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in STABLE_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                parts[name] = str(value)
        line = " ".join(f"{key}={_quote(value)}" for key, value in parts.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _quote(value: str) -> str:
    if value and not any(c in value for c in ' "='):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "keyvalue":
        handler.setFormatter(KeyValueFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request URL at INFO, and a Slack webhook URL is a secret.
    logging.getLogger("httpx").setLevel(logging.WARNING)
