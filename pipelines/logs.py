"""structlog as JSON lines on stderr, for the long-running services (one event per line, machine-
readable, with ISO timestamps and levels). Libraries only call structlog.get_logger(); the process
entry point decides the rendering, so tests and embedding applications keep their own setup.
Records of stdlib loggers (kafka-python, urllib3, clickhouse-connect) are rendered as JSON too."""

from __future__ import annotations

import logging
import sys

import structlog


def configure_json_logging(level: str = "INFO") -> None:
    lvl = getattr(logging, level.upper(), logging.INFO)
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, structlog.processors.JSONRenderer()],
        foreign_pre_chain=shared,
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(lvl)
    # the client libraries are chatty at INFO (every reconnect); keep their warnings and errors
    for noisy in ("kafka", "urllib3", "clickhouse_connect"):
        logging.getLogger(noisy).setLevel(max(lvl, logging.WARNING))
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.stdlib.BoundLogger,
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
