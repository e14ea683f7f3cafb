"""What never reaches a log line: credentials, and notification channel ids.

The :class:`Redactor` is a structlog processor (``wrapupd.logs`` installs it last before
rendering, after tracebacks are formatted). In every string of an event, at any depth, it replaces:

- every registered secret (the client secret; each access token as it is issued), in any letter case;
- ``Bearer …`` and ``Basic …`` credentials (a Basic header is base64 of ``id:secret``);
- an ``Authorization`` (or ``Proxy-Authorization``) header's value in text, whatever its scheme;
- the value of a credential field in JSON, a repr, a form body (also percent-encoded once more),
  a query string or a libpq DSN: ``access_token``, ``refresh_token``, ``id_token``,
  ``client_secret``, ``code_verifier``, ``password`` … in snake or camel case, any letter case;
- the password of a URL's userinfo (``postgresql://user:[redacted]@host/db``);
- the value under a credential key (``authorization``, ``clientSecret`` …) whatever it looks like.

Channel ids are credentials too: the connectUri lets anyone read the watched queues'
conversations and knock the daemon off its socket. A channel's id in a connectUri, a REST path, a
``v2.system.*.<id>`` topic or under a ``channel``/``channel_id``/``connect_uri`` key becomes
``channel#1a2b3c`` (:func:`channel_tag`), and an id once seen (or registered) is replaced wherever it
appears later, so logs still correlate one channel's lines without carrying it.
"""

from __future__ import annotations

import hashlib
import re
from collections import deque
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from structlog.typing import EventDict, WrappedLogger

REDACTED = "[redacted]"

# Keys compared with case, "_" and "-" removed: clientSecret, client_secret, Client-Secret.
SENSITIVE_KEYS = frozenset(
    {
        "accesstoken",
        "apikey",
        "authorization",
        "clientsecret",
        "codeverifier",
        "cookie",
        "idtoken",
        "passwd",
        "password",
        "proxyauthorization",
        "refreshtoken",
        "secret",
        "setcookie",
        "token",
    }
)
CHANNEL_KEYS = frozenset({"channel", "channelid", "connecturi"})

# Shorter "secrets" would shred ordinary words in every line; real secrets and tokens are long.
MIN_SECRET_LENGTH = 6

# Access tokens rotate (daily by default, every few minutes on a short-lived client) and channels
# with them: remember the recent ones only, so a daemon that runs for months keeps a short pattern.
MAX_ISSUED_TOKENS = 16
MAX_CHANNEL_IDS = 64

_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9\-._~+/]+=*")
# A Basic credential is base64: ask for a digit, "+", "/" or "=" so "basic authentication" stays.
_BASIC = re.compile(r"(?i)\b(basic\s+)(?=[A-Za-z0-9+/]*[0-9+/=])[A-Za-z0-9+/]{8,}={0,2}")
_CREDENTIAL_FIELD = re.compile(
    r"""(?ix)
    (?P<key>["']?\b(?:[a-z0-9]+[_-])*?
      (?:access[_-]?token|refresh[_-]?token|id[_-]?token|client[_-]?secret|code[_-]?verifier
        |password|passwd|pwd|api[_-]?key|secret)
     ["']?\s*(?:[:=]|%3d)\s*)
    (?P<value>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|(?:(?!%26)[^"'&\s,;}\]])+)
    """
)
# An Authorization header in text, whatever its scheme: a known scheme's name stays, the rest of
# the value goes (to its closing quote, or to the end of the line, a "," ";" "&" "}" or "]").
_AUTHORIZATION = re.compile(
    r"""(?ix)
    (?P<key>(?:["'](?:proxy[_-]?)?authorization["']\s*[:=,]|\b(?:proxy[_-]?)?authorization
      \s*(?:[:=]|%3d))[\ \t]*)
    (?P<quote>["'])?
    (?P<scheme>(?:bearer|basic|digest|negotiate|ntlm|ssws|token)(?:[\ \t]+|%20))?
    (?(quote)[^"'\r\n]+|[^"'\r\n,;&}\]]+)
    """
)
# Every key _CREDENTIAL_FIELD matches contains one of these (lower case).
_FIELD_WORDS = ("token", "secret", "verifier", "passw", "pwd", "api")
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s:/@\"'<>]+:)[^\s@/\"'<>]+(@)")

_ID = r"(?!channel\#)[A-Za-z0-9][A-Za-z0-9._~\-]*"
_CHANNEL_URI = re.compile(rf"(?i)\bwss?://[^\s/\"'<>]+/channels/(?P<id>{_ID})[^\s\"'<>,;)\]}}]*")
_CHANNEL_PATH = re.compile(rf"(?P<prefix>/channels/)(?P<id>{_ID})")
_SYSTEM_TOPIC = re.compile(rf"(?P<prefix>\bv2\.system\.[a-z_]+\.)(?P<id>{_ID})")
_TAG = re.compile(r"channel#[0-9a-f]{6}")


def channel_tag(channel_id: str) -> str:
    """``channel#1a2b3c``: a short, stable, one-way name for a notification channel.

    The channel id is a credential, so logs, the status page and errors name a channel by this
    tag instead. Three bytes of a hash tell a handful of live channels apart and reveal nothing
    usable of the id.
    """
    return "channel#" + hashlib.blake2b(channel_id.encode(), digest_size=3).hexdigest()


def _normal_key(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "")


def _literal_pattern(values: Iterable[str]) -> re.Pattern[str] | None:
    """Longest first, so a value that contains another is replaced whole; any letter case."""
    ordered = sorted(set(values), key=len, reverse=True)
    return re.compile("|".join(map(re.escape, ordered)), re.IGNORECASE) if ordered else None


class Redactor:
    """A structlog processor that scrubs credentials and channel ids from every value of an event."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._configured: set[str] = set()
        self._issued: deque[str] = deque(maxlen=MAX_ISSUED_TOKENS)
        self._channels: deque[str] = deque(maxlen=MAX_CHANNEL_IDS)
        self._secrets: re.Pattern[str] | None = None
        self._channel_ids: re.Pattern[str] | None = None
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
        self._secrets = _literal_pattern([*self._configured, *self._issued])

    def add_channel(self, channel_id: str) -> None:
        """Replace ``channel_id`` by its tag wherever it appears from now on."""
        if len(channel_id) < MIN_SECRET_LENGTH or channel_id in self._channels:
            return
        self._channels.append(channel_id)
        self._channel_ids = re.compile(
            "|".join(map(re.escape, sorted(self._channels, key=len, reverse=True)))
        )

    def issued_tokens(self) -> tuple[str, ...]:
        """The access tokens being scrubbed (so a new configuration keeps them)."""
        return tuple(self._issued)

    def channel_ids(self) -> tuple[str, ...]:
        """The channel ids being scrubbed (so a new configuration keeps them)."""
        return tuple(self._channels)

    def scrub_text(self, text: str) -> str:
        """``text`` with every credential replaced and every channel id turned into its tag."""
        if self._secrets is not None:
            text = self._secrets.sub(REDACTED, text)
        lower = text.lower()  # the patterns run only where their words occur: most text has none
        if "/channels/" in lower or "v2.system." in lower:
            text = self._tag_channel_references(text)
        if self._channel_ids is not None:
            text = self._channel_ids.sub(lambda m: channel_tag(m[0]), text)
        if "://" in lower and "@" in lower:
            text = _URL_PASSWORD.sub(r"\g<1>" + REDACTED + r"\g<2>", text)
        if "authorization" in lower:
            text = _AUTHORIZATION.sub(_redacted_authorization, text)
        if "bearer" in lower:
            text = _BEARER.sub(r"\g<1>" + REDACTED, text)
        if "basic" in lower:
            text = _BASIC.sub(r"\g<1>" + REDACTED, text)
        if any(word in lower for word in _FIELD_WORDS):
            text = _CREDENTIAL_FIELD.sub(_redacted_field, text)
        return text

    def _tag_channel_references(self, text: str) -> str:
        text = _CHANNEL_URI.sub(lambda m: self._tag(m["id"]), text)
        text = _CHANNEL_PATH.sub(lambda m: m["prefix"] + self._tag(m["id"]), text)
        return _SYSTEM_TOPIC.sub(lambda m: m["prefix"] + self._tag(m["id"]), text)

    def _tag(self, channel_id: str) -> str:
        """The tag, learning the id so a later bare mention is replaced too."""
        self.add_channel(channel_id)
        return channel_tag(channel_id)

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
        name = _normal_key(key) if isinstance(key, str) else ""
        if name in SENSITIVE_KEYS and value is not None:
            return REDACTED
        if name in CHANNEL_KEYS and isinstance(value, str):
            return self._channel_value(value)
        return self.scrub(value)

    def _channel_value(self, value: str) -> str:
        """A bare id becomes its tag; a URI or a tag is handled as text."""
        if _TAG.fullmatch(value) or "/" in value:
            return self.scrub_text(value)
        return self._tag(value)

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        return {key: self._scrub_item(key, value) for key, value in event_dict.items()}


def _redacted_field(match: re.Match[str]) -> str:
    """Keep the key and the quotes around the value; replace what is between them."""
    value = match["value"]
    quote = value[0] if value[0] in "\"'" else ""
    return f"{match['key']}{quote}{REDACTED}{quote}"


def _redacted_authorization(match: re.Match[str]) -> str:
    """Keep the key, the opening quote and a known scheme's name; replace the credential."""
    return f"{match['key']}{match['quote'] or ''}{match['scheme'] or ''}{REDACTED}"
