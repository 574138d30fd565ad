"""
Logging: structlog rendering JSON lines through the standard library.

Azure Functions forwards what reaches stdlib `logging` (its worker owns the root handler), and a
structlog setup that prints on its own is lost there (hynek/structlog#575). So structlog renders each
event to one JSON string and hands it to a stdlib logger; the Functions host forwards it, and the
local CLI adds a stderr handler. Keys that could carry credentials are redacted before rendering.

structlog is imported when a logger is first used or logging is configured, not when a module asks
for its logger: the laptop triage logs nothing unless asked (`--workspace`), and the import is a
tenth of its start-up.
"""

from __future__ import annotations

import logging
import re
from collections.abc import MutableMapping
from typing import Any, TextIO

#: Every logger of the product lives under this name, so one handler serves the CLI.
ROOT_LOGGER = "replay"

_SECRET_KEY = re.compile(r"token|secret|password|authorization|credential|signature|(^|_)key$|cookie", re.IGNORECASE)
_BEARER = re.compile(r"Bearer\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)

_configured = False


def redact_secrets(_logger: object, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Replace values of credential-looking keys, and bearer tokens inside any string value."""
    for key, value in list(event.items()):
        if _SECRET_KEY.search(key):
            event[key] = "[redacted]"
        elif isinstance(value, str) and "bearer" in value.lower():
            event[key] = _BEARER.sub("Bearer [redacted]", value)
    return event


def configure_logging(*, stream: TextIO | None = None, level: int = logging.INFO) -> None:
    """
    Configure structlog once (idempotent); with `stream`, also print the JSON lines there.

    The Function App calls it without a stream (the worker's handler forwards records); the CLI
    passes stderr so stdout stays the JSON document.
    """
    global _configured  # noqa: PLW0603 - structlog's configuration is process-global by design
    import structlog

    if not _configured:
        structlog.configure(
            processors=[
                structlog.contextvars.merge_contextvars,
                structlog.stdlib.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                redact_secrets,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(sort_keys=True),
            ],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.make_filtering_bound_logger(level),
            cache_logger_on_first_use=True,
        )
        _configured = True
    root = logging.getLogger(ROOT_LOGGER)
    root.setLevel(level)
    if stream is not None and not any(getattr(h, "stream", None) is stream for h in root.handlers):
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(handler)


def get_logger(name: str) -> Any:
    """A structlog logger under the product's logger namespace, made on its first use."""
    return _LazyLogger(f"{ROOT_LOGGER}.{name}")


class _LazyLogger:
    """Stands for `structlog.get_logger(name)` until a method is first asked for (see the module docstring)."""

    __slots__ = ("_logger", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, attribute: str) -> Any:
        if self._logger is None:
            import structlog

            self._logger = structlog.get_logger(self._name)
        return getattr(self._logger, attribute)
