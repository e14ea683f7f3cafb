"""The documentation an operator reads at 2 a.m. must say what the code does."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from wrapupd.settings import REFERENCE_BEGIN, REFERENCE_END, reference_markdown, settings_reference

ROOT = Path(__file__).resolve().parents[2]


def test_configuration_reference_matches_the_settings_schema() -> None:
    document = (ROOT / "docs" / "CONFIGURATION.md").read_text()
    block = document.split(REFERENCE_BEGIN, 1)[1].split(REFERENCE_END, 1)[0].strip()
    assert block == reference_markdown(), "docs/CONFIGURATION.md is stale: run `make docs`"


def test_example_config_mentions_every_setting_in_its_section() -> None:
    text = (ROOT / "config" / "wrapupd.example.toml").read_text()
    tomllib.loads(text)  # it must stay valid TOML
    sections = re.split(r"^\[+([a-z_]+)\]+\s*$", text, flags=re.M)
    body: dict[str, str] = {}
    for i in range(1, len(sections) - 1, 2):  # [[queues]] appears more than once: join them
        body[sections[i]] = body.get(sections[i], "") + sections[i + 1]
    for key, _, _ in settings_reference():
        section, name = key.replace("[]", "").split(".", 1)
        assert re.search(rf"^#?\s*{name}\s*=", body.get(section, ""), flags=re.M), (
            f"{key} missing from the example"
        )


def _logged_problems() -> set[str]:
    source = "\n".join(p.read_text() for p in (ROOT / "daemon" / "wrapupd").rglob("*.py"))
    names = set(re.findall(r'log\.(?:warning|error|exception)\(\s*"([a-z_]+)"', source))
    names |= set(re.findall(r'getattr\(log, level\)\(\s*"([a-z_]+)"', source))
    return names


def test_troubleshooting_explains_every_warning_and_error_the_daemon_logs() -> None:
    page = (ROOT / "docs" / "TROUBLESHOOTING.md").read_text()
    problems = _logged_problems()
    assert len(problems) > 10
    missing = sorted(n for n in problems if f"`{n}`" not in page)
    assert not missing, f"docs/TROUBLESHOOTING.md does not explain: {missing}"


def test_quick_start_commands_are_the_ones_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "make demo" in quick and "make test" in quick
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_shipped_configs_load(tmp_path: Path) -> None:
    from wrapupd.settings import load_settings

    demo = load_settings(ROOT / "config" / "wrapupd.demo.toml", env={})
    assert [p.queue for p in demo.queue_policies()][:2] == ["Support", "Sales"]
    example = load_settings(
        ROOT / "config" / "wrapupd.example.toml", env={"WRAPUPD_GENESYS__CLIENT_SECRET": "x"}
    )
    assert example.queue_policies()
