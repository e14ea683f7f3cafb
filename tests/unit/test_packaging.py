"""Static checks of what ships beside the code: the systemd unit, the Dockerfile, deploy/ files.

Docker cannot run here and systemd may be absent, so these read the files. The metric-name
checks keep the dashboard and the alert rules honest when a metric is renamed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric

from wrapupd.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "wrapupd.service"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
LOCK = ROOT / "requirements.lock"
ALERTS = ROOT / "deploy" / "prometheus-alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana-dashboard.json"

# Series Prometheus itself adds to every scrape; not ours to register.
SCRAPE_SERIES = {"up"}
METRIC_RE = re.compile(r"\b((?:wrapupd|process|python)_[a-z0-9_]+)\b")


# --- helpers -------------------------------------------------------------------------------------


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """A systemd unit as {section: {key: [values in order]}}; keys may repeat."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"key outside a section: {line!r}"
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {line!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and continuations joined."""
    joined = re.sub(r"\\\n", " ", "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")
    ))  # fmt: skip
    pairs = []
    for line in joined.splitlines():
        if line.strip():
            instruction, _, args = line.strip().partition(" ")
            pairs.append((instruction.upper(), args.strip()))
    return pairs


SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
    "info": ("_info",),
}


def registered_sample_names() -> set[str]:
    """Every series name Metrics can expose, by family type (labelled families with no child
    yet have no samples, so samples alone would miss them)."""
    names: set[str] = set()
    for family in _collect_families():
        suffixes = SAMPLE_SUFFIXES.get(family.type, ("",))
        names.update(family.name + suffix for suffix in suffixes)
    return names


def alert_rules(text: str) -> list[dict[str, str]]:
    """Just enough YAML for our rules file: one dict per ``- alert:`` item, nested keys flat."""
    rules: list[dict[str, str]] = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if match := re.match(r"^\s*- alert:\s*(\S+)$", line):
            rules.append({"alert": match.group(1)})
        elif rules and (match := re.match(r"^\s+([a-z_]+):\s*(.*)$", line)):
            rules[-1].setdefault(match.group(1), match.group(2).strip().strip('"'))
    return rules


def dashboard_exprs(dashboard: dict[str, object]) -> list[str]:
    exprs: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("expr", "definition") and isinstance(value, str):
                    exprs.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(dashboard)
    return exprs


# --- systemd unit ------------------------------------------------------------------------------


REQUIRED_SERVICE_KEYS = {
    "Type": "notify",
    "NotifyAccess": "main",
    "ExecStart": "/usr/bin/wrapupd run --config /etc/wrapupd/wrapupd.toml",
    "ExecReload": "/bin/kill -HUP $MAINPID",
    "WatchdogSec": "60",
    "Restart": "on-failure",
    "RestartSec": "10",
    "RestartPreventExitStatus": "78",
    "TimeoutStopSec": "45",
    "DynamicUser": "yes",
    "StateDirectory": "wrapupd",
    "LoadCredential": "client_secret:/etc/wrapupd/client_secret",
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    "SystemCallArchitectures": "native",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "RestrictNamespaces": "yes",
    "RestrictRealtime": "yes",
    "CapabilityBoundingSet": "",
    "UMask": "0077",
}


@pytest.fixture(scope="module")
def unit() -> dict[str, dict[str, list[str]]]:
    return parse_unit(UNIT.read_text())


def test_unit_has_the_required_service_settings(unit: dict[str, dict[str, list[str]]]) -> None:
    service = unit["Service"]
    for key, expected in REQUIRED_SERVICE_KEYS.items():
        assert key in service, f"[Service] lacks {key}="
        assert expected in service[key], f"{key}= is {service[key]}, expected {expected!r}"
    assert "@system-service" in service["SystemCallFilter"]
    assert "WRAPUPD_LOG__FORMAT=json" in service["Environment"]


def test_unit_stop_timeout_exceeds_the_drain_deadline(
    unit: dict[str, dict[str, list[str]]],
) -> None:
    drain_deadline_s = 20
    assert int(unit["Service"]["TimeoutStopSec"][-1]) > drain_deadline_s + 10


def test_unit_secret_reaches_the_daemon_via_credentials(
    unit: dict[str, dict[str, list[str]]],
) -> None:
    env = unit["Service"]["Environment"]
    assert "WRAPUPD_GENESYS__CLIENT_SECRET_FILE=%d/client_secret" in env


def test_unit_keeps_proc_stat_visible_for_process_metrics(
    unit: dict[str, dict[str, list[str]]],
) -> None:
    # ProcSubset=pid hides /proc/stat; prometheus_client then drops every process_* metric, and
    # the heartbeat alert's start-up grace reads process_start_time_seconds.
    assert unit["Service"].get("ProcSubset", ["all"])[-1] != "pid"


def test_unit_is_installable(unit: dict[str, dict[str, list[str]]]) -> None:
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    assert "network-online.target" in unit["Unit"]["After"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    # verify insists that ExecStart's binary exists; wrapupd is not installed at /usr/bin here,
    # so a copy of the unit points at a stub. Everything else is verified as shipped.
    stub = tmp_path / "wrapupd"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    copy = tmp_path / "wrapupd.service"
    copy.write_text(UNIT.read_text().replace("ExecStart=/usr/bin/wrapupd", f"ExecStart={stub}"))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    complaints = [line for line in result.stderr.splitlines() if "wrapupd.service" in line]
    assert result.returncode == 0, result.stderr
    assert complaints == [], "\n".join(complaints)


# --- Dockerfile --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def docker() -> list[tuple[str, str]]:
    return dockerfile_instructions(DOCKERFILE.read_text())


def _args(docker: list[tuple[str, str]], instruction: str) -> list[str]:
    return [args for name, args in docker if name == instruction]


def test_dockerfile_is_multi_stage_on_slim_python_311(docker: list[tuple[str, str]]) -> None:
    froms = _args(docker, "FROM")
    assert len(froms) >= 2
    assert any("python:3.11-slim" in args for args in _args(docker, "ARG") + froms)
    assert any("--from=build" in args for args in _args(docker, "COPY"))


def test_dockerfile_installs_without_the_emulator_extra(docker: list[tuple[str, str]]) -> None:
    runs = " ".join(_args(docker, "RUN"))
    assert "pip install --no-deps ." in runs
    assert "[emulator]" not in runs and "[dev]" not in runs


def test_the_image_installs_exactly_the_locked_dependencies(docker: list[tuple[str, str]]) -> None:
    """Versions and hashes from requirements.lock; the daemon itself resolves nothing again."""
    runs = " ".join(_args(docker, "RUN"))
    assert "--require-hashes --no-deps -r requirements.lock" in runs
    assert any("requirements.lock" in args for args in _args(docker, "COPY"))
    assert "!requirements.lock" in DOCKERIGNORE.read_text().splitlines()


def test_every_runtime_dependency_is_locked_within_its_declared_range() -> None:
    lock = LOCK.read_text()
    pinned = {
        canonicalize_name(name): Version(version)
        for name, version in re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+) \\$", lock, re.MULTILINE)
    }
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for line in declared:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{name} is not in requirements.lock: run `make lock`"
        assert requirement.specifier.contains(pinned[name]), f"{name}=={pinned[name]}: {line}"
    assert lock.count("==") == len(pinned), "every pin carries its hashes"
    assert "--hash=sha256:" in lock


def test_dockerfile_runs_as_a_non_root_user(docker: list[tuple[str, str]]) -> None:
    users = _args(docker, "USER")
    assert users, "no USER instruction"
    final_user = users[-1].split(":")[0]
    assert final_user not in ("root", "0")


def test_dockerfile_uses_exec_form_so_sigterm_reaches_python(
    docker: list[tuple[str, str]],
) -> None:
    (entrypoint,) = _args(docker, "ENTRYPOINT")
    (cmd,) = _args(docker, "CMD")
    assert json.loads(entrypoint) == ["/usr/bin/tini", "--", "wrapupd"]  # an init as PID 1
    assert json.loads(cmd) == ["run", "--config", "/etc/wrapupd/wrapupd.toml"]


def test_dockerfile_healthcheck_probes_livez_without_curl(docker: list[tuple[str, str]]) -> None:
    (healthcheck,) = _args(docker, "HEALTHCHECK")
    options, _, command = healthcheck.partition("CMD")
    assert "--interval" in options
    argv = json.loads(command)
    assert argv[0] == "python"
    assert "/livez" in argv[-1]
    compile(argv[-1], "<healthcheck>", "exec")  # the one-liner is valid Python


def test_dockerfile_state_volume_port_and_environment(docker: list[tuple[str, str]]) -> None:
    assert "/var/lib/wrapupd" in _args(docker, "VOLUME")
    assert "9464" in _args(docker, "EXPOSE")
    env = " ".join(_args(docker, "ENV"))
    # The image's defaults never override the mounted settings file: no setting in ENV, only the
    # defaults file, which loads below the settings file.
    assert "WRAPUPD_DEFAULTS_FILE=/etc/wrapupd/container-defaults.toml" in env
    assert not re.search(r"WRAPUPD_(HTTP|DAEMON|LOG|GENESYS)__", env)
    runs = " ".join(_args(docker, "RUN"))
    for line in ('listen = "0.0.0.0:9464"', 'state_dir = "/var/lib/wrapupd"', 'format = "json"'):
        assert line in runs


def test_dockerignore_lets_in_only_what_the_build_copies(docker: list[tuple[str, str]]) -> None:
    lines = [ln for ln in DOCKERIGNORE.read_text().splitlines() if ln and not ln.startswith("#")]
    assert lines[0] == "*"
    allowed = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    for args in _args(docker, "COPY"):
        if "--from=" in args:
            continue
        *sources, _ = args.split()
        assert set(sources) <= allowed, f"COPY {sources} is excluded by .dockerignore"


# --- deploy/ -----------------------------------------------------------------------------------


def test_alert_rules_are_complete() -> None:
    rules = alert_rules(ALERTS.read_text())
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        for key in ("expr", "for", "severity", "summary"):
            assert rule.get(key), f"{rule['alert']} lacks {key}"
        assert rule["severity"] in ("warning", "critical")
        expr = rule["expr"]
        for opening, closing in ("()", "{}", "[]"):
            assert expr.count(opening) == expr.count(closing), f"{rule['alert']}: {opening}"


def test_alert_rules_cover_the_failure_modes() -> None:
    exprs = {rule["alert"]: rule["expr"] for rule in alert_rules(ALERTS.read_text())}
    joined = "\n".join(exprs.values())
    assert "wrapupd_last_heartbeat_timestamp_seconds" in joined and "120" in joined
    assert re.search(r"outcome=~?\"[^\"]*failed", joined)
    assert "forbidden" in joined and "invalid_code" in joined
    assert "wrapupd_rate_limited_total" in joined
    assert "wrapupd_pending_items" in joined
    assert "wrapupd_websocket_connected" in joined
    assert 'up{job="wrapupd"}' in joined
    disconnected = next(a for a, e in exprs.items() if "wrapupd_websocket_connected" in e)
    assert (
        dict((r["alert"], r["for"]) for r in alert_rules(ALERTS.read_text()))[disconnected] == "5m"
    )


def test_alert_rules_use_only_registered_metrics() -> None:
    known = registered_sample_names() | SCRAPE_SERIES
    used = set(METRIC_RE.findall(ALERTS.read_text()))
    assert used, "no metric names found"
    assert used <= known, f"unknown metrics in alerts: {sorted(used - known)}"


def test_dashboard_is_valid_json_over_registered_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert panels and all(p["targets"] for p in panels)
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    used = {name for expr in dashboard_exprs(dashboard) for name in METRIC_RE.findall(expr)}
    known = registered_sample_names()
    assert used <= known, f"unknown metrics in dashboard: {sorted(used - known)}"


def test_dashboard_shows_every_wrapupd_metric() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    used = {name for expr in dashboard_exprs(dashboard) for name in METRIC_RE.findall(expr)}
    families = {family.name for family in _collect_families() if family.name.startswith("wrapupd_")}
    shown = {family for family in families if any(name.startswith(family) for name in used)}
    assert shown == families, f"not on the dashboard: {sorted(families - shown)}"


def _collect_families() -> list[Metric]:
    registry = CollectorRegistry()
    Metrics(registry)
    return list(registry.collect())
