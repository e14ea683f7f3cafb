"""Queue selectors: a case-insensitive glob, a division, or all queues, each with its default code;
an entry naming a queue wins; a selected queue without its code is skipped and reported once, not
fatal; queues added or renamed later are picked up at the code refresh."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from wrapupd.clock import ManualClock
from wrapupd.code_cache import CodeCache, resolve_all
from wrapupd.errors import ConfigError
from wrapupd.events import Queue, QueuePolicy, WrapupCode
from wrapupd.metrics import Metrics
from wrapupd.settings import load_settings

HOME, OTHER = ("d-home", "Home"), ("d-other", "Outsourced")
NO_CODE = WrapupCode("c-1", "No code selected")
RESOLVED = WrapupCode("c-2", "Resolved")


def queue(qid: str, name: str, division: tuple[str, str] = HOME) -> Queue:
    return Queue(qid, name, "MANDATORY", None, division_id=division[0], division_name=division[1])


class Org:
    """An in-memory directory of queues and their assigned codes, changed between refreshes."""

    def __init__(self) -> None:
        self.queues = [
            queue("q-1", "Support"),
            queue("q-2", "support VIP"),
            queue("q-3", "Sales"),
            queue("q-4", "Billing", OTHER),
        ]
        self.codes = {"q-1": [NO_CODE, RESOLVED], "q-2": [NO_CODE], "q-3": [RESOLVED]}

    async def list_queues(self, name: str | None = None) -> list[Queue]:
        return list(self.queues)

    async def get_queue(self, queue_id: str) -> Queue:
        return next(q for q in self.queues if q.id == queue_id)

    async def list_queue_wrapup_codes(self, queue_id: str) -> list[WrapupCode]:
        return self.codes.get(queue_id, [NO_CODE])

    async def list_wrapup_codes(self) -> list[WrapupCode]:
        return [NO_CODE, RESOLVED]


def policy(code: str = "No code selected", **fields: object) -> QueuePolicy:
    base: dict[str, object] = {
        "queue": "",
        "default_code": code,
        "grace_seconds": 0,
        "timeout_margin_seconds": 5,
        "notes": None,
    }
    return QueuePolicy(**(base | fields))  # type: ignore[arg-type]


async def test_a_glob_selects_queue_names_ignoring_case() -> None:
    table = await resolve_all(Org(), [policy(match="SUPPORT*")])
    assert sorted(table) == ["q-1", "q-2"]


async def test_a_division_selects_by_name_or_id() -> None:
    by_name = await resolve_all(Org(), [policy(division="outsourced")])
    by_id = await resolve_all(Org(), [policy(division="d-other")])
    assert sorted(by_name) == sorted(by_id) == ["q-4"]


async def test_all_selects_every_queue_with_its_code_and_skips_the_ones_without() -> None:
    skipped: list[str] = []
    table = await resolve_all(Org(), [policy(all_queues=True)], skipped=skipped)
    assert sorted(table) == ["q-1", "q-2", "q-4"]
    assert len(skipped) == 1 and "'Sales'" in skipped[0] and "all = true" in skipped[0]


async def test_an_entry_naming_a_queue_wins_over_selectors() -> None:
    table = await resolve_all(
        Org(), [policy(match="*", grace_seconds=9), policy("Resolved", queue="Support")]
    )
    assert table["q-1"].code == RESOLVED and table["q-1"].policy.queue == "Support"
    assert table["q-2"].policy.match == "*"


async def test_the_first_matching_selector_wins_with_its_overrides() -> None:
    first = policy(match="support*", notes="from the first")
    table = await resolve_all(Org(), [first, policy(all_queues=True, notes="from all")])
    assert table["q-2"].policy.notes == "from the first"
    assert table["q-4"].policy.notes == "from all"


def cache(org: Org) -> tuple[CodeCache, Metrics]:
    metrics = Metrics()
    return CodeCache(org, [policy(match="s*")], clock=ManualClock(), metrics=metrics), metrics


async def test_a_selected_queue_without_its_code_is_reported_once_and_skipped() -> None:
    codes, metrics = cache(Org())
    with capture_logs() as logs:
        await codes.load()
        await codes.refresh()
    assert "q-3" not in codes.queue_ids and len(codes.skipped) == 1
    assert [e["event"] for e in logs].count("queue_without_default_code") == 1
    assert metrics.registry.get_sample_value("wrapupd_queues_skipped") == 1


async def test_queues_added_and_renamed_while_running_are_picked_up_at_the_refresh() -> None:
    org = Org()
    codes, _ = cache(org)
    await codes.load()
    assert codes.queue_ids == {"q-1", "q-2"}
    org.queues.append(queue("q-5", "Service desk"))  # created: matches s*
    org.queues[1] = queue("q-2", "Premium")  # renamed: no longer matches
    assert await codes.refresh()
    assert codes.queue_ids == {"q-1", "q-5"}


def load(tmp_path: Path, entries: str) -> list[QueuePolicy]:
    path = tmp_path / "w.toml"
    head = '[genesys]\nregion = "mypurecloud.ie"\nclient_id = "c"\nclient_secret = "s"\n'
    path.write_text(head + textwrap.dedent(entries))
    return load_settings(path, {}).queue_policies()


def test_selectors_in_the_settings_become_policies(tmp_path: Path) -> None:
    policies = load(
        tmp_path,
        """
        [[queues]]
        match = "Support*"
        default_code = "No code selected"
        grace_seconds = 5
        [[queues]]
        division = "Home"
        default_code = "No code selected"
        [[queues]]
        all = true
        default_code = "Resolved"
        """,
    )
    assert [(p.match, p.division, p.all_queues) for p in policies] == [
        ("Support*", None, False),
        (None, "Home", False),
        (None, None, True),
    ]
    assert policies[0].grace_seconds == 5 and all(p.is_selector for p in policies)


def test_an_entry_must_pick_queues_exactly_one_way(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, '[[queues]]\nqueue = "Support"\nmatch = "S*"\ndefault_code = "x"\n')
    assert "exactly one of queue, match, division or all" in str(caught.value)
