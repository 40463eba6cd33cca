"""JSON logs: one object a line (time, level, logger, message, and the request's fields
for access logs), for uvicorn's loggers and SIA's."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any


class JsonFormatter(logging.Formatter):
    """A log record as one JSON object."""

    def format(self, record: logging.LogRecord) -> str:
        """time, level, logger, message; for uvicorn's access log the request too."""
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name,
        }
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) \
                and len(record.args) == 5:
            client, method, path, version, status = record.args
            out.update(message="request", client=client, method=method, path=path,
                       http_version=version, status=status)
        else:
            out["message"] = record.getMessage()
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def log_config(level: str = "info") -> dict[str, Any]:
    """A logging.config dict for uvicorn: JSON to stderr for every logger."""
    handler = {"class": "logging.StreamHandler", "formatter": "json",
               "stream": "ext://sys.stderr"}
    return {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"json": {"()": "sia.service.logs.JsonFormatter"}},
        "handlers": {"json": handler},
        "loggers": {name: {"handlers": ["json"], "level": level.upper(), "propagate": False}
                    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "sia")},
    }
