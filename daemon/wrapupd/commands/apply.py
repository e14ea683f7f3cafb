"""``wrapupd apply``: one participant, one code, with the same state checks as the daemon.

This is the job a one-off script does today, done right: the code is resolved among the codes
assigned to the participant's queue, the participant must be an agent in ACW without a code, the
write carries only ``wrapup``, and a 429 waits as long as the platform says.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Protocol

from wrapupd.clock import Clock, SystemClock
from wrapupd.code_cache import pick_code
from wrapupd.errors import PlatformError, RateLimited, ResolutionError
from wrapupd.events import ConversationSnapshot, Outcome, Participant, Queue, WrapupCode
from wrapupd.parts import build_client
from wrapupd.retry import Call, Final, Hold, Retry, classify, sane_wait
from wrapupd.rules import StateCheck, after_refusal, check_participant, find_participant
from wrapupd.settings import Settings

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
    """The platform calls of one apply: read the conversation, its queue's codes, write."""

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
    """How one apply ended, why, and with which code."""

    outcome: Outcome
    detail: str
    code: WrapupCode | None = None

    @property
    def exit_code(self) -> int:
        """The process exit code of this outcome (0 applied, 10 already coded, ...)."""
        return EXIT_CODES[self.outcome]


async def command(args: argparse.Namespace, settings: Settings) -> int:
    """``wrapupd apply``: apply one code, print one line (outcome and why), exit with its code."""
    result = await apply_one(
        settings,
        conversation_id=args.conversation,
        participant_id=args.participant,
        code_ref=args.code,
        notes=args.notes,
        dry_run=args.dry_run,
        clock=SystemClock(),
    )
    print(f"{result.outcome.value}: {result.detail}")
    return result.exit_code


async def apply_one(
    settings: Settings,
    *,
    conversation_id: str,
    participant_id: str,
    code_ref: str,
    notes: str | None,
    dry_run: bool,
    clock: Clock,
) -> OneShotResult:
    """Authenticate with the settings' client, apply once, close."""
    options = settings.daemon_options()
    client = build_client(options, clock=clock)
    try:
        await client.start()
        return await apply_once(
            client,
            conversation_id=conversation_id,
            participant_id=participant_id,
            code_ref=code_ref,
            notes=notes if notes is not None else settings.defaults.notes,
            clock=clock,
            dry_run=dry_run or options.dry_run,
        )
    finally:
        await client.close()


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
    """Apply one code to one participant; a 429 waits as long as the platform says, then tries again."""
    for _ in range(max_rate_limited + 1):
        try:
            return await _attempt(client, conversation_id, participant_id, code_ref, notes, dry_run)
        except RateLimited as exc:
            await clock.sleep(sane_wait(exc.retry_after))
    return OneShotResult(Outcome.FAILED, f"rate limited {max_rate_limited + 1} times in a row")


async def _attempt(
    client: OneShotClient,
    conversation_id: str,
    participant_id: str,
    code_ref: str,
    notes: str | None,
    dry_run: bool,
) -> OneShotResult:
    participant = await _participant(client, conversation_id, participant_id)
    if isinstance(participant, OneShotResult):
        return participant
    queue_id = participant.queue_id
    if not queue_id:
        return OneShotResult(
            Outcome.INVALID_CODE, "the participant has no queue, so no code can be assigned to it"
        )
    queue = await client.get_queue(queue_id)
    try:
        code = pick_code(queue, await client.list_queue_wrapup_codes(queue.id), code_ref)
    except ResolutionError as exc:
        return OneShotResult(Outcome.INVALID_CODE, str(exc))
    if dry_run:
        return OneShotResult(Outcome.DRY_RUN, f"would apply {code.name!r} ({code.id})", code)
    return await _write(client, conversation_id, participant_id, code, notes)


async def _participant(
    client: OneShotClient, conversation_id: str, participant_id: str
) -> Participant | OneShotResult:
    """The participant when it is an agent in ACW without a code, else the result that says why not."""
    check = await _check(client, conversation_id, participant_id, None)
    if isinstance(check, OneShotResult):
        return check
    participant, state = check
    if participant is not None and participant.purpose != "agent":
        return OneShotResult(
            Outcome.INVALID_CODE,
            f"participant {participant_id} is a {participant.purpose}, not an agent",
        )
    if state.outcome is not None or participant is None:
        return OneShotResult(state.outcome or Outcome.TOO_LATE, state.detail)
    if state.uncertain:
        return OneShotResult(Outcome.FAILED, f"{state.detail}: not written, try again")
    return participant


async def _check(
    client: OneShotClient, conversation_id: str, participant_id: str, our_code_id: str | None
) -> tuple[Participant | None, StateCheck] | OneShotResult:
    """Read the live state; a read the platform refuses ends the attempt with its outcome."""
    try:
        snapshot = await client.get_conversation(conversation_id)
    except PlatformError as exc:
        verdict = classify(exc, Call.READ)
        if isinstance(verdict, Retry | Hold):
            raise
        return OneShotResult(verdict.outcome, verdict.detail)
    participant = find_participant(snapshot, participant_id)
    return participant, check_participant(participant, our_code_id)


async def _write(
    client: OneShotClient,
    conversation_id: str,
    participant_id: str,
    code: WrapupCode,
    notes: str | None,
) -> OneShotResult:
    try:
        await client.patch_participant_wrapup(
            conversation_id, participant_id, code_id=code.id, code_name=code.name, notes=notes
        )
    except PlatformError as exc:
        verdict = classify(exc, Call.WRITE)
        if isinstance(verdict, Retry | Hold):  # the CLI names the problem and its remedy
            raise
        if isinstance(verdict, Final):
            return OneShotResult(verdict.outcome, verdict.detail, code)
        after = await _check(client, conversation_id, participant_id, code.id)
        if isinstance(after, OneShotResult):
            return after
        outcome, detail, _ = after_refusal(after[1], code, verdict.refusal)
        return OneShotResult(outcome, detail, code)
    return OneShotResult(Outcome.APPLIED, f"applied {code.name!r} ({code.id})", code)
