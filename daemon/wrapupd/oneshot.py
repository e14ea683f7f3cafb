"""``wrapupd apply``: one participant, one code, with the same state checks as the daemon.

This is the job a one-off script does today, done right: the code is resolved among the codes
assigned to the participant's queue, the participant must be an agent in ACW without a code, the
write carries only ``wrapup``, and a 429 waits as long as the platform says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from wrapupd.applier import classify_participant, find_participant
from wrapupd.clock import Clock
from wrapupd.code_cache import pick_code
from wrapupd.errors import BadRequest, Conflict, Forbidden, NotFound, RateLimited, ResolutionError
from wrapupd.events import ConversationSnapshot, Outcome, Queue, WrapupCode

EXIT_CODES: dict[Outcome, int] = {
    Outcome.APPLIED: 0,
    Outcome.DRY_RUN: 0,
    Outcome.ALREADY_CODED: 10,
    Outcome.TOO_LATE: 11,
    Outcome.INVALID_CODE: 12,
    Outcome.FORBIDDEN: 13,
    Outcome.FAILED: 1,
}


class OneShotClient(Protocol):
    async def get_conversation(self, conversation_id: str) -> ConversationSnapshot: ...
    async def get_queue(self, queue_id: str) -> Queue: ...
    async def list_queue_wrapup_codes(self, queue_id: str) -> list[WrapupCode]: ...
    async def patch_participant_wrapup(
        self,
        conversation_id: str,
        participant_id: str,
        *,
        code_id: str,
        code_name: str | None,
        notes: str | None,
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class OneShotResult:
    outcome: Outcome
    detail: str
    code: WrapupCode | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.outcome]


async def apply_once(
    client: OneShotClient,
    *,
    conversation_id: str,
    participant_id: str,
    code_ref: str,
    notes: str | None,
    clock: Clock,
    dry_run: bool = False,
    max_rate_limited: int = 5,
) -> OneShotResult:
    for _ in range(max_rate_limited + 1):
        try:
            return await _attempt(client, conversation_id, participant_id, code_ref, notes, dry_run)
        except RateLimited as exc:
            await clock.sleep(exc.retry_after)
    return OneShotResult(Outcome.FAILED, f"rate limited {max_rate_limited + 1} times in a row")


async def _attempt(
    client: OneShotClient,
    conversation_id: str,
    participant_id: str,
    code_ref: str,
    notes: str | None,
    dry_run: bool,
) -> OneShotResult:
    try:
        snapshot = await client.get_conversation(conversation_id)
    except NotFound:
        return OneShotResult(Outcome.TOO_LATE, f"conversation {conversation_id} not found")
    participant = find_participant(snapshot, participant_id)
    if participant is not None and participant.purpose != "agent":
        return OneShotResult(
            Outcome.INVALID_CODE,
            f"participant {participant_id} is a {participant.purpose}, not an agent",
        )
    check = classify_participant(participant, None)
    if check.outcome is not None or participant is None:
        return OneShotResult(check.outcome or Outcome.TOO_LATE, check.detail)
    if not participant.queue_id:
        return OneShotResult(
            Outcome.INVALID_CODE, "the participant has no queue, so no code can be assigned to it"
        )
    queue = await client.get_queue(participant.queue_id)
    try:
        code = pick_code(queue, await client.list_queue_wrapup_codes(queue.id), code_ref)
    except ResolutionError as exc:
        return OneShotResult(Outcome.INVALID_CODE, str(exc))
    if dry_run:
        return OneShotResult(Outcome.DRY_RUN, f"would apply {code.name!r} ({code.id})", code)
    try:
        await client.patch_participant_wrapup(
            conversation_id, participant_id, code_id=code.id, code_name=code.name, notes=notes
        )
    except Forbidden as exc:
        return OneShotResult(Outcome.FORBIDDEN, str(exc), code)
    except (BadRequest, NotFound, Conflict) as exc:
        after = classify_participant(
            find_participant(await client.get_conversation(conversation_id), participant_id),
            code.id,
        )
        if after.outcome is None:
            return OneShotResult(
                Outcome.INVALID_CODE, f"the platform refused {code.name!r}: {exc}", code
            )
        return OneShotResult(after.outcome, f"{after.detail}; the write was refused: {exc}", code)
    return OneShotResult(Outcome.APPLIED, f"applied {code.name!r} ({code.id})", code)
