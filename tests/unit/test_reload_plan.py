"""What a reload puts in force (dry_run, the rate budget, the log level, the queue table, ...),
what it keeps and names as needing a restart, and that no secret is ever shown; and the log
level changing on a running logger."""

from __future__ import annotations

import io
import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest
import structlog

from wrapupd import logs
from wrapupd.applier import ApplierConfig
from wrapupd.events import QueuePolicy
from wrapupd.logs import LogOptions
from wrapupd.options import DaemonOptions, local_options
from wrapupd.reload_plan import plan_reload
from wrapupd.subscriber import SubscriberConfig

SECRET = "s3cret-client-value"
NEW_SECRET = "an0ther-client-secret"
SUPPORT = QueuePolicy("Support", "No code selected", 0.0, 5.0, "wrapupd")


def running(**changes: object) -> DaemonOptions:
    options = local_options(
        api_host="https://api.example.test",
        client_id="client",
        client_secret=SECRET,
        policies=(SUPPORT,),
        state_dir=Path("/var/lib/wrapupd"),
    )
    return replace(options, **changes)


def test_nothing_changed_means_an_empty_plan() -> None:
    plan = plan_reload(running(), running(), old_log=LogOptions(), new_log=LogOptions())
    assert plan.changed == {} and plan.restart_needed == ()
    assert plan.options == running()


def test_dry_run_applies_live_and_is_named_first() -> None:
    new = running(applier=ApplierConfig(dry_run=True))
    plan = plan_reload(running(), new, old_log=LogOptions(), new_log=LogOptions())
    assert plan.changed == {"dry_run": [False, True]}
    assert plan.options.dry_run is True and plan.restart_needed == ()


def test_budget_log_level_drain_and_queue_policy_apply_live() -> None:
    new = running(
        budget_per_minute=120.0,
        drain_seconds=3.0,
        policies=(replace(SUPPORT, default_code="Resolved", grace_seconds=7.0),),
    )
    plan = plan_reload(
        running(), new, old_log=LogOptions(level="info"), new_log=LogOptions(level="debug")
    )
    assert plan.changed == {
        "budget_per_minute": [270.0, 120.0],
        "drain_seconds": [20.0, 3.0],
        "log.level": ["info", "debug"],
        "queues[Support].default_code": ["No code selected", "Resolved"],
        "queues[Support].grace_seconds": [0.0, 7.0],
    }
    assert plan.options == new and plan.log == LogOptions(level="debug")
    assert plan.restart_needed == ()


def test_everything_else_is_kept_and_named_as_needing_a_restart() -> None:
    new = running(
        api_host="https://api.other.test",
        state_dir=Path("/elsewhere"),
        listen=("0.0.0.0", 9999),
        applier=ApplierConfig(dry_run=True, workers=9),
        subscriber=SubscriberConfig(heartbeat_timeout=5.0),
    )
    plan = plan_reload(
        running(), new, old_log=LogOptions(format="json"), new_log=LogOptions(format="console")
    )
    assert plan.restart_needed == (
        "api_host",
        "state_dir",
        "listen",
        "subscriber.heartbeat_timeout",
        "applier.workers",
        "log.format",
    )
    assert plan.changed == {"dry_run": [False, True]}
    kept = plan.options
    assert kept.api_host == "https://api.example.test"
    assert kept.state_dir == Path("/var/lib/wrapupd") and kept.listen is None
    assert kept.applier == ApplierConfig(dry_run=True, workers=4)
    assert kept.subscriber == SubscriberConfig()
    assert plan.log == LogOptions(format="json")


def test_a_changed_secret_is_named_never_shown() -> None:
    new = running(
        client_secret=NEW_SECRET, ledger_password="pw-new", ledger_url="postgres://u:pw@h/db"
    )
    plan = plan_reload(running(), new, old_log=LogOptions(), new_log=LogOptions())
    assert plan.restart_needed == ("client_secret", "ledger_url", "ledger_password")
    assert plan.options.client_secret == SECRET
    shown = json.dumps([plan.changed, plan.restart_needed, plan.refusals()], default=str)
    for secret in (SECRET, NEW_SECRET, "pw-new", "postgres://"):
        assert secret not in shown
    assert SECRET not in repr(plan) and NEW_SECRET not in repr(plan)


def test_a_refusal_shows_the_running_and_the_wanted_value_unless_secret() -> None:
    new = running(client_secret=NEW_SECRET, applier=ApplierConfig(workers=8))
    plan = plan_reload(running(), new, old_log=LogOptions(), new_log=LogOptions())
    assert plan.refusals() == [
        {"setting": "client_secret"},
        {"setting": "applier.workers", "running": 4, "wanted": 8},
    ]


def test_on_a_shared_ledger_the_budget_needs_a_restart() -> None:
    """Each replica's share is computed from the budget it started with."""
    shared = running(ledger_url="postgres://h/db")
    new = replace(shared, budget_per_minute=100.0)
    plan = plan_reload(shared, new, old_log=LogOptions(), new_log=LogOptions())
    assert plan.restart_needed == ("budget_per_minute",)
    assert plan.options.budget_per_minute == 270.0 and plan.changed == {}


def test_a_different_number_of_queue_entries_is_shown_as_counts() -> None:
    sales = QueuePolicy("Sales", "No code selected", 0.0, 5.0, None)
    new = running(policies=(SUPPORT, sales))
    plan = plan_reload(running(), new, old_log=LogOptions(), new_log=LogOptions())
    assert plan.changed == {"queues": [1, 2]}
    assert plan.options.policies == (SUPPORT, sales)


# --- the log level of a running logger -----------------------------------------------------------


def test_set_level_changes_what_structlog_and_the_standard_library_write(
    clean_logging: None,
) -> None:
    out = io.StringIO()
    logs.configure_logging(fmt="json", level="info", secrets=[SECRET], stream=out)
    log = structlog.get_logger("wrapupd.test")
    log.debug("hidden_before")
    logs.set_level("debug")
    log.debug("shown_after", secret=SECRET)
    logging.getLogger("somelib").debug("library_debug")
    logs.set_level("warning")
    log.info("hidden_again")
    events = [json.loads(line)["event"] for line in out.getvalue().splitlines()]
    assert events == ["shown_after", "library_debug"]
    assert SECRET not in out.getvalue()  # the redaction stays in place


def test_set_level_refuses_an_unknown_level(clean_logging: None) -> None:
    with pytest.raises(ValueError, match="log level"):
        logs.set_level("chatty")
