from __future__ import annotations

import pytest

from wrapupd.clock import ManualClock
from wrapupd.code_cache import CodeCache, pick_code, resolve_all
from wrapupd.errors import NotFound, ResolutionError, ServerError
from wrapupd.events import Queue, QueuePolicy, WrapupCode
from wrapupd.metrics import Metrics

SUPPORT = Queue("11111111-1111-1111-1111-111111111111", "Support", "MANDATORY", None)
SALES = Queue("22222222-2222-2222-2222-222222222222", "Sales", "OPTIONAL", None)
NO_CODE = WrapupCode("aaaaaaaa-0000-0000-0000-000000000001", "No code selected")
RESOLVED = WrapupCode("aaaaaaaa-0000-0000-0000-000000000002", "Resolved")


class Directory:
    """An in-memory queue directory; counts calls so single-flight can be checked."""

    def __init__(self) -> None:
        self.queues = [SUPPORT, SALES]
        self.codes = {SUPPORT.id: [NO_CODE, RESOLVED], SALES.id: [RESOLVED]}
        self.calls = 0
        self.fail: Exception | None = None

    async def list_queues(self, name: str | None = None) -> list[Queue]:
        self.calls += 1
        if self.fail:
            raise self.fail
        return [q for q in self.queues if name is None or q.name == name]

    async def get_queue(self, queue_id: str) -> Queue:
        self.calls += 1
        for q in self.queues:
            if q.id == queue_id:
                return q
        raise NotFound("no such queue", status=404, code="not.found")

    async def list_queue_wrapup_codes(self, queue_id: str) -> list[WrapupCode]:
        self.calls += 1
        return self.codes[queue_id]

    async def list_wrapup_codes(self) -> list[WrapupCode]:
        self.calls += 1
        return [NO_CODE, RESOLVED]


def rule(queue: str, code: str) -> QueuePolicy:
    return QueuePolicy(queue, code, grace_seconds=0, timeout_margin_seconds=5, notes=None)


async def test_queue_and_code_resolve_by_name_or_id() -> None:
    table = await resolve_all(
        Directory(), [rule("Support", "No code selected"), rule(SALES.id, RESOLVED.id)]
    )
    assert table[SUPPORT.id].code == NO_CODE
    assert table[SALES.id].code == RESOLVED


async def test_unknown_queue_lists_the_queues_that_exist() -> None:
    with pytest.raises(ResolutionError) as err:
        await resolve_all(Directory(), [rule("Suport", "No code selected")])
    message = str(err.value)
    assert "queues[0]" in message and "'Suport' not found" in message
    assert "'Sales'" in message and "'Support'" in message


async def test_code_not_assigned_to_the_queue_is_refused_with_the_assigned_ones() -> None:
    with pytest.raises(ResolutionError) as err:
        await resolve_all(Directory(), [rule("Sales", "No code selected")])
    assert "not assigned to queue 'Sales'" in str(err.value)
    assert "'Resolved'" in str(err.value)


async def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ResolutionError) as err:
        await resolve_all(
            Directory(), [rule("Nope", "x"), rule("Sales", "y"), rule("Support", "Resolved")]
        )
    lines = str(err.value).splitlines()
    assert [line.split(":")[0] for line in lines] == ["queues[0]", "queues[1]"]


async def test_same_queue_twice_is_an_error() -> None:
    with pytest.raises(ResolutionError, match="configured twice"):
        await resolve_all(Directory(), [rule("Support", "Resolved"), rule(SUPPORT.id, "Resolved")])


def test_case_insensitive_name_only_when_unique() -> None:
    assert pick_code(SUPPORT, [NO_CODE, RESOLVED], "resolved") == RESOLVED
    twins = [WrapupCode("1", "Done"), WrapupCode("2", "DONE")]
    with pytest.raises(ResolutionError):
        pick_code(SUPPORT, twins, "done")


async def test_failed_refresh_keeps_the_last_good_table() -> None:
    directory = Directory()
    cache = CodeCache(
        directory, [rule("Support", "No code selected")], clock=ManualClock(), metrics=Metrics()
    )
    await cache.load()
    directory.fail = ServerError("down", status=503)
    assert await cache.refresh() is False
    assert cache.lookup(SUPPORT.id) is not None and cache.lookup(SUPPORT.id).code == NO_CODE  # type: ignore[union-attr]


async def test_refresh_picks_up_a_changed_code() -> None:
    directory = Directory()
    cache = CodeCache(
        directory, [rule("Support", "Resolved")], clock=ManualClock(), metrics=Metrics()
    )
    await cache.load()
    renamed = WrapupCode(RESOLVED.id, "Resolved (renamed)")
    directory.codes[SUPPORT.id] = [NO_CODE, renamed]
    await cache.reload([rule("Support", RESOLVED.id)])
    assert cache.lookup(SUPPORT.id).code.name == "Resolved (renamed)"  # type: ignore[union-attr]
    directory.codes[SUPPORT.id] = [NO_CODE, RESOLVED]
    assert await cache.refresh() is True
    assert cache.lookup(SUPPORT.id).code.name == "Resolved"  # type: ignore[union-attr]


async def test_lookup_does_no_io() -> None:
    directory = Directory()
    cache = CodeCache(
        directory, [rule("Support", "Resolved")], clock=ManualClock(), metrics=Metrics()
    )
    await cache.load()
    before = directory.calls
    for _ in range(100):
        cache.lookup(SUPPORT.id)
    assert directory.calls == before
    assert cache.lookup("unknown") is None and cache.lookup(None) is None


async def test_small_tables_are_verified_at_start_with_one_queue_listing() -> None:
    directory = Directory()
    cache = CodeCache(
        directory,
        [rule("Support", "Resolved"), rule("Sales", "Resolved")],
        clock=ManualClock(),
        metrics=Metrics(),
    )
    await cache.load()
    assert cache.verified
    assert directory.calls == 3  # one queue listing + one code listing per queue


async def test_large_tables_go_ready_on_listings_and_verify_in_the_background() -> None:
    directory = Directory()
    cache = CodeCache(
        directory,
        [rule("Support", "Resolved"), rule("Sales", "No code selected")],
        clock=ManualClock(),
        metrics=Metrics(),
        verify_at_start_max=1,
    )
    await cache.load()
    assert directory.calls == 2  # queues and org-wide codes, nothing per queue
    assert not cache.verified and cache.lookup(SALES.id) is not None
    problems = await cache.verify()
    assert len(problems) == 1 and "not assigned to queue 'Sales'" in problems[0]
    assert (
        cache.verified and cache.lookup(SALES.id) is None and cache.lookup(SUPPORT.id) is not None
    )


async def test_large_tables_still_refuse_a_code_that_exists_nowhere() -> None:
    cache = CodeCache(
        Directory(),
        [rule("Support", "Nope"), rule("Sales", "Resolved")],
        clock=ManualClock(),
        metrics=Metrics(),
        verify_at_start_max=1,
    )
    with pytest.raises(ResolutionError, match="no wrap-up code with that id or name exists"):
        await cache.load()


async def test_a_429_during_resolution_pauses_and_retries_instead_of_failing() -> None:
    from wrapupd.errors import RateLimited
    from wrapupd.ratelimit import RateLimiter

    directory = Directory()
    answers: list[Exception | None] = [RateLimited("slow down", status=429, retry_after=0.0), None]
    original = directory.list_queues

    async def limited_once(name: str | None = None) -> list[Queue]:
        failure = answers.pop(0)
        if failure is not None:
            raise failure
        return await original(name)

    directory.list_queues = limited_once  # type: ignore[method-assign]
    limiter = RateLimiter(6000, clock=ManualClock())
    cache = CodeCache(
        directory,
        [rule("Support", "Resolved")],
        clock=ManualClock(),
        metrics=Metrics(),
        limiter=limiter,
    )
    await cache.load()
    assert answers == [] and cache.lookup(SUPPORT.id) is not None


async def test_a_reload_that_changes_the_watched_queues_is_refused_and_the_table_stays() -> None:
    cache = CodeCache(
        Directory(), [rule("Support", "Resolved")], clock=ManualClock(), metrics=Metrics()
    )
    await cache.load()
    with pytest.raises(ResolutionError, match="set of watched queues changed"):
        await cache.reload([rule("Support", "Resolved"), rule("Sales", "Resolved")])
    with pytest.raises(ResolutionError, match="'Nope' is not assigned"):
        await cache.reload([rule("Support", "Nope")])
    assert cache.queue_ids == {SUPPORT.id}
    assert cache.lookup(SUPPORT.id).code == RESOLVED  # type: ignore[union-attr]


async def test_loading_a_table_stamps_the_metric() -> None:
    clock, metrics = ManualClock(), Metrics()
    cache = CodeCache(Directory(), [rule("Support", "Resolved")], clock=clock, metrics=metrics)
    await cache.load()
    stamp = metrics.registry.get_sample_value("wrapupd_code_table_loaded_timestamp_seconds")
    assert stamp == clock.now().timestamp()
