"""structlog as JSON lines on stderr, for the long-running services (one event per line, machine-
readable, with ISO timestamps and levels). Libraries only call structlog.get_logger(); the process
entry point decides the rendering, so tests and embedding applications keep their own setup."""

from __future__ import annotations

import logging
import sys

import structlog


def configure_json_logging(level: str = "INFO") -> None:
    lvl = getattr(logging, level.upper(), logging.INFO)
    logging.basicConfig(stream=sys.stderr, level=max(lvl, logging.WARNING), format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
