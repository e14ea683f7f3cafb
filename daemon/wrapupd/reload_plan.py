"""What a reload may change in a running daemon: PURE, the options in force and the options just
read in, out what is put in force, what changed and what is kept until a restart.

Live: ``dry_run`` (read by the applier right before each write), the rate budget (the limiter's
refill rate; on a shared ledger each replica's share is fixed at start, so there it needs a
restart), the queue table (policies: default codes, grace, margins, notes), the drain deadline, the
redrive poll interval and the log level. Everything else is built into a part at start (the
platform client, the credentials, the ledger, the socket, the workers, the status listener) and is
kept at its running value, named as needing a restart. Secret settings are named, never shown.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from wrapupd.events import QueuePolicy
from wrapupd.logs import LogOptions
from wrapupd.options import DaemonOptions

LIVE = frozenset(
    {"applier.dry_run", "budget_per_minute", "drain_seconds", "redrive_poll_seconds", "log.level"}
)
SECRET = frozenset({"client_secret", "ledger_url", "ledger_password"})
_SHOWN_AS = {"applier.dry_run": "dry_run"}


@dataclass(frozen=True, slots=True)
class ReloadPlan:
    """The outcome of comparing the settings in force with the settings read in."""

    options: DaemonOptions  # in force after the reload: the running ones with every live change
    log: LogOptions
    changed: dict[str, list[Any]]  # live setting -> [old, new], JSON-ready, never a secret
    refused: tuple[dict[str, Any], ...]  # differing settings kept until a restart

    @property
    def restart_needed(self) -> tuple[str, ...]:
        """The names of the settings that differ but keep their running value."""
        return tuple(str(r["setting"]) for r in self.refused)

    def refusals(self) -> list[dict[str, Any]]:
        """One entry per refused setting: its name, and its running and wanted values unless secret."""
        return [dict(r) for r in self.refused]


def plan_reload(
    old: DaemonOptions, new: DaemonOptions, *, old_log: LogOptions, new_log: LogOptions
) -> ReloadPlan:
    """Compare setting by setting: live ones are taken from ``new``, the rest stay as in ``old``."""
    before, after = _flat(old, old_log), _flat(new, new_log)
    live = _live(old)
    differing = [name for name in before if before[name] != after[name]]
    changed: dict[str, list[Any]] = {}
    refused: list[dict[str, Any]] = []
    options, log = old, old_log
    for name in differing:
        if name == "policies":
            changed.update(_policy_changes(old.policies, new.policies))
            options = replace(options, policies=new.policies)
        elif name in live:
            changed[_SHOWN_AS.get(name, name)] = [_plain(before[name]), _plain(after[name])]
            options, log = _taking(options, log, name, after[name])
        else:
            refused.append(_refusal(name, before[name], after[name]))
    return ReloadPlan(options=options, log=log, changed=changed, refused=tuple(refused))


def _live(old: DaemonOptions) -> frozenset[str]:
    """On a shared ledger the budget is divided among replicas from its value at start."""
    return LIVE if old.ledger_url is None else LIVE - {"budget_per_minute"}


def _flat(options: DaemonOptions, log: LogOptions) -> dict[str, Any]:
    """Every setting by its dotted name (``applier.workers``), the log's last."""
    flat: dict[str, Any] = {}
    for outer in fields(options):
        value = getattr(options, outer.name)
        if is_dataclass(value):
            for inner in fields(value):
                flat[f"{outer.name}.{inner.name}"] = getattr(value, inner.name)
        else:
            flat[outer.name] = value
    flat["log.level"], flat["log.format"] = log.level, log.format
    return flat


def _taking(
    options: DaemonOptions, log: LogOptions, name: str, value: Any
) -> tuple[DaemonOptions, LogOptions]:
    """``options`` and ``log`` with the one setting ``name`` set to ``value``."""
    section, _, leaf = name.rpartition(".")
    if section == "log":
        return options, replace(log, **{leaf: value})
    if section:
        return replace(
            options, **{section: replace(getattr(options, section), **{leaf: value})}
        ), log
    return replace(options, **{leaf: value}), log


def _refusal(name: str, running: Any, wanted: Any) -> dict[str, Any]:
    if name in SECRET:
        return {"setting": name}
    return {"setting": name, "running": _plain(running), "wanted": _plain(wanted)}


def _policy_changes(
    old: tuple[QueuePolicy, ...], new: tuple[QueuePolicy, ...]
) -> dict[str, list[Any]]:
    """Each queue entry's changed fields (``queues[Support].default_code``), or the counts when
    entries were added or removed."""
    if len(old) != len(new):
        return {"queues": [len(old), len(new)]}
    changes: dict[str, list[Any]] = {}
    for index, (was, now) in enumerate(zip(old, new, strict=True)):
        label = was.queue or f"#{index}"
        for item in fields(was):
            before, after = getattr(was, item.name), getattr(now, item.name)
            if before != after:
                changes[f"queues[{label}].{item.name}"] = [before, after]
    return changes


def _plain(value: Any) -> Any:
    """A value as JSON shows it: paths as text, tuples as lists."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value
