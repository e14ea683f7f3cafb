"""The status page, /status.json and `wrapupd status`: rendering, escaping, and real HTTP on loopback."""

from __future__ import annotations

import asyncio
import io
import json
import re
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import replace
from html.parser import HTMLParser

import pytest
from prometheus_client import CollectorRegistry

from status_samples import (
    CHANNEL_ID,
    CONNECT_URI,
    HOSTILE_QUEUE,
    FixedStatus,
    sample_report,
    troubled_report,
)
from wrapupd.health import HealthServer
from wrapupd.metrics import Metrics
from wrapupd.status_page import CONTENT_SECURITY_POLICY, render_page
from wrapupd.status_report import (
    Check,
    Problem,
    ProblemKind,
    RateBudget,
    checks_from_readiness,
    report_from_json,
    report_to_json,
)
from wrapupd.status_terminal import (
    EX_NOT_READY,
    EX_OK,
    EX_UNAVAILABLE,
    fetch_report,
    render_report,
    run_status,
    status_url,
)


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text, as a browser's parser would see them."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


# --- the page, rendered ----------------------------------------------------------------------


def test_values_from_the_platform_are_escaped() -> None:
    page = render_page(sample_report(), refresh_seconds=10)
    parsed = Elements(page)
    assert [tag for tag, _ in parsed.tags if tag in ("script", "b")] == []
    assert HOSTILE_QUEUE in "".join(parsed.text)  # shown, as text
    assert "Callback <b>" in "".join(parsed.text)


def test_no_external_asset_and_no_script() -> None:
    page = render_page(troubled_report(), refresh_seconds=10)
    tags = Elements(page).tags
    assert not [t for t, a in tags if t in ("script", "link", "img", "iframe", "object", "form")]
    assert not [a for _, a in tags if any(k in a for k in ("src", "href", "style", "onload"))]
    assert "http://" not in page and "https://" not in page


def test_the_page_refreshes_itself() -> None:
    (refresh,) = [
        a
        for t, a in Elements(render_page(sample_report(), refresh_seconds=7)).tags
        if a.get("http-equiv") == "refresh"
    ]
    assert refresh["content"] == "7"


def test_the_csp_allows_exactly_the_pages_own_stylesheet() -> None:
    import base64
    import hashlib

    page = render_page(sample_report(), refresh_seconds=10)
    (style,) = re.findall(r"<style>(.*?)</style>", page, re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY


def test_readiness_problems_and_their_remedies_are_shown() -> None:
    text = " ".join(Elements(render_page(troubled_report(), refresh_seconds=10)).text)
    assert "NOT READY" in text
    assert "Needs attention (2)" in text
    assert "code not assigned" in text and "Retention" in text
    assert "assign the wrap-up code to the queue" in text
    assert "missing permissions" in text and "routing:queue:view" in text


def test_a_healthy_report_shows_no_problem_section() -> None:
    page = render_page(sample_report(), refresh_seconds=10)
    assert "READY" in page and "NOT READY" not in page
    assert 'id="problems"' not in page


def test_ages_are_relative_to_the_report_so_a_report_renders_the_same_every_time() -> None:
    report = sample_report()
    page = render_page(report, refresh_seconds=10)
    assert page == render_page(report, refresh_seconds=10)
    assert "12 s ago" in page and "2 h ago" in page and "never" in page


def test_the_channel_is_named_by_its_tag_only() -> None:
    page = render_page(sample_report(), refresh_seconds=10)
    assert CHANNEL_ID not in page and CONNECT_URI not in page
    assert re.search(r"channel#[0-9a-f]{6}", page)


def test_a_pause_after_a_429_is_shown() -> None:
    report = sample_report(budget=RateBudget(270, 270, waiting=4, paused_for_s=31))
    text = " ".join(Elements(render_page(report, refresh_seconds=10)).text)
    assert "paused 31 s after a 429" in text
    assert "4 waiting" in text


# --- /status.json ----------------------------------------------------------------------------


def test_json_round_trips_to_the_same_report() -> None:
    for report in (sample_report(), troubled_report()):
        document = json.loads(json.dumps(report_to_json(report)))
        assert report_from_json(document) == report


def test_json_names_readiness_and_each_problems_remedy() -> None:
    document = report_to_json(troubled_report())
    assert document["ready"] is False
    assert document["problems"][0]["kind"] == "code_not_assigned"
    assert document["problems"][0]["remedy"].startswith("assign the wrap-up code")
    assert document["generated_at"] == "2026-03-02T14:30:00Z"


@pytest.mark.parametrize("document", [[], {"schema": 99}, {"schema": 1, "version": "x"}, "text"])
def test_something_else_is_not_taken_for_a_report(document: object) -> None:
    with pytest.raises(ValueError):
        report_from_json(document)


# --- the terminal ----------------------------------------------------------------------------


def test_terminal_tables_show_the_same_facts() -> None:
    text = render_report(troubled_report())
    assert text.startswith("wrapupd 0.1.0: NOT READY")
    assert "NEEDS ATTENTION (2)" in text
    assert "code_not_assigned: Retention" in text
    assert re.search(r"Support\s+No code selected\s+30 s\s+3\s+128\s+12 s ago", text)
    assert "42 of 270 requests in the last minute" in text
    assert CHANNEL_ID not in text


def test_terminal_output_carries_no_control_characters() -> None:
    report = sample_report(problems=(Problem(ProblemKind.SWEEP_STALLED, "\x1b[2Jreconciler\x07"),))
    text = render_report(report)
    assert "\x1b" not in text and "\x07" not in text
    assert "?[2Jreconciler?" in text


def test_status_url_for_a_listen_address() -> None:
    assert status_url("127.0.0.1", 9464) == "http://127.0.0.1:9464/status.json"
    assert status_url("0.0.0.0", 9464) == "http://127.0.0.1:9464/status.json"
    assert status_url("::", 9464) == "http://[::1]:9464/status.json"
    assert status_url("::1", 1) == "http://[::1]:1/status.json"


# --- over real HTTP --------------------------------------------------------------------------


@pytest.fixture
async def served() -> AsyncIterator[tuple[FixedStatus, str]]:
    source = FixedStatus(sample_report())
    health = HealthServer(
        "127.0.0.1", 0, readiness=dict, metrics=Metrics(CollectorRegistry()), status=source
    )
    host, port = await health.start()
    yield source, f"http://{host}:{port}"
    await health.stop()


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, dict(response.headers), response.read()


async def test_the_page_is_served_at_the_root_with_its_policy(
    served: tuple[FixedStatus, str],
) -> None:
    _, base = served
    status, headers, body = await asyncio.to_thread(_get, base + "/")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert headers["Cache-Control"] == "no-store"
    assert b"Support" in body


async def test_each_load_asks_for_a_fresh_report(served: tuple[FixedStatus, str]) -> None:
    source, base = served
    await asyncio.to_thread(_get, base + "/")
    source.report = troubled_report()
    _, _, body = await asyncio.to_thread(_get, base + "/status.json")
    assert json.loads(body)["ready"] is False
    assert source.asked == 2


async def test_wrapupd_status_reads_the_running_listener(served: tuple[FixedStatus, str]) -> None:
    source, base = served
    out, err = io.StringIO(), io.StringIO()
    assert await asyncio.to_thread(run_status, base, out=out, err=err) == EX_OK
    assert "wrapupd 0.1.0: READY" in out.getvalue()
    source.report = troubled_report()
    assert (
        await asyncio.to_thread(run_status, base + "/status.json", out=out, err=err) == EX_NOT_READY
    )
    assert err.getvalue() == ""


async def test_wrapupd_status_with_problems_but_ready_is_not_ok(
    served: tuple[FixedStatus, str],
) -> None:
    source, base = served
    source.report = sample_report(
        problems=(Problem(ProblemKind.LEDGER_UNAVAILABLE, "ledger", "disk full"),)
    )
    assert (await asyncio.to_thread(fetch_report, base)).ready
    assert (
        await asyncio.to_thread(run_status, base, out=io.StringIO(), err=io.StringIO())
        == EX_NOT_READY
    )


async def test_wrapupd_status_unreachable_is_69() -> None:
    health = HealthServer("127.0.0.1", 0, readiness=dict, metrics=Metrics(CollectorRegistry()))
    host, port = await health.start()
    await health.stop()  # the port is free again: nothing listens there
    err = io.StringIO()
    code = await asyncio.to_thread(
        run_status, f"http://{host}:{port}", out=io.StringIO(), err=err, timeout=2
    )
    assert code == EX_UNAVAILABLE
    assert "unreachable" in err.getvalue()


async def test_wrapupd_status_against_a_listener_without_a_page_is_69() -> None:
    health = HealthServer("127.0.0.1", 0, readiness=dict, metrics=Metrics(CollectorRegistry()))
    host, port = await health.start()
    try:
        err = io.StringIO()
        code = await asyncio.to_thread(
            run_status, f"http://{host}:{port}", out=io.StringIO(), err=err
        )
        assert code == EX_UNAVAILABLE
        assert "answered 404" in err.getvalue()
    finally:
        await health.stop()


async def test_a_failing_report_is_500_and_the_probes_live_on() -> None:
    class Broken:
        async def status_report(self) -> object:
            raise RuntimeError("ledger closed")

    health = HealthServer(
        "127.0.0.1",
        0,
        readiness=dict,
        metrics=Metrics(CollectorRegistry()),
        status=Broken(),  # type: ignore[arg-type]
    )
    host, port = await health.start()
    try:
        with pytest.raises(urllib.error.HTTPError) as raised:
            await asyncio.to_thread(_get, f"http://{host}:{port}/")
        assert raised.value.code == 500
        assert (await asyncio.to_thread(_get, f"http://{host}:{port}/livez"))[0] == 200
    finally:
        await health.stop()


def test_the_report_is_ready_exactly_when_every_check_passes() -> None:
    report = sample_report()
    assert report.ready
    assert not replace(report, checks=(*report.checks, replace(report.checks[0], ok=False))).ready


def test_checks_come_from_the_same_readiness_as_readyz() -> None:
    readiness = {"token": (True, ""), "socket": (False, "disconnected")}
    checks = checks_from_readiness(readiness)
    assert checks == (Check("token", True, ""), Check("socket", False, "disconnected"))
    assert not sample_report(checks=checks).ready


async def test_a_zero_refresh_does_not_reload_the_page_in_a_loop() -> None:
    health = HealthServer(
        "127.0.0.1",
        0,
        readiness=dict,
        metrics=Metrics(CollectorRegistry()),
        status=FixedStatus(sample_report()),
        refresh_seconds=0,
    )
    host, port = await health.start()
    try:
        _, _, body = await asyncio.to_thread(_get, f"http://{host}:{port}/")
        assert b'<meta http-equiv="refresh" content="1">' in body
    finally:
        await health.stop()
