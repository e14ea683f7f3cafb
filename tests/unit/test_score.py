"""The one scorer: an API write over anyone else's outcome counts as overwritten (issue 11), or as
raced when it landed inside the check-to-write window no client can close."""

from __future__ import annotations

import pytest

from groundtruth.score import Excuses, overwrite_gap, score


def entry(*changes: tuple[str, str]) -> dict[str, object]:
    """A watched participant whose history is ``(by, at-seconds)`` pairs."""
    history = [
        {"by": by, "code": f"code-{by}", "at": f"2026-01-01T00:00:{at}Z"} for by, at in changes
    ]
    return {
        "conversationId": "c1",
        "participantId": "p1",
        "queueId": "q1",
        "history": history,
        "wrapup": history[-1] if history else None,
        "apiWrapupCalls": sum(1 for by, _ in changes if by == "api"),
    }


@pytest.mark.parametrize("before", ["agent", "timeout"])
def test_an_api_write_over_a_code_already_there_is_overwritten(before: str) -> None:
    """With ``overwrite_allowed`` the platform accepts a write over the agent's code or over
    ININ-WRAP-UP-TIMEOUT; ``wrapup.by`` then says "api", only the history shows the overwrite."""
    result = score([entry((before, "00.000"), ("api", "02.000"))], [], {"q1"})
    assert (result.overwritten, result.raced) == (1, 0)
    assert result.broken() == {"overwritten": 1}


def test_an_overwrite_inside_the_race_window_is_raced_not_broken() -> None:
    excuses = Excuses(race_window_s=0.1)
    result = score([entry(("agent", "00.000"), ("api", "00.040"))], [], {"q1"}, excuses=excuses)
    assert (result.overwritten, result.raced) == (0, 1)
    assert result.broken() == {}


def test_an_overwrite_wider_than_the_race_window_is_overwritten() -> None:
    excuses = Excuses(race_window_s=0.1)
    result = score([entry(("agent", "00.000"), ("api", "00.300"))], [], {"q1"}, excuses=excuses)
    assert (result.overwritten, result.raced) == (1, 0)


@pytest.mark.parametrize(
    "history", [(("api", "00"),), (("agent", "00"),), (("api", "00"), ("agent", "01")), ()]
)
def test_a_first_write_or_a_later_agent_choice_is_not_an_overwrite(
    history: tuple[tuple[str, str], ...],
) -> None:
    assert overwrite_gap(entry(*history)) is None
