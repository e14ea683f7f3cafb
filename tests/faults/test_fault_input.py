"""The fault matrix, bad input: fuzzed frames (hypothesis), broken configs, missing permissions."""

from __future__ import annotations

import asyncio
import copy
import json
import random
import re
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from faults_harness import (
    UNIT,
    InProcess,
    Scenario,
    assert_promises,
    eventually,
    free_port,
    write_config,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from genesys_emulator.testing import RunningEmulator
from wrapupd.clock import SystemClock
from wrapupd.events import Channel, ConversationEvent, TopicResult
from wrapupd.genesys.notifications import queue_topic
from wrapupd.metrics import Metrics
from wrapupd.subscriber import Subscriber, SubscriberConfig

ScenarioFactory = Callable[[str], Scenario]
InProcessFactory = Callable[[Scenario], InProcess]
SAMPLES = Path("/work/shared/platform/samples")
_REPO_SAMPLES = Path(__file__).resolve().parents[2] / "tests" / "samples"


def sample_event() -> dict[str, Any]:
    for folder in (SAMPLES, _REPO_SAMPLES):
        path = folder / "queue_event_agent_in_acw.json"
        if path.exists():
            return dict(json.loads(path.read_text()))
    pytest.skip("platform samples not available")


def valid_frame(base: dict[str, Any], conversation_id: str, pad: int = 0) -> str:
    event = copy.deepcopy(base)
    event["eventBody"]["id"] = conversation_id
    if pad:
        event["eventBody"]["additionalProperties"] = {"padding": "x" * pad}
    return json.dumps(event)


# --- strategies: what a broken platform (or a broken proxy) could send ----------------------

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
unknown_topics = st.text(min_size=1, max_size=60).filter(
    lambda t: not t.startswith(("v2.system.", "channel.metadata", "v2.routing.queues."))
)


@st.composite
def bad_frames(draw: st.DrawFn, base: dict[str, Any]) -> str:
    text = json.dumps(base)
    kind = draw(
        st.sampled_from(
            ["truncated", "wrong_type", "missing", "unknown_topic", "garbage", "participants"]
        )
    )
    if kind == "truncated":
        return text[: draw(st.integers(0, len(text) - 1))]
    if kind == "garbage":
        return draw(st.text(max_size=200))
    event = copy.deepcopy(base)
    if kind == "unknown_topic":
        event["topicName"] = draw(unknown_topics)
    elif kind == "missing":
        del event[draw(st.sampled_from(sorted(event)))]
    elif kind == "wrong_type":
        event[draw(st.sampled_from(["topicName", "eventBody", "version"]))] = draw(json_values)
    else:
        event["eventBody"]["participants"] = draw(json_values)
    return json.dumps(event)


# --- the subscriber, fed directly: every frame counted, every valid one delivered -----------


class FramesSocket:
    def __init__(self, frames: list[str]) -> None:
        self.frames = list(frames)
        self.done = asyncio.Event()

    async def recv(self) -> str:
        if not self.frames:
            self.done.set()
            await asyncio.Event().wait()
        return self.frames.pop(0)

    async def send(self, message: str) -> None:
        return None

    async def close(self) -> None:
        return None


class Received:
    """A sink that keeps the id of every conversation event delivered."""

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids

    def on_event(self, event: ConversationEvent, epoch: int) -> None:
        self.ids.append(event.conversation.id)

    def on_gap(self, reason: str) -> None:
        """Gaps do not matter here: the frames come from one socket."""


class OneChannel:
    token_generation = 0

    async def create_channel(self) -> Channel:
        return Channel("c1", "ws://127.0.0.1:1/channels/c1", None)

    async def subscribe(self, channel_id: str, topics: Any) -> list[TopicResult]:
        return [TopicResult(t, True) for t in topics]

    async def channel_exists(self, channel_id: str) -> bool:
        return True


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzzed_frames_are_counted_and_every_valid_one_still_arrives(data: st.DataObject) -> None:
    base = sample_event()
    queue_id = base["topicName"].split(".")[3]
    bad = data.draw(st.lists(bad_frames(base), min_size=1, max_size=25))
    valid_ids = [str(uuid.uuid4()) for _ in range(data.draw(st.integers(1, 6)))]
    huge = data.draw(st.sampled_from([0, 0, 2_000_000]))
    valid = [valid_frame(base, cid, pad=huge if i == 0 else 0) for i, cid in enumerate(valid_ids)]
    frames = data.draw(st.permutations(bad + valid))
    received: list[str] = []
    registry = CollectorRegistry()

    async def scenario() -> None:
        socket = FramesSocket(frames)

        async def connect(uri: str) -> FramesSocket:
            return socket

        subscriber = Subscriber(
            api=OneChannel(),
            queue_ids=lambda: [queue_id],
            metrics=Metrics(registry, version="test"),
            clock=SystemClock(),
            config=SubscriberConfig(heartbeat_timeout=30, ping_timeout=30),
            connector=connect,  # type: ignore[arg-type]
        )
        task = asyncio.create_task(subscriber.run(Received(received)))
        await asyncio.wait_for(socket.done.wait(), timeout=10)
        assert not task.done(), "the subscriber stopped on bad input"
        subscriber.stop()
        task.cancel()

    asyncio.run(scenario())
    assert set(valid_ids) <= set(received), "a valid frame was lost among bad ones"
    counted = sum(
        registry.get_sample_value("wrapupd_events_total", {"kind": k}) or 0.0
        for k in ("conversation", "malformed", "unknown")
    )
    assert counted == len(frames), "every frame is counted under a kind"


# --- end to end: bad frames on the real socket while traffic flows ---------------------------


def corpus(base: dict[str, Any], rng: random.Random) -> list[str]:
    """A fixed-seed mix of broken frames, one of them 4 MB of valid JSON with an unknown topic."""
    text = json.dumps(base)
    frames = [text[: rng.randrange(len(text))] for _ in range(5)]
    frames += ["", "null", "[]", '{"topicName": 5}', "{" * 5000, "\x00\xff"]
    for key in ("eventBody", "topicName", "metadata"):
        event = copy.deepcopy(base)
        event.pop(key)
        frames.append(json.dumps(event))
    for value in (None, 3, "x", [1], {"participants": "nope"}, {"participants": [None, 1, {}]}):
        event = copy.deepcopy(base)
        event["eventBody"] = value
        frames.append(json.dumps(event))
    frames.append(
        json.dumps({"topicName": "v2.users.x.presence", "eventBody": {"pad": "y" * 4_000_000}})
    )
    unknown_queue = copy.deepcopy(base)
    unknown_queue["topicName"] = queue_topic("not-a-queue.really")
    frames.append(json.dumps(unknown_queue))
    return frames


async def test_fuzzed_frames_on_the_live_socket_lose_nothing(
    scenario: ScenarioFactory, in_process: InProcessFactory
) -> None:
    s = scenario("fuzzed frames on the live socket (truncated, wrong types, 4 MB)")
    frames = corpus(sample_event(), random.Random(5))
    runner = in_process(s)
    daemon = await runner.start()
    registry = runner.running[0][1]
    await s.traffic()
    sent = await s.while_traffic(
        6 * UNIT, lambda: asyncio.to_thread(s.emu.fault, kind="raw_frames", frames=frames)
    )
    applier = daemon.parts.applier
    await s.settle(pending=lambda: applier.pending_count)
    bad = sum(
        registry.get_sample_value("wrapupd_events_total", {"kind": k}) or 0
        for k in ("malformed", "unknown")
    )
    assert daemon.parts.subscriber.connected
    await runner.stop_all()
    result = s.finish(bad_frames=int(bad))
    assert_promises(result)
    assert bad >= sent * len(frames) - sent, (
        "bad frames are counted"
    )  # '' and \x00 may not reach as text
    assert '"frame_ignored"' in s.transcript.everything()


# --- broken configs: exit 78 naming the setting ----------------------------------------------


def _own_port(_: re.Match[str]) -> str:
    return f'listen = "127.0.0.1:{free_port()}"'


def _config_variants(emu: RunningEmulator, tmp: Path) -> dict[str, tuple[str, str]]:
    """name -> (config text, what the message must name)."""
    port = free_port()
    good = write_config(tmp / "good.toml", emu, state_dir=tmp / "state", port=port).read_text()
    support = '[[queues]]\nqueue = "Support"\ndefault_code = "No code selected"\n'

    def only(queues: str, text: str = good) -> str:
        head, _, rest = text.partition("[[queues]]")
        tail = rest[rest.index("[daemon]") :]
        return head + queues + "\n" + tail

    return {
        "unknown key": (good.replace("[daemon]\n", "[daemon]\nworkerz = 4\n"), "daemon.workerz"),
        "bad region": (
            good.replace(f'api_host = "{emu.base_url}"', 'region = "mypurecloud.moon"'),
            "genesys.region",
        ),
        "missing secret": (
            "\n".join(line for line in good.splitlines() if not line.startswith("client_secret")),
            "genesys.client_secret",
        ),
        "unknown queue": (
            only('[[queues]]\nqueue = "Suport"\ndefault_code = "No code selected"\n'),
            "Suport",
        ),
        "code not assigned": (
            only('[[queues]]\nqueue = "Support"\ndefault_code = "Sale closed"\n'),
            "Sale closed",
        ),
        "negative grace": (only(support + "grace_seconds = -1\n"), "queues[0].grace_seconds"),
        "duplicate queue": (only(support + "\n" + support), "Support"),
    }


def test_broken_configs_exit_78_naming_the_setting(
    faults_emulator: RunningEmulator, tmp_path: Path, scenario: ScenarioFactory
) -> None:
    s = scenario("broken configs")
    variants = _config_variants(faults_emulator, tmp_path)
    processes = {}
    for name, (text, _) in variants.items():
        slug = name.replace(" ", "_")
        path = tmp_path / (slug + ".toml")
        # Each process its own state directory and status port: they run at once, and two on one
        # SQLite ledger (or one port) is a different error, tested on its own.
        own = text.replace(str(tmp_path / "state"), str(tmp_path / f"state-{slug}"))
        path.write_text(re.sub(r'listen = "127\.0\.0\.1:\d+"', _own_port, own))
        processes[name] = subprocess.Popen(
            [sys.executable, "-m", "wrapupd", "run", "--config", str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    problems = []
    for name, process in processes.items():
        out, err = process.communicate(timeout=60)
        s.transcript.add(out + err)
        named = variants[name][1]
        if process.returncode != 78 or named not in err:
            problems.append(
                f"{name}: exit {process.returncode}, wanted 78 naming {named!r}: {err[-400:]}"
            )
    s.finish(configs=len(variants), matrix=False)
    assert not problems, "\n".join(problems)


# --- permissions: a clear error naming what is missing, no crash loop ------------------------


async def test_client_without_queue_view_exits_78_naming_the_permission(
    faults_emulator: RunningEmulator, tmp_path: Path, scenario: ScenarioFactory
) -> None:
    s = scenario("permissions: no routing:queue:view")
    config = write_config(
        tmp_path / "w.toml", faults_emulator, state_dir=tmp_path / "st", port=free_port()
    )
    config.write_text(
        config.read_text()
        .replace(f'client_id = "{faults_emulator.client_id}"', 'client_id = "no-queue-view"')
        .replace(
            f'client_secret = "{faults_emulator.client_secret}"',
            'client_secret = "no-queue-view-secret"',
        )
    )
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "wrapupd", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    s.transcript.add(result.stdout + result.stderr)
    s.secrets.add("no-queue-view-secret")
    s.finish(matrix=False)
    assert result.returncode == 78, result.stderr
    assert "routing:queue:view" in result.stderr


async def test_client_without_wrapup_permission_reports_it_and_keeps_running(
    faults_emulator: RunningEmulator, scenario: ScenarioFactory, in_process: InProcessFactory
) -> None:
    s = scenario("permissions: no conversation:participant:wrapup")
    runner = in_process(s)
    daemon = await runner.start(client_id="no-wrapup", client_secret="no-wrapup-secret")
    conv = await asyncio.to_thread(
        faults_emulator.start_conversation, queue="Support", talk_s=UNIT, outcome="nothing"
    )
    ledger = daemon.parts.ledger
    key = (conv["conversationId"], conv["participantId"])
    item = await eventually(
        lambda: (i := ledger.get(key)) is not None and i.outcome is not None and i,
        timeout=10,
        what="an outcome",
        blocking=False,
    )
    assert item.outcome.value == "forbidden"
    assert "conversation:participant:wrapup" in (item.detail or "")
    calls = [c for c in faults_emulator.calls() if c["method"] == "PATCH"]
    assert sum(c["count"] for c in calls) == 1, "one refused write, not a retry loop"
    assert daemon.parts.subscriber.connected
    await runner.stop_all()
    s.secrets.add("no-wrapup-secret")
    s.finish(matrix=False)


async def test_rejected_topic_is_reported_and_the_rest_still_works(
    faults_emulator: RunningEmulator, scenario: ScenarioFactory, in_process: InProcessFactory
) -> None:
    s = scenario("permissions: a rejected topic")
    runner = in_process(s)
    daemon = await runner.start(
        client_id="sales-topic-denied", client_secret="sales-topic-denied-secret"
    )
    readiness = daemon.readiness()
    assert readiness["subscriptions"][0] is False and "7c31df92" in readiness["subscriptions"][1]
    assert '"topic_rejected"' in s.transcript.everything()
    conv = await asyncio.to_thread(
        faults_emulator.start_conversation, queue="Support", talk_s=UNIT, outcome="nothing"
    )
    await eventually(
        lambda: [
            e
            for e in faults_emulator.ground_truth()
            if e["conversationId"] == conv["conversationId"] and e["wrapup"]["by"] == "api"
        ],
        timeout=10,
        what="the permitted queue still coded",
    )
    await runner.stop_all()
    s.secrets.add("sales-topic-denied-secret")
    s.finish(matrix=False)
