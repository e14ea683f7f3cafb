"""The lean SDK import: what it relies on in the installed SDK, and that it changes no answer.

Each check of the import itself runs in a fresh interpreter (the test process may have imported
the SDK already). If a release in the pinned range changes a precondition, these fail by name.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from platform_samples import SAMPLES
from wrapupd.genesys import sdk
from wrapupd.genesys.sdk import DeferredModel, LeanImportUnavailable, read_package_table

SDK_DIR = Path(str(sys.modules[f"{sdk.SDK_PACKAGE}.api_client"].__file__)).parent
USED_API_MODULES = (
    "analytics_api",
    "conversations_api",
    "notifications_api",
    "routing_api",
    "users_api",
)

# Runs in a child: every answer shape wrapupd reads, through the SDK's own deserialiser and the
# facade's converters, plus the one request body it builds; prints them with what was loaded.
PROBE = r"""
import json, sys
from wrapupd.genesys import client, convert, sdk
from wrapupd.genesys.http import HttpResponse

def answer(data, klass):
    response = HttpResponse(200, "OK", json.dumps(data), {"Content-Type": "application/json"})
    return sdk.ApiClient(host="http://127.0.0.1:9").deserialize(response, klass)

loaded_at_import = sorted(n for n in sys.modules if n.startswith("PureCloudPlatformClientV2.models."))
body = json.loads(sys.argv[1])
out = {
    "mode": sdk.IMPORT_MODE,
    "models_at_import": len(loaded_at_import),
    "conversation": repr(convert.snapshot_from_model(answer(body, "Conversation"))),
    "queue": repr(convert.queue_from_model(answer(
        {"id": "q1", "name": "Support", "acwSettings": {"wrapupPrompt": "MANDATORY_TIMEOUT", "timeoutMs": 30000}},
        "Queue"))),
    "codes": repr([convert.wrapup_code_from_model(c) for c in answer(
        {"entities": [{"id": "c1", "name": "Sale"}], "pageCount": 1}, "WrapupCodeEntityListing").entities]),
    "channel": repr(convert.channel_from_model(answer(
        {"id": "ch", "connectUri": "wss://x/ch", "expires": "2030-01-01T00:00:00Z"}, "Channel"))),
    "topics": repr(convert.topic_results_from_model(answer(
        {"entities": [{"id": "t", "state": "Rejected", "rejectionReason": "no"}]}, "ChannelTopicEntityListing"))),
    "patch_body": sdk.ApiClient().sanitize_for_serialization(convert.wrapup_request("c1", "Sale", None)),
    "unknown_enum": answer({"id": "x", "participants": [{"id": "p", "purpose": "agent",
        "calls": [{"id": "c", "state": "brand-new-state"}]}]}, "Conversation").participants[0].calls[0].state,
    "models_loaded": len([n for n in sys.modules if n.startswith("PureCloudPlatformClientV2.models.")]),
    "apis_loaded": sorted(n.rsplit(".", 1)[1] for n in sys.modules if n.startswith("PureCloudPlatformClientV2.apis.")),
}
print(json.dumps(out))
"""


def run_probe(mode: str, *, pythonpath: str | None = None) -> dict[str, Any]:
    env = {**os.environ, sdk.MODE_ENV: mode}
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [pythonpath, env.get("PYTHONPATH")]))
    body = json.loads((SAMPLES / "queue_event_agent_in_acw.json").read_text())["eventBody"]
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(body)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_lean_import_loads_no_model_until_an_answer_needs_one() -> None:
    lean = run_probe("lean")
    assert lean["mode"] == "lean"
    assert lean["models_at_import"] == 0
    assert 0 < lean["models_loaded"] < 60  # of ~6,650: only the models of these answers
    assert set(lean["apis_loaded"]) == set(USED_API_MODULES)


def test_lean_and_full_imports_give_the_same_answers() -> None:
    lean, full = run_probe("lean"), run_probe("full")
    assert full["mode"] == "full" and full["models_loaded"] > 6000
    for key in ("conversation", "queue", "codes", "channel", "topics", "patch_body"):
        assert lean[key] == full[key], key
    assert lean["patch_body"] == {"wrapup": {"code": "c1", "name": "Sale"}}
    assert lean["unknown_enum"] == full["unknown_enum"] == "outdated_sdk_version"


def test_an_sdk_whose_init_changed_falls_back_to_the_full_import(tmp_path: Path) -> None:
    """A shadow copy of the installed SDK whose ``__init__`` gained a statement of another kind."""
    shadow = tmp_path / sdk.SDK_PACKAGE
    shadow.mkdir()
    for entry in SDK_DIR.iterdir():
        if entry.name not in ("__init__.py", "__pycache__"):
            (shadow / entry.name).symlink_to(entry)
    init = (SDK_DIR / "__init__.py").read_text()
    (shadow / "__init__.py").write_text(init + "\nimport os\n")
    result = run_probe("lean", pythonpath=str(tmp_path))
    assert result["mode"].startswith("full (fallback: __init__.py line ")
    assert "'import os'" in result["mode"]
    assert result["models_loaded"] > 6000
    assert result["conversation"] == run_probe("lean")["conversation"]


@pytest.mark.parametrize("package", ["", "models", "apis"])
def test_sdk_init_files_hold_only_name_imports_of_existing_modules(package: str) -> None:
    folder = SDK_DIR / package if package else SDK_DIR
    table = read_package_table(folder / "__init__.py")
    assert len(table) > 80
    for name, module in table.items():
        path = folder.joinpath(*module.split("."))
        assert path.with_suffix(".py").is_file() or (path / "__init__.py").is_file(), (name, module)


def test_the_api_modules_wrapupd_uses_touch_their_models_only_in_annotations() -> None:
    """What makes :class:`DeferredModel` stand-ins free: no API module code uses a model name."""
    for module in USED_API_MODULES:
        tree = ast.parse((SDK_DIR / "apis" / f"{module}.py").read_text())
        imported = {
            alias.name
            for node in tree.body
            if isinstance(node, ast.ImportFrom) and node.module == "models" and node.level == 2
            for alias in node.names
        }
        assert imported, module
        used = {
            node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and node.id in imported
        }
        assert not used, f"{module} uses model names at run time: {sorted(used)[:5]}"


def test_the_api_client_resolves_answer_models_by_name_on_the_models_package() -> None:
    source = (SDK_DIR / "api_client.py").read_text()
    assert "from . import models" in source
    assert "eval('models.' + klass)" in source


def test_read_package_table_names_the_first_unexpected_line(tmp_path: Path) -> None:
    init = tmp_path / "__init__.py"
    init.write_text(
        "from __future__ import absolute_import\n\n# models\nfrom .a_b import AB\n"
        "configuration = Configuration()\nfrom .c import *\n"
    )
    with pytest.raises(LeanImportUnavailable, match=r"line 6 is 'from \.c import \*'"):
        read_package_table(init)
    init.write_text("from .a_b import AB\nfrom .apis.x_api import XApi\n")
    assert read_package_table(init) == {"AB": "a_b", "XApi": "apis.x_api"}


def test_a_deferred_model_acts_as_its_class() -> None:
    models = sys.modules[f"{sdk.SDK_PACKAGE}.models"]
    deferred = DeferredModel(models, "WrapupInput")
    real = sdk.model("WrapupInput")
    instance = deferred()
    assert type(instance) is real and isinstance(instance, deferred)
    assert deferred.to_dict is real.to_dict and deferred.__name__ == "WrapupInput"
    assert issubclass(real, deferred)

    class Sub(deferred):  # type: ignore[misc,valid-type]
        pass

    assert issubclass(Sub, real)
    assert "WrapupInput" in repr(deferred)
