"""The one scorer: an API write over anyone else's outcome counts as overwritten (issue 11)."""

from __future__ import annotations

import pytest

from groundtruth.score import overwritten_by_api


def entry(*bys: str) -> dict[str, object]:
    return {
        "history": [{"by": by, "code": f"code-{by}", "at": "2026-01-01T00:00:00Z"} for by in bys]
    }


@pytest.mark.parametrize("before", ["agent", "timeout"])
def test_an_api_write_over_a_code_already_there_is_overwritten(before: str) -> None:
    """With ``overwrite_allowed`` the platform accepts a write over the agent's code or over
    ININ-WRAP-UP-TIMEOUT; ``wrapup.by`` then says "api", only the history shows the overwrite."""
    assert overwritten_by_api(entry(before, "api"))


@pytest.mark.parametrize("history", [("api",), ("agent",), ("api", "agent"), ()])
def test_a_first_write_or_a_later_agent_choice_is_not_an_overwrite(
    history: tuple[str, ...],
) -> None:
    assert not overwritten_by_api(entry(*history))
