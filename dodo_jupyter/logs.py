"""Where dodo's log lines go: through the host application's handlers, in its format.

dodo's modules log to ``logging.getLogger("dodo_jupyter.<module>")``. A Jupyter server
writes its own lines through the handler traitlets builds for ``ServerApp.log``
(``[I 2026-11-26 18:00:00.123 ServerApp] …``: level, timestamp, logger name; from
``ServerApp.log_format``, ``log_datefmt`` and ``_log_formatter_cls``) and stops them
there (``propagate = False``); nothing is configured at the root. Left alone, dodo's
records would reach only Python's last-resort handler: warnings and errors as bare
messages without time or level, and INFO never.

:func:`join_app_log` attaches the application's handlers to the ``dodo_jupyter`` logger
and gives it the application's level, so dodo's lines look like Jupyter's, INFO shows at
Jupyter's default level, and ``--log-level``/``--debug`` apply to them too. Records still
propagate to the root (a deployment's own logging configuration, pytest's ``caplog``).
:func:`leave_app_log` undoes it when the extension stops.
"""

from __future__ import annotations

import logging

__all__ = ["DODO_LOGGER", "join_app_log", "leave_app_log", "shown_level"]

#: The logger every dodo module logs below.
DODO_LOGGER = "dodo_jupyter"


def shown_level(logger: logging.Logger) -> int:
    """The lowest level at which a record of ``logger`` is written anywhere: its own
    level, and its handlers' (and those of the loggers it propagates to).

    traitlets gives an application's logger the level DEBUG and its handler the
    application's ``log_level``, so ``logger.isEnabledFor(DEBUG)`` holds even where
    debug lines are never shown."""
    handlers: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        handlers += current.handlers
        current = current.parent if current.propagate else None
    if not handlers:  # Python's last resort writes warnings and worse
        handlers = [logging.lastResort] if logging.lastResort is not None else []
    lowest = min((h.level for h in handlers), default=logging.CRITICAL + 1)
    return max(logger.getEffectiveLevel(), lowest)


def join_app_log(app_log: logging.Logger, name: str = DODO_LOGGER) -> logging.Logger:
    """Send the records of logger ``name`` (default ``dodo_jupyter``) through
    ``app_log``'s handlers, at the level ``app_log`` shows (:func:`shown_level`: no
    debug record is made for nothing); returns that logger."""
    logger = logging.getLogger(name)
    for handler in app_log.handlers:
        if handler not in logger.handlers:
            logger.addHandler(handler)
    logger.setLevel(shown_level(app_log))
    return logger


def leave_app_log(app_log: logging.Logger, name: str = DODO_LOGGER) -> None:
    """Undo :func:`join_app_log`: take ``app_log``'s handlers off logger ``name`` and
    give it back the level of its parents."""
    logger = logging.getLogger(name)
    for handler in app_log.handlers:
        logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)
