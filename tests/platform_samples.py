"""Where the platform contract's sample payloads live: ``shared/platform/samples`` beside the repo.

CI lays a copy of ``shared/`` next to its fresh clone; developers have it at /work/shared.
"""

from __future__ import annotations

import os
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]


def _find() -> Path:
    candidates = [
        os.environ.get("WRAPUPD_PLATFORM_SAMPLES", ""),
        str(_ROOT.parent / "shared" / "platform" / "samples"),
        "/work/shared/platform/samples",
    ]
    for candidate in candidates:
        if candidate and Path(candidate, "queue_event_agent_in_acw.json").is_file():
            return Path(candidate)
    raise RuntimeError(
        "the platform samples (shared/platform/samples) were not found beside the repository; "
        "set WRAPUPD_PLATFORM_SAMPLES to their folder"
    )


SAMPLES = _find()
