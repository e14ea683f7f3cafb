"""Logging: structlog JSON lines (or console rendering), with secrets scrubbed from every event.

One event per line, keys ``timestamp`` (ISO 8601 UTC), ``level``, ``event`` and whatever the code
bound (conversation, participant, queue). The standard library's loggers (the SDK, urllib3,
asyncio, ``warnings``) are routed through the same processors, so a library warning is a JSON line
too and is scrubbed like everything else.

Redaction runs last before rendering, after exceptions are formatted, so a traceback that quotes a
request header is scrubbed as well. It replaces every registered secret (the client secret at
start, each access token as :func:`add_secret` learns it), any ``Bearer …`` credential and any
``access_token`` value, in strings nested at any depth.

Loggers are not cached on first use: tests reconfigure logging (and ``capture_logs`` swaps the
processors), and a cached logger would keep writing to the old configuration.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
from collections import deque
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

__all__ = [
    "REDACTED",
    "Redactor",
    "add_secret",
    "adopt_library_logger",
    "channel_tag",
    "configure_logging",
    "resolve_format",
]

REDACTED = "[redacted]"

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}

# Values under these keys are credentials whatever they look like.
SENSITIVE_KEYS = frozenset(
    {
        "access_token",
        "authorization",
        "client_secret",
        "password",
        "refresh_token",
        "secret",
        "token",
    }
)

# Shorter "secrets" would shred ordinary words in every line; real secrets and tokens are long.
MIN_SECRET_LENGTH = 6

# Access tokens rotate (daily by default, every few minutes on a short-lived client): remember the
# recent ones only, so a daemon that runs for months does not grow an ever longer pattern.
MAX_ISSUED_TOKENS = 16

_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9\-._~+/]+=*")
_ACCESS_TOKEN = re.compile(
    r"""(?ix)
    (["']?access_token["']?      # the key, bare or quoted (JSON, repr, form, query string)
     \s*[:=]\s*["']?)
    [^"'&\s,;}\]]+               # the value, up to a delimiter
    """
)


def channel_tag(channel_id: str) -> str:
    """``channel#1a2b3c``: a short, stable, one-way name for a notification channel.

    The channel id is a credential (its connectUri lets anyone read the watched queues'
    conversations), so logs, the status page and errors name a channel by this tag instead. Three
    bytes of a hash tell a handful of live channels apart and reveal nothing usable of the id.
    """
    return "channel#" + hashlib.blake2b(channel_id.encode(), digest_size=3).hexdigest()


class Redactor:
    """A structlog processor that scrubs credentials from every value of an event."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._configured: set[str] = set()
        self._issued: deque[str] = deque(maxlen=MAX_ISSUED_TOKENS)
        self._pattern: re.Pattern[str] | None = None
        for secret in secrets:
            self.add(secret, permanent=True)

    def add(self, secret: str, *, permanent: bool = False) -> None:
        """Scrub ``secret`` from now on. Configured secrets stay; issued tokens age out."""
        if len(secret) < MIN_SECRET_LENGTH or secret in self._configured or secret in self._issued:
            return
        if permanent:
            self._configured.add(secret)
        else:
            self._issued.append(secret)
        self._compile()

    def _compile(self) -> None:
        # Longest first, so a secret that contains another is replaced whole.
        known = sorted({*self._configured, *self._issued}, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, known))) if known else None

    def issued_tokens(self) -> tuple[str, ...]:
        return tuple(self._issued)

    def scrub_text(self, text: str) -> str:
        if self._pattern is not None:
            text = self._pattern.sub(REDACTED, text)
        text = _BEARER.sub(r"\g<1>" + REDACTED, text)
        return _ACCESS_TOKEN.sub(r"\g<1>" + REDACTED, text)

    def scrub(self, value: Any) -> Any:
        """``value`` with credentials replaced; containers are rebuilt, other objects stringified.

        Arbitrary objects (exceptions, SDK models) are turned into text here, because their
        ``str`` is what would otherwise carry a secret past the redaction into the renderer.
        """
        if isinstance(value, str):
            return self.scrub_text(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, Mapping):
            return {k: self._scrub_item(k, v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.scrub(item) for item in value]
        if isinstance(value, datetime | date):
            return value.isoformat()
        return self.scrub_text(str(value))

    def _scrub_item(self, key: Any, value: Any) -> Any:
        if isinstance(key, str) and key.lower() in SENSITIVE_KEYS and value is not None:
            return REDACTED
        return self.scrub(value)

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        return {key: self._scrub_item(key, value) for key, value in event_dict.items()}


# The process-wide redactor: configure_logging replaces its configured secrets, add_secret feeds it.
_redactor = Redactor()


def add_secret(value: str) -> None:
    """Register a credential (e.g. a freshly issued access token) to be scrubbed from all logs."""
    _redactor.add(value)


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
    with :func:`add_secret` are kept.
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


def _renewed_redactor(secrets: Iterable[str]) -> Redactor:
    renewed = Redactor(secrets)
    for token in _redactor.issued_tokens():
        renewed.add(token)
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
