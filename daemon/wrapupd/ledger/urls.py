"""Where a ledger lives: a PostgreSQL URL or a SQLite path, and a URL as it may be printed.

Apart from the driver (:mod:`wrapupd.ledger.postgres`), which only a PostgreSQL ledger imports: a
SQLite deployment never pays for loading psycopg.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SCHEMES = ("postgresql", "postgres")
_SECRET_PARAMS = frozenset({"password", "passfile"})


def is_postgres_url(location: str) -> bool:
    """True when ``location`` names a PostgreSQL server rather than a SQLite file."""
    return urlsplit(location).scheme in SCHEMES


def redact_url(url: str) -> str:
    """The URL as it may be printed: no password in the authority or the query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k not in _SECRET_PARAMS])
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
