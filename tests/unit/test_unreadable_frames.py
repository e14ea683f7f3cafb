"""Issue 11 finding 6: a conversation frame that cannot be read is a gap (a sweep repairs it)."""

from __future__ import annotations

import json

from test_subscriber import UNIT, Rig, running


async def test_an_unreadable_conversation_frame_triggers_a_sweep() -> None:
    """One mistyped field drops the whole snapshot: what it said must be read again by REST."""
    body = {"id": "c1", "participants": [{"id": "p1", "purpose": "agent", "startAcwTime": 7}]}
    async with running(Rig(answers_ping=True)) as rig:
        for raw in (
            json.dumps({"topicName": "v2.unknown", "eventBody": {}}),
            json.dumps(
                {
                    "topicName": "v2.routing.queues.q1.conversations",
                    "version": "2",
                    "eventBody": body,
                }
            ),
        ):
            rig.sockets[0].inbox.put_nowait(raw)
        await rig.advance(UNIT)
    assert rig.sink.events == []
    unreadable = [g for g in rig.sink.gaps if g.startswith("unreadable frame")]
    assert len(unreadable) == 1, rig.sink.gaps
