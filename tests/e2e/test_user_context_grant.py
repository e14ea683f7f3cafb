"""The daemon on an org that refuses client-credentials wrap-up writes (``require_user_context``):
with the authorization-code grant it applies every code across access-token expiries and refresh
token rotations; a revoked refresh token holds its work (not ready, nothing lost) until a new
``wrapupd login``; with client credentials it holds the work and names the remedy."""

from __future__ import annotations

import asyncio
import urllib.request
from pathlib import Path

from e2e_harness import SUPPORT, UNIT, DaemonFactory, eventually, final_wrapup, rule
from test_commands import free_port
from test_login import LOGIN_CLIENT, fetch, login_config, printed_url, start_login

from genesys_emulator.testing import RunningEmulator
from groundtruth.score import score
from wrapupd.events import Outcome
from wrapupd.options import GrantOptions
from wrapupd.service import Daemon

TOKEN_LIFETIME = 60 * UNIT  # renewed every 30 units: several renewals (and rotations) per test


async def wrapupd_login(emulator: RunningEmulator, tmp_path: Path) -> str:
    """Run ``wrapupd login --no-browser`` and fetch its URL; the refresh token it stored."""
    config = login_config(emulator, tmp_path, free_port())
    process = await asyncio.to_thread(start_login, config)
    url = await asyncio.to_thread(printed_url, process)
    await asyncio.to_thread(fetch, url)
    out, err = await asyncio.to_thread(process.communicate, timeout=30)
    assert process.returncode == 0, err
    assert "logged in as wrapupd Integration" in out
    return (tmp_path / "state" / "refresh_token").read_text().strip()


async def start_with_user_grant(start_daemon: DaemonFactory, grace: float = 0.0) -> Daemon:
    client_id, secret = LOGIN_CLIENT
    return await start_daemon(
        (rule(SUPPORT, grace=grace),),
        client_id=client_id,
        client_secret=secret,
        grant=GrantOptions(kind="authorization_code"),
        listen=("127.0.0.1", 0),
    )


def status_page(daemon: Daemon) -> str:
    """The operator's status page as the health listener serves it."""
    assert daemon.status_address is not None
    host, port = daemon.status_address
    with urllib.request.urlopen(f"http://{host}:{port}/", timeout=5) as answer:
        return str(answer.read().decode())


def renewals(daemon: Daemon) -> int:
    return daemon.parts.client.token_generation


def held(daemon: Daemon, problem: str) -> float:
    registry = daemon.parts.metrics.registry
    return registry.get_sample_value("wrapupd_retries_total", {"reason": problem}) or 0.0


def clean_score(emulator: RunningEmulator, daemon: Daemon) -> None:
    watched = set(daemon.parts.codes.queue_ids)
    result = score(emulator.ground_truth(), emulator.calls(), watched)
    assert result.broken() == {}, result.offenders
    assert result.missed == result.doubled == result.overwritten == result.stray == 0


async def test_the_user_grant_applies_codes_across_token_expiry_and_refresh_token_rotation(
    emulator: RunningEmulator, start_daemon: DaemonFactory, tmp_path: Path
) -> None:
    emulator.reset(require_user_context=True, token_lifetime_s=TOKEN_LIFETIME)
    first = await wrapupd_login(emulator, tmp_path)
    daemon = await start_with_user_grant(start_daemon)
    conversations = []
    for turn in range(6):
        if turn == 3:  # the access token (and the channel) expire early: a 401, then a renewal
            emulator.fault(kind="expire_tokens")
        conversations.append(
            emulator.start_conversation(queue=SUPPORT, talk_s=UNIT, outcome="nothing")
        )
        start = renewals(daemon)
        await eventually(lambda s=start: renewals(daemon) > s, what="an access-token renewal")
    for conv in conversations:
        entry = await eventually(lambda c=conv: final_wrapup(emulator, c["conversationId"]))
        assert entry["wrapup"]["by"] == "api"
    stored = (tmp_path / "state" / "refresh_token").read_text().strip()
    assert stored != first, "the rotated refresh token was saved"
    assert daemon.parts.problems.check()[0]
    clean_score(emulator, daemon)


async def test_a_revoked_refresh_token_holds_the_work_until_a_new_login(
    emulator: RunningEmulator, start_daemon: DaemonFactory, tmp_path: Path
) -> None:
    emulator.reset(require_user_context=True, token_lifetime_s=TOKEN_LIFETIME)
    await wrapupd_login(emulator, tmp_path)
    daemon = await start_with_user_grant(start_daemon, grace=100 * UNIT)
    conv = emulator.start_conversation(queue=SUPPORT, talk_s=UNIT, outcome="nothing")
    key = await eventually(lambda: daemon.parts.applier.pending_count, blocking=False)
    assert key
    emulator.fault(kind="revoke_refresh_tokens")
    await eventually(
        lambda: not daemon.readiness()["deployment"][0], what="not ready", blocking=False
    )
    assert "wrapupd login" in daemon.readiness()["deployment"][1]
    page = await asyncio.to_thread(status_page, daemon)
    assert "refresh token expired" in page and "run `wrapupd login` again" in page
    await eventually(lambda: held(daemon, "login_required") >= 3, timeout=15, blocking=False)
    assert daemon.parts.applier.pending_count == 1, "the item is kept"
    assert final_wrapup(emulator, conv["conversationId"]) is None
    metric = daemon.parts.metrics.registry.get_sample_value(
        "wrapupd_deployment_problem", {"problem": "login_required"}
    )
    assert metric == 1.0

    await wrapupd_login(emulator, tmp_path)
    await eventually(lambda: daemon.readiness()["deployment"][0], what="ready", blocking=False)
    entry = await eventually(lambda: final_wrapup(emulator, conv["conversationId"]), timeout=15)
    assert entry["wrapup"]["by"] == "api"
    items = [daemon.parts.ledger.get((conv["conversationId"], p["participantId"])) for p in [entry]]
    assert [i.outcome for i in items if i] == [Outcome.APPLIED]
    clean_score(emulator, daemon)


async def test_client_credentials_on_a_user_context_org_hold_the_work_and_name_the_remedy(
    emulator: RunningEmulator, start_daemon: DaemonFactory
) -> None:
    emulator.reset(require_user_context=True)
    daemon = await start_daemon((rule(SUPPORT),))
    conv = emulator.start_conversation(queue=SUPPORT, talk_s=UNIT, outcome="nothing")
    await eventually(lambda: held(daemon, "user_context_required") >= 2, blocking=False)
    ok, detail = daemon.readiness()["deployment"]
    assert not ok and 'grant = "authorization_code"' in detail
    assert daemon.parts.applier.pending_count == 1
    participants = [
        p for p in emulator.ground_truth() if p["conversationId"] == conv["conversationId"]
    ]
    item = daemon.parts.ledger.get((conv["conversationId"], participants[0]["participantId"]))
    assert item is not None and item.outcome is None, "not ended as forbidden or too late"


async def test_an_org_where_users_code_only_their_own_participant_ends_items_as_forbidden(
    emulator: RunningEmulator, start_daemon: DaemonFactory, tmp_path: Path
) -> None:
    """No grant can write there: each item ends as forbidden with the platform's words (alert
    WrapupdMisconfigured), rather than being held for a remedy that does not exist."""
    emulator.reset(require_user_context=True, wrapup_own_participant_only=True)
    await wrapupd_login(emulator, tmp_path)
    daemon = await start_with_user_grant(start_daemon)
    conv = emulator.start_conversation(queue=SUPPORT, talk_s=UNIT, outcome="nothing")
    key = (conv["conversationId"], conv["participantId"])

    def finished() -> object:
        item = daemon.parts.ledger.get(key)
        return item if item is not None and item.outcome is not None else None

    item = await eventually(finished, what="the item's outcome", blocking=False)
    assert item.outcome is Outcome.FORBIDDEN
    assert "own participant" in (item.detail or "")
    assert daemon.parts.problems.check()[0], "not a deployment problem a login could fix"
