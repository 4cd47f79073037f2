"""Logging for the library: one stderr handler on the "runner" logger, ids in every record.

Records carry the ALT and LAST ids they concern (pass extra={"alt_id": ..., "last_id": ...});
a filter fills "-" where a record has none, so the format never fails.
"""
from __future__ import annotations

import logging
import sys

TRACE = 5
logging.addLevelName(TRACE, "TRACE")
FORMAT = "%(asctime)s librunner %(levelname)s [alt=%(alt_id)s last=%(last_id)s] %(message)s"


class _WithIds(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "alt_id"):
            record.alt_id = "-"
        if not hasattr(record, "last_id"):
            record.last_id = "-"
        return True


class _RunnerHandler(logging.StreamHandler):
    """Marks the handler this module installed, so configure() never adds a second one."""


def configure(level: int) -> logging.Logger:
    logger = logging.getLogger("runner")
    logger.setLevel(level)
    if not any(isinstance(h, _RunnerHandler) for h in logger.handlers):
        handler = _RunnerHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.addFilter(_WithIds())
        logger.addHandler(handler)
        logger.propagate = False
    return logger
