"""deploy/kubernetes: the two layouts keep the properties docs/OPERATIONS.md promises.

Schema validity is `make lint`'s job (kubernetes-validate --strict); these tests check what a schema
cannot: one writer per SQLite ledger, no outage-induced restarts, a restricted pod, settings the
daemon accepts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from wrapupd.settings import load_settings

ROOT = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def of_kind(layout: str, kind: str) -> list[dict[str, Any]]:
    found = []
    for path in sorted((ROOT / layout).glob("*.yaml")):
        found += [d for d in documents(path) if d["kind"] == kind]
    return found


def deployment(layout: str) -> dict[str, Any]:
    (found,) = of_kind(layout, "Deployment")
    return found


def container(layout: str) -> dict[str, Any]:
    (found,) = deployment(layout)["spec"]["template"]["spec"]["containers"]
    return found


def test_postgres_layout_runs_two_replicas_with_a_rolling_update_that_keeps_one_up() -> None:
    spec = deployment("postgres-ledger")["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    (budget,) = of_kind("postgres-ledger", "PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 1
    names = {e["name"] for e in container("postgres-ledger")["env"]}
    assert {"WRAPUPD_LEDGER__URL", "WRAPUPD_LEDGER__PASSWORD_FILE"} <= names


def test_sqlite_layout_never_runs_two_processes_on_one_ledger() -> None:
    spec = deployment("sqlite-ledger")["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"]["type"] == "Recreate"
    (claim,) = of_kind("sqlite-ledger", "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]


@pytest.mark.parametrize("layout", ["postgres-ledger", "sqlite-ledger"])
def test_pod_is_restricted(layout: str) -> None:
    pod = deployment(layout)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    ctx = container(layout)["securityContext"]
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"]["drop"] == ["ALL"]
    assert container(layout)["resources"]["limits"]["memory"]


@pytest.mark.parametrize("layout", ["postgres-ledger", "sqlite-ledger"])
def test_liveness_is_the_event_loop_and_readiness_the_platform(layout: str) -> None:
    c = container(layout)
    assert c["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["startupProbe"]["httpGet"]["path"] == "/livez"


def test_configmap_settings_load_in_the_daemon(tmp_path: Path) -> None:
    (config_map,) = documents(ROOT / "common" / "configmap.yaml")
    path = tmp_path / "wrapupd.toml"
    path.write_text(config_map["data"]["wrapupd.toml"])
    settings = load_settings(path, env={"WRAPUPD_GENESYS__CLIENT_SECRET": "s"})
    assert settings.http.port == 9464
    assert [q.queue for q in settings.queues] == ["Support"]


def test_networkpolicy_admits_metrics_from_monitoring_only() -> None:
    (policy,) = documents(ROOT / "common" / "networkpolicy.yaml")
    (rule,) = policy["spec"]["ingress"]
    (source,) = rule["from"]
    assert source["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"
    }
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
