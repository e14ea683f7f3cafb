"""The demo's live line and its summary name the same things with the same words (issue 15)."""

from __future__ import annotations

from wrapupd.commands.demo import LIVE_WORDS, live_counts, render
from wrapupd.events import Outcome


def summary_of(**figures: int) -> dict[str, object]:
    summary: dict[str, object] = {
        "conversations": 10,
        "acw_without_code": 6,
        "applied": 5,
        "agent_coded_untouched": 3,
        "agent_skipped": 1,
        "missed": 0,
        "late": 0,
        "doubled": 0,
        "overwritten": 0,
        "stray": 0,
        "api_calls": {},
    }
    summary.update(figures)
    return summary


def test_the_live_line_uses_the_summarys_words() -> None:
    counts = dict.fromkeys(Outcome, 0) | {
        Outcome.APPLIED: 5,
        Outcome.ALREADY_CODED: 3,
        Outcome.TOO_LATE: 1,
    }
    line = live_counts(counts)
    summary = render(summary_of())
    assert "too_late" not in line and "agent/coded" not in line
    assert line.startswith("applied 5 · agent coded untouched 3 · agent skipped 1")
    for _, word in LIVE_WORDS:
        if word != "failed":  # the daemon's own verdict: the summary scores ground truth instead
            assert f"  {word.replace('_', ' ')} " in summary
