"""Logging: one line per event, as text for people or JSON for log collectors."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import discord

# Attributes every LogRecord has; anything else was passed with `extra=` and is context.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def setup_logging(level: int, fmt: str) -> None:
    if fmt == "json":
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        root = logging.getLogger()
        root.handlers[:] = [handler]
        root.setLevel(level)
    else:
        # discord.py's start() leaves logging alone; this gives its logs and ours one format.
        discord.utils.setup_logging(level=level, root=True)
    logging.getLogger("discord.http").setLevel(max(level, logging.INFO))
