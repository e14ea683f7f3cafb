"""Run the fault matrix and print (or write into docs/RELIABILITY.md) its table.

    python tests/faults/report.py                 # run at scale 1, print the table
    python tests/faults/report.py --scale 10 --write
    python tests/faults/report.py --from results.json

The rows come from the suite itself (``RELIABILITY_JSON=path pytest tests/faults``), i.e. from the
emulator's ground truth after each scenario.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "RELIABILITY.md"
START, END = "<!-- matrix:start -->", "<!-- matrix:end -->"
COLUMNS = (
    ("scenario", "scenario"),
    ("conversations", "conversations"),
    ("missed", "missed"),
    ("doubled", "doubled"),
    ("overwritten", "overwritten"),
    ("raced", "raced (≤ 0.1 s)"),
    ("late", "late"),
    ("stray", "stray"),
    ("excused", "timeouts excused"),
    ("max_latency_s", "max ACW→applied (s)"),
)


def run_suite(scale: float) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "results.json"
        env = {**os.environ, "RELIABILITY_JSON": str(target)}
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/faults"]
        if scale != 1:
            command += ["--scale", str(scale)]
        done = subprocess.run(command, cwd=ROOT, env=env, check=False)
        if not target.exists():
            sys.exit(f"the suite wrote no results (exit {done.returncode})")
        rows: list[dict[str, Any]] = json.loads(target.read_text())
        if done.returncode != 0:
            print(
                f"warning: the suite failed (exit {done.returncode}); table shows what it measured",
                file=sys.stderr,
            )
        return rows


def cell(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if key == "scenario":
        return f"{value}"
    if value is None:
        return "-"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def table(rows: list[dict[str, Any]]) -> str:
    scenarios = [r for r in rows if r.get("matrix", True)]
    lines = [
        "| " + " | ".join(title for _, title in COLUMNS) + " | reproduce |",
        "|" + "---|" * (len(COLUMNS) + 1),
    ]
    for r in scenarios:
        cells = [cell(r, key) for key, _ in COLUMNS]
        lines.append("| " + " | ".join(cells) + f" | `{r['command']}` |")
    scale = {r.get("scale", 1) for r in rows}
    secrets = sum(r.get("secrets_checked", 0) for r in rows)
    captured = sum(r.get("transcript_bytes", 0) for r in rows)
    leaks = sum(r.get("leaks", 0) for r in rows)
    channel_leaks = sum(r.get("channel_id_leaks", 0) for r in rows)
    lines += [
        "",
        f"Scale {', '.join(str(s) for s in sorted(scale))}; secrets check over all {len(rows)} scenarios: "
        f"{secrets} secrets/tokens searched in {captured / 1e6:.1f} MB of captured output, {leaks} found; "
        f"{channel_leaks} notification channel ids found.",
    ]
    return "\n".join(lines)


def write(doc: Path, text: str) -> None:
    content = doc.read_text()
    head, _, rest = content.partition(START)
    _, _, tail = rest.partition(END)
    doc.write_text(f"{head}{START}\n{text}\n{END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument(
        "--from", dest="source", type=Path, help="render this results JSON instead of running"
    )
    parser.add_argument(
        "--write", action="store_true", help=f"replace the table in {DOC.relative_to(ROOT)}"
    )
    args = parser.parse_args()
    rows = json.loads(args.source.read_text()) if args.source else run_suite(args.scale)
    text = table(rows)
    if args.write:
        write(DOC, text)
    print(text)


if __name__ == "__main__":
    main()
