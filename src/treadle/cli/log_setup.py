"""How every service command logs: one handler on stderr with Treadle's formatter.

``treadle scheduler``, ``worker``, ``beat``, ``api`` and ``flower`` call
:func:`setup_logging` (the first four through ``scheduler_cmd.configure_logging``) with
``TREADLE_LOG_LEVEL`` and ``TREADLE_LOG_FORMAT``: JSON lines, logfmt, or readable text,
``auto`` being text when stderr is a terminal and JSON otherwise (the schema is
:mod:`treadle.common.log_format`). ``treadle worker`` lets Celery set up its loggers,
then puts the same formatter on Celery's handlers (:func:`format_celery_handlers`).
"""

from __future__ import annotations

import logging
import sys
from typing import IO, Any

from treadle.common.log_format import LogFormat, LogFormatter


def resolved_format(name: str, stream: IO[str] | None = None) -> LogFormat:
    """``TREADLE_LOG_FORMAT`` as written to ``stream`` (stderr): ``auto`` is text on a
    terminal, JSON otherwise."""
    form = LogFormat(name.lower())
    if form is not LogFormat.AUTO:
        return form
    target = stream if stream is not None else sys.stderr
    try:
        interactive = target.isatty()
    except (AttributeError, ValueError):  # closed or not a file
        interactive = False
    return LogFormat.TEXT if interactive else LogFormat.JSON


def formatter_for(name: str, stream: IO[str] | None = None) -> LogFormatter:
    return LogFormatter(resolved_format(name, stream))


def setup_logging(level: str, log_format: str = "auto", stream: IO[str] | None = None) -> None:
    """Log records of ``level`` and above to ``stream`` (stderr), one line each, in
    ``log_format``; replaces the handlers the root logger had."""
    target = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(target)
    handler.setFormatter(formatter_for(log_format, target))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # warnings too become lines of the schema


def format_celery_handlers(log_format: str) -> None:
    """After Celery configured a worker's logging, its handlers write Treadle's lines
    (connected to ``after_setup_logger`` and ``after_setup_task_logger``)."""
    from celery.signals import after_setup_logger, after_setup_task_logger

    def reformat(logger: logging.Logger | None = None, **_kwargs: Any) -> None:
        if logger is None:
            return
        for handler in logger.handlers:
            stream = getattr(handler, "stream", None)
            handler.setFormatter(formatter_for(log_format, stream))

    after_setup_logger.connect(reformat, weak=False)
    after_setup_task_logger.connect(reformat, weak=False)
