"""Logging: one JSON line per event, console rendering, stdlib routing, and secrets scrubbed."""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import warnings
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from wrapupd import logs
from wrapupd.logs import (
    MAX_ISSUED_TOKENS,
    REDACTED,
    Redactor,
    add_channel_id,
    add_secret,
    channel_tag,
    configure_logging,
)

SECRET = "client-secret-0123456789"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.payload.signature"


# Every test: a fresh redactor, no handler or config left behind (tests/unit/conftest.py).
pytestmark = pytest.mark.usefixtures("clean_logging")


class Sink:
    """A StringIO whose lines come back parsed as JSON."""

    def __init__(self, tty: bool = False) -> None:
        self.stream = _TtyStringIO() if tty else io.StringIO()

    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text().splitlines()]


class _TtyStringIO(io.StringIO):
    def isatty(self) -> bool:
        return True


def json_sink(level: str = "info", secrets: tuple[str, ...] = (SECRET,)) -> Sink:
    sink = Sink()
    configure_logging(fmt="json", level=level, secrets=secrets, stream=sink.stream)
    return sink


# --- shape of a line --------------------------------------------------------------------------


def test_each_event_is_one_json_line_with_timestamp_level_event_first() -> None:
    sink = json_sink()
    structlog.get_logger().info("work_item_added", conversation="c-1", participant="p-1")
    (line,) = sink.lines()
    assert list(line)[:3] == ["timestamp", "level", "event"]
    assert line["level"] == "info"
    assert line["event"] == "work_item_added"
    assert (line["conversation"], line["participant"]) == ("c-1", "p-1")
    assert line["timestamp"].endswith("Z")
    stamp = datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 60


def test_bound_and_context_keys_are_included() -> None:
    sink = json_sink()
    structlog.contextvars.bind_contextvars(queue="q-1")
    structlog.get_logger().bind(conversation="c-1").warning("late")
    (line,) = sink.lines()
    assert (line["queue"], line["conversation"], line["level"]) == ("q-1", "c-1", "warning")


def test_events_below_the_level_are_dropped() -> None:
    sink = json_sink(level="warning")
    log = structlog.get_logger()
    log.debug("no")
    log.info("no")
    log.warning("yes")
    log.error("yes too")
    assert [line["event"] for line in sink.lines()] == ["yes", "yes too"]


def test_values_that_json_cannot_hold_are_written_as_text() -> None:
    sink = json_sink()
    when = datetime(2026, 1, 1, tzinfo=UTC)
    structlog.get_logger().info("odd", when=when, error=ValueError("bad value"), items=(1, "a"))
    (line,) = sink.lines()
    assert line["when"] == "2026-01-01T00:00:00+00:00"
    assert line["error"] == "bad value"
    assert line["items"] == [1, "a"]


def test_an_exception_is_rendered_into_the_line() -> None:
    sink = json_sink()
    try:
        raise RuntimeError("platform exploded")
    except RuntimeError:
        structlog.get_logger().exception("apply_failed")
    (line,) = sink.lines()
    assert line["level"] == "error"
    assert "RuntimeError: platform exploded" in line["exception"]
    assert "Traceback" in line["exception"]


def test_console_format_is_readable_text() -> None:
    sink = Sink()
    configure_logging(fmt="console", level="info", stream=sink.stream)
    structlog.get_logger().info("started", version="1.0")
    text = sink.text()
    assert "started" in text
    assert "version=1.0" in text
    assert not text.lstrip().startswith("{")


def test_auto_means_json_off_a_terminal_and_console_on_one() -> None:
    plain = Sink()
    configure_logging(fmt="auto", level="info", stream=plain.stream)
    structlog.get_logger().info("x")
    assert plain.lines()[0]["event"] == "x"

    terminal = Sink(tty=True)
    configure_logging(fmt="auto", level="info", stream=terminal.stream)
    structlog.get_logger().info("x")
    assert not terminal.text().startswith("{")


@pytest.mark.parametrize(("fmt", "level"), [("xml", "info"), ("json", "loud")])
def test_unknown_format_or_level_is_refused(fmt: str, level: str) -> None:
    with pytest.raises(ValueError):
        configure_logging(fmt=fmt, level=level, stream=io.StringIO())


def test_loggers_made_before_configuration_follow_it() -> None:
    early = structlog.get_logger("early")
    sink = json_sink()
    early.info("after")
    assert sink.lines()[0]["event"] == "after"


def test_capture_logs_works_after_configuration() -> None:
    json_sink()
    with capture_logs() as captured:
        structlog.get_logger().info("captured", conversation="c-1")
    assert captured == [{"event": "captured", "conversation": "c-1", "log_level": "info"}]


# --- the standard library ---------------------------------------------------------------------


def test_stdlib_records_become_json_lines_too() -> None:
    sink = json_sink()
    logging.getLogger("somelib.connectionpool").warning("Retrying %s", "(attempt 2)")
    (line,) = sink.lines()
    assert line["event"] == "Retrying (attempt 2)"
    assert line["level"] == "warning"
    assert line["logger"] == "somelib.connectionpool"
    assert "timestamp" in line


def test_a_library_logger_muted_by_the_sdk_can_be_adopted() -> None:
    muted = logging.getLogger("mutedlib")
    muted.setLevel(logging.CRITICAL + 1)  # what the Genesys SDK does to urllib3
    muted.propagate = False
    muted.addHandler(logging.NullHandler())
    sink = json_sink()
    muted.warning("lost")
    assert sink.lines() == []
    logs.adopt_library_logger("mutedlib")
    muted.warning("pool is full, discarding connection")
    assert [line["event"] for line in sink.lines()] == ["pool is full, discarding connection"]
    assert muted.handlers == []


def test_stdlib_records_respect_the_level() -> None:
    sink = json_sink(level="error")
    logging.getLogger("lib").warning("quiet")
    logging.getLogger("lib").error("loud")
    assert [line["event"] for line in sink.lines()] == ["loud"]


def test_python_warnings_are_logged_as_json() -> None:
    sink = json_sink()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("deprecated thing", DeprecationWarning, stacklevel=1)
    (line,) = sink.lines()
    assert line["logger"] == "py.warnings"
    assert "DeprecationWarning: deprecated thing" in line["event"]


def test_reconfiguring_replaces_our_handler_only() -> None:
    foreign = logging.NullHandler()
    logging.getLogger().addHandler(foreign)
    try:
        json_sink()
        sink = json_sink()
        logging.getLogger("lib").warning("once")
        assert len(sink.lines()) == 1
        assert foreign in logging.getLogger().handlers
    finally:
        logging.getLogger().removeHandler(foreign)


def test_stdlib_exceptions_are_scrubbed() -> None:
    sink = json_sink()
    try:
        raise ConnectionError(f"header was Authorization: Bearer {TOKEN}")
    except ConnectionError:
        logging.getLogger("sdk").exception("request failed")
    text = sink.text()
    assert TOKEN not in text
    assert "Bearer [redacted]" in sink.lines()[0]["exception"]


# --- redaction --------------------------------------------------------------------------------


def test_the_configured_secret_is_scrubbed_everywhere() -> None:
    sink = json_sink()
    log = structlog.get_logger()
    log.info(f"event text with {SECRET}")
    log.info("nested", body={"a": [f"x{SECRET}y", {"deep": (SECRET,)}]}, note=f"({SECRET})")
    text = sink.text()
    assert SECRET not in text
    first, second = sink.lines()
    assert first["event"] == f"event text with {REDACTED}"
    assert second["body"] == {"a": [f"x{REDACTED}y", {"deep": [REDACTED]}]}
    assert second["note"] == f"({REDACTED})"


def test_tokens_added_later_are_scrubbed() -> None:
    sink = json_sink()
    log = structlog.get_logger()
    add_secret(TOKEN)
    log.info("token_renewed", detail=f"got {TOKEN}")
    assert TOKEN not in sink.text()


def test_tokens_added_before_configuration_are_kept() -> None:
    add_secret(TOKEN)
    sink = json_sink()
    structlog.get_logger().info(TOKEN)
    assert sink.lines()[0]["event"] == REDACTED


def test_exception_text_is_scrubbed() -> None:
    sink = json_sink()
    add_secret(TOKEN)
    try:
        raise PermissionError(f"refused {TOKEN} and {SECRET}")
    except PermissionError:
        structlog.get_logger().exception("boom")
    assert TOKEN not in sink.text()
    assert SECRET not in sink.text()
    assert f"refused {REDACTED} and {REDACTED}" in sink.lines()[0]["exception"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc.DEF-123_x", f"Authorization: Bearer {REDACTED}"),
        ("authorization: bearer abc==", f"authorization: bearer {REDACTED}"),
        (
            '{"access_token": "abc123", "expires_in": 86400}',
            f'{{"access_token": "{REDACTED}", "expires_in": 86400}}',
        ),
        ("{'access_token': 'abc123'}", f"{{'access_token': '{REDACTED}'}}"),
        ("https://h/x?access_token=abc123&b=1", f"https://h/x?access_token={REDACTED}&b=1"),
        ("access_token=abc123", f"access_token={REDACTED}"),
        ("no credentials here", "no credentials here"),
    ],
)
def test_things_that_look_like_tokens_are_scrubbed(text: str, expected: str) -> None:
    assert Redactor().scrub_text(text) == expected


@pytest.mark.parametrize(
    "key", ["access_token", "Authorization", "client_secret", "token", "password"]
)
def test_values_under_credential_keys_are_scrubbed_whatever_they_look_like(key: str) -> None:
    sink = json_sink()
    structlog.get_logger().info("x", **{key: "short"}, nested={key: 12345})
    (line,) = sink.lines()
    assert line[key] == REDACTED
    assert line["nested"] == {key: REDACTED}


def test_a_none_under_a_credential_key_stays_none() -> None:
    assert Redactor().scrub({"token": None}) == {"token": None}


def test_very_short_secrets_are_not_used_to_shred_the_logs() -> None:
    redactor = Redactor(["ab", ""])
    assert redactor.scrub_text("about a cab") == "about a cab"


def test_a_secret_containing_another_is_replaced_whole() -> None:
    redactor = Redactor(["secret-abc", "secret-abc-and-more"])
    assert redactor.scrub_text("x secret-abc-and-more y") == f"x {REDACTED} y"


def test_secrets_with_regex_characters_are_matched_literally() -> None:
    redactor = Redactor(["a.b*c+d(e)"])
    assert redactor.scrub_text("see a.b*c+d(e) not aXbbbcd") == f"see {REDACTED} not aXbbbcd"


def test_only_recent_issued_tokens_are_remembered_but_configured_secrets_stay() -> None:
    redactor = Redactor([SECRET])
    tokens = [f"issued-token-{n:04d}" for n in range(MAX_ISSUED_TOKENS + 5)]
    for token in tokens:
        redactor.add(token)
    assert redactor.scrub_text(tokens[0]) == tokens[0]  # long expired, forgotten
    assert redactor.scrub_text(tokens[-1]) == REDACTED
    assert redactor.scrub_text(SECRET) == REDACTED
    assert len(redactor.issued_tokens()) == MAX_ISSUED_TOKENS


def test_reconfiguring_replaces_configured_secrets_but_keeps_issued_tokens() -> None:
    json_sink(secrets=("old-secret-value",))
    add_secret(TOKEN)
    sink = json_sink(secrets=("new-secret-value",))
    structlog.get_logger().info("x", a="old-secret-value", b="new-secret-value", c=TOKEN)
    (line,) = sink.lines()
    assert (line["a"], line["b"], line["c"]) == ("old-secret-value", REDACTED, REDACTED)


def test_console_output_is_scrubbed_too() -> None:
    sink = Sink()
    configure_logging(fmt="console", level="info", secrets=[SECRET], stream=sink.stream)
    structlog.get_logger().info("x", detail=SECRET, auth=f"Bearer {TOKEN}")
    assert SECRET not in sink.text()
    assert TOKEN not in sink.text()


def test_the_redactor_leaves_numbers_and_flags_alone() -> None:
    assert Redactor([SECRET]).scrub({"n": 3, "f": 1.5, "b": True, "none": None}) == {
        "n": 3,
        "f": 1.5,
        "b": True,
        "none": None,
    }


def test_no_line_ever_contains_a_raw_bearer_credential() -> None:
    sink = json_sink()
    log = structlog.get_logger()
    for n in range(20):
        log.info("req", headers={"X-Debug": f"Bearer tok{n}xyz"}, n=n)
    assert not re.search(r"Bearer tok\d+xyz", sink.text())


# --- issue 11 (12): Basic headers, form bodies, any letter case, DSNs ---------------------------

CLIENT_ID = "4a7c1e2b-9d3f-4e5a-8b6c-0d1e2f3a4b5c"
BASIC = base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        (f"Authorization: Basic {BASIC}", BASIC),
        (f"{{'authorization': 'basic {BASIC}'}}", BASIC),
        (f"AUTHORIZATION: BASIC {BASIC}", BASIC),
        (f"grant_type=client_credentials&client_secret={SECRET}&scope=x", SECRET),
        ("grant_type=refresh_token&refresh_token=rt-0123456789abcdef", "rt-0123456789abcdef"),
        ("code=abc&code_verifier=v3r1f13r-0123456789abcdef-x", "v3r1f13r-0123456789abcdef-x"),
        ("username=ops&password=hunter2-but-longer", "hunter2-but-longer"),
        ('{"refresh_token": "rt-0123456789abcdef", "expires_in": 3600}', "rt-0123456789abcdef"),
        ('{"refreshToken":"rt-0123456789abcdef"}', "rt-0123456789abcdef"),
        ('{"clientSecret": "cs-0123456789abcdef"}', "cs-0123456789abcdef"),
        ('{"client_secret": "cs-01234\\"56789abcdef"}', "56789abcdef"),
        ("CLIENT_SECRET=cs-0123456789abcdef", "cs-0123456789abcdef"),
        ("postgresql://wrapupd:pg-s3cret-pass@db.internal:5432/wrapupd", "pg-s3cret-pass"),
        ("postgres://wrapupd:pg-s3cret-pass@[::1]/wrapupd?sslmode=require", "pg-s3cret-pass"),
        ("host=db user=wrapupd password=pg-s3cret-pass dbname=wrapupd", "pg-s3cret-pass"),
        ("host=db password='pg s3cret pass' dbname=wrapupd", "s3cret"),
    ],
)
def test_credentials_in_headers_forms_json_and_dsns_are_scrubbed(text: str, leak: str) -> None:
    scrubbed = Redactor().scrub_text(text)
    assert leak not in scrubbed
    assert REDACTED in scrubbed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "grant_type=refresh_token&refresh_token=rt-1",
            f"grant_type=refresh_token&refresh_token={REDACTED}",
        ),
        (
            "postgresql://wrapupd:pw-123456@db:5432/x",
            f"postgresql://wrapupd:{REDACTED}@db:5432/x",
        ),
        ("password='a b c' dbname=x", f"password='{REDACTED}' dbname=x"),
        ("using basic authentication", "using basic authentication"),
        ("https://api.mypurecloud.com/api/v2/x", "https://api.mypurecloud.com/api/v2/x"),
    ],
)
def test_only_the_credential_is_replaced(text: str, expected: str) -> None:
    assert Redactor().scrub_text(text) == expected


def test_a_configured_secret_is_scrubbed_in_any_letter_case() -> None:
    redactor = Redactor([SECRET])
    for variant in (SECRET.upper(), SECRET.title(), SECRET.swapcase()):
        assert redactor.scrub_text(f"x {variant} y") == f"x {REDACTED} y"


@pytest.mark.parametrize(
    "key",
    ["refresh_token", "refreshToken", "clientSecret", "Client-Secret", "code_verifier", "PASSWORD"],
)
def test_values_under_credential_keys_in_any_spelling_are_scrubbed(key: str) -> None:
    assert Redactor().scrub({key: "short"}) == {key: REDACTED}


def test_the_whole_chain_scrubs_a_basic_header_and_a_form_body() -> None:
    sink = json_sink(secrets=())
    log = structlog.get_logger()
    log.info(
        "token_request", headers={"X-Forwarded": f"Basic {BASIC}"}, body=f"client_secret={SECRET}"
    )
    logging.getLogger("somelib.http").warning("POST /oauth/token body=client_secret=%s", SECRET)
    assert BASIC not in sink.text()
    assert SECRET not in sink.text()
    assert len(sink.lines()) == 2


# --- issue 11 (11): notification channel ids and connectUris ----------------------------------

CHANNEL = "streaming-0-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
CHANNEL_UUID = "0b9c3f4e-2a1d-4c5b-9e8f-7a6b5c4d3e2f"


def test_channel_tag_is_short_stable_and_one_way() -> None:
    tag = channel_tag(CHANNEL)
    assert re.fullmatch(r"channel#[0-9a-f]{6}", tag)
    assert tag == channel_tag(CHANNEL)
    assert tag != channel_tag(CHANNEL_UUID)
    assert CHANNEL not in tag


@pytest.mark.parametrize(
    ("text", "channel_id"),
    [
        (f"wss://streaming.mypurecloud.com/channels/{CHANNEL}", CHANNEL),
        (f"connecting to wss://streaming.euw2.pure.cloud/channels/{CHANNEL}?x=1 now", CHANNEL),
        (f"ws://127.0.0.1:41234/channels/{CHANNEL_UUID}", CHANNEL_UUID),
        (f"PUT https://api.x/api/v2/notifications/channels/{CHANNEL}/subscriptions", CHANNEL),
        (f"HEAD /api/v2/notifications/channels/{CHANNEL_UUID} 404", CHANNEL_UUID),
        (f"topic v2.system.no_longer_subscribed.{CHANNEL}", CHANNEL),
        (f"v2.system.token_revoked.{CHANNEL_UUID}", CHANNEL_UUID),
        (f"{{'connectUri': 'wss://streaming.mypurecloud.com/channels/{CHANNEL}'}}", CHANNEL),
    ],
)
def test_channel_ids_in_uris_paths_and_topics_become_their_tag(text: str, channel_id: str) -> None:
    scrubbed = Redactor().scrub_text(text)
    assert channel_id not in scrubbed
    assert channel_tag(channel_id) in scrubbed


def test_a_channel_id_seen_in_a_uri_is_scrubbed_wherever_it_appears_later() -> None:
    redactor = Redactor()
    redactor.scrub_text(f"wss://streaming.mypurecloud.com/channels/{CHANNEL}")
    assert (
        redactor.scrub_text(f"channel {CHANNEL} is gone")
        == f"channel {channel_tag(CHANNEL)} is gone"
    )


def test_a_registered_channel_id_is_scrubbed_anywhere() -> None:
    sink = json_sink()
    add_channel_id(CHANNEL_UUID)
    structlog.get_logger().warning("renew failed", error=f"channel {CHANNEL_UUID} refused")
    assert CHANNEL_UUID not in sink.text()
    assert channel_tag(CHANNEL_UUID) in sink.lines()[0]["error"]


@pytest.mark.parametrize("key", ["channel", "channel_id", "channelId", "connect_uri", "connectUri"])
def test_values_under_channel_keys_become_their_tag(key: str) -> None:
    value = CHANNEL if "uri" not in key.lower() else f"wss://streaming.x/channels/{CHANNEL}"
    assert Redactor().scrub({key: value}) == {key: channel_tag(CHANNEL)}


def test_tagging_is_idempotent() -> None:
    tag = channel_tag(CHANNEL)
    redactor = Redactor()
    assert redactor.scrub({"channel": tag}) == {"channel": tag}
    assert (
        redactor.scrub_text(f"/api/v2/notifications/channels/{tag}/subscriptions").count("#") == 1
    )


def test_the_subscriber_log_line_as_written_today_carries_no_channel_id() -> None:
    sink = json_sink()
    uri = f"wss://streaming.mypurecloud.com/channels/{CHANNEL}"
    log = structlog.get_logger()
    log.info("channel_subscribed", shard=0, channel=CHANNEL, topics=2)
    log.warning("channel_ended", shard=0, topic=f"v2.system.no_longer_subscribed.{CHANNEL}")
    logging.getLogger("somelib.ws").warning("connection to %s failed", uri)
    assert len(sink.lines()) == 3
    assert CHANNEL not in sink.text()
    assert sink.lines()[0]["channel"] == channel_tag(CHANNEL)
