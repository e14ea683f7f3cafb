"""Logging: structlog JSON lines (or console rendering), with secrets scrubbed from every event.

One event per line, keys ``timestamp`` (ISO 8601 UTC), ``level``, ``event`` and whatever the code
bound (conversation, participant, queue). The standard library's loggers (the SDK, urllib3,
asyncio, ``warnings``) are routed through the same processors, so a library warning is a JSON line
too and is scrubbed like everything else.

Redaction (:mod:`wrapupd.redaction`) runs last before rendering, after exceptions are formatted,
so a traceback that quotes a request header is scrubbed as well: registered secrets (the client
secret at start, each access token as :func:`add_secret` learns it) in any letter case, Bearer and
Basic credentials, credential fields of forms, JSON and DSNs, and notification channel ids
(:func:`add_channel_id`, and any seen in a connectUri), which become :func:`channel_tag`.

Loggers are not cached on first use: tests reconfigure logging (and ``capture_logs`` swaps the
processors), and a cached logger would keep writing to the old configuration.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from wrapupd.redaction import MAX_ISSUED_TOKENS, REDACTED, Redactor, channel_tag

__all__ = [
    "MAX_ISSUED_TOKENS",
    "REDACTED",
    "LogOptions",
    "Redactor",
    "add_channel_id",
    "add_secret",
    "adopt_library_logger",
    "channel_tag",
    "configure_logging",
    "resolve_format",
    "set_level",
]

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


@dataclass(frozen=True, slots=True)
class LogOptions:
    """The ``[log]`` settings as plain values: what a reload compares (only the level is live)."""

    level: str = "info"
    format: str = "auto"


# The process-wide redactor: configure_logging replaces its configured secrets, add_secret feeds it.
_redactor = Redactor()


def add_secret(value: str) -> None:
    """Register a credential (e.g. a freshly issued access token) to be scrubbed from all logs."""
    _redactor.add(value)


def add_channel_id(channel_id: str) -> None:
    """Register a notification channel id (when it is created): logs show only its tag from now on."""
    _redactor.add_channel(channel_id)


def resolve_format(fmt: str, stream: TextIO) -> str:
    """``auto`` means console for a person at a terminal, JSON for journald and collectors."""
    if fmt == "auto":
        return "console" if _isatty(stream) else "json"
    if fmt not in ("json", "console"):
        raise ValueError(f"log format must be json, console or auto, got {fmt!r}")
    return fmt


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or stream-like objects
        return False


def _level_number(level: str) -> int:
    try:
        return LEVELS[level.lower()]
    except KeyError:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, got {level!r}") from None


def configure_logging(
    *,
    fmt: str,
    level: str,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Set up structlog and the standard library to write one line per event to ``stream``.

    ``stream`` defaults to the current ``sys.stdout`` (systemd hands it to journald). Calling it
    again replaces the previous configuration, including the configured secrets; tokens learnt
    with :func:`add_secret` and channel ids with :func:`add_channel_id` are kept.
    """
    global _redactor
    out = stream if stream is not None else sys.stdout
    renderer_name = resolve_format(fmt, out)
    threshold = _level_number(level)
    _redactor = _renewed_redactor(secrets)
    renderer = _renderer(renderer_name, out)
    structlog.configure(
        processors=[
            *_shared_processors(),
            structlog.processors.format_exc_info,
            _redact,
            _leading_keys,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=structlog.WriteLoggerFactory(file=out),
        context_class=dict,
        cache_logger_on_first_use=False,
    )
    _route_stdlib(out, threshold, renderer)


def set_level(level: str) -> None:
    """Change the level of the running configuration (a reload): formats, stream and redaction
    stay as they are; the standard library's records follow the same threshold."""
    threshold = _level_number(level)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(threshold))
    logging.getLogger().setLevel(threshold)


def _renewed_redactor(secrets: Iterable[str]) -> Redactor:
    renewed = Redactor(secrets)
    for token in _redactor.issued_tokens():
        renewed.add(token)
    for channel_id in _redactor.channel_ids():
        renewed.add_channel(channel_id)
    return renewed


def _redact(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Indirection so add_secret reaches the redactor of the current configuration."""
    return _redactor(logger, method_name, event_dict)


def _leading_keys(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """timestamp, level, event first: a line reads left to right for a person, too."""
    ordered: EventDict = {}
    for key in ("timestamp", "level", "event"):
        if key in event_dict:
            ordered[key] = event_dict.pop(key)
    if isinstance(ordered.get("event"), str):
        ordered["event"] = ordered["event"].rstrip()  # warnings arrive with a trailing newline
    ordered.update(event_dict)
    return ordered


def _shared_processors() -> list[Processor]:
    """What every event gets, whether it came from structlog or the standard library."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    ]


def _renderer(name: str, stream: TextIO) -> Processor:
    if name == "json":
        return structlog.processors.JSONRenderer()
    return structlog.dev.ConsoleRenderer(colors=_isatty(stream))


class _WrapupdHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Ours, so a second configure_logging replaces it and leaves other handlers (pytest's) be."""


def _route_stdlib(stream: TextIO, threshold: int, renderer: Processor) -> None:
    """Send the standard library's records (and ``warnings``) through the same processors."""
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared_processors(), structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _redact,
            _leading_keys,
            renderer,
        ],
    )
    handler = _WrapupdHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _WrapupdHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(threshold)
    logging.captureWarnings(True)


def adopt_library_logger(name: str) -> None:
    """Undo a library's own logging set-up so its records reach our (scrubbing) handler.

    The Genesys SDK mutes ``urllib3`` when its Configuration is created (level above CRITICAL,
    ``propagate = False``) and gives its own logger a plain stderr handler. Call this after that
    happens for each logger whose records should become JSON lines like everything else.
    """
    logger = logging.getLogger(name)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)
    logger.propagate = True
    logger.disabled = False
