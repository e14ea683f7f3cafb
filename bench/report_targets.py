"""The targets part of ``docs/PERFORMANCE.md`` (issue 14's table and issue 13's failover row): each
figure beside its target, the 3-run p99 and its chart, the failovers one by one. Numbers and
verdicts come from the results JSON (``targets``, ``latency_repeats`` and ``failover``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

NOISE = """\
How noise is handled. The machine is shared (two cores, several other jobs running at the same
time), so every figure is reduced before it is judged: start-up and RSS at ready are the medians of
{startup_runs} process starts of `wrapupd run`
from a virtualenv installed as the container image installs it (`.bench-venv/`, built once by
`bench/prod_venv.py`: `requirements.lock` with `--require-hashes`, then `pip install --no-deps .`,
bytecode compiled at install; the development venv's figures, from runs alternated with these, are
`startup.dev_venv` in the results JSON), durable intake the median of 3 runs, parse + detect the best pass
over the blend (other processes only ever slow a pass down), the p99 target must hold in *each* of
{repeats} consecutive runs (the worst is shown). `make bench` exits non-zero when a target is missed,
or when a compared figure (the ones marked "yes") is more than 20 % worse than in the last committed
results of the same mode ({previous}). Latency tails, the 10,000-queue start-up and the failover
time are held to their targets only: between two sittings on this machine the first two move by
more than 20 % with no change in the code, and a failover's time depends on where the kill falls in
the lease renewal cycle. The machine's own speed moves too, with its neighbours (a virtual machine):
right before every latency run (each contender's, and each of wrapupd's p99 runs), the peak run
and the start-up runs, and at the end of the sitting, a probe times a fixed interpreter loop and
fifty fdatasyncs in the benchmark's directory, and the table
below shows each run beside its probe. A slow probe marks a slow machine; a probe in its usual
range does not prove a quiet one: the machine also slows down for seconds at a time, between two
probes, and in ways a tight loop does not feel. The probes are readings, never corrections: every
figure is judged as measured."""

FAILOVER = """Two `wrapupd run` replicas share a throwaway PostgreSQL ledger with the default lease
({lease:g} s). Replica A holds {items} items while every write is refused (503), replica B adopts
them from the ledger, then A is killed with SIGKILL (no drain, no lease given back) and the refusals
stop. A failover's time is its slowest item: from the kill until the last of the {items}
participants shows the default code in the emulator's ground truth. The row above is the worst of
{repeats} failovers in a row (`python -m bench.failover --items {items} --repeats {repeats}` runs
the same code alone)."""


def _fmt(value: float | None, unit: str, target: float) -> str:
    if value is None:
        return "-"
    if target < 1.5 and unit == "":  # shares and ratios
        return f"{value * 100:.1f} %" if target < 1 else f"{value:.3f}"
    return f"{value:,.2f}{unit}" if value < 100 else f"{value:,.0f}{unit}"


def _target(v: dict[str, Any]) -> str:
    sign = "≥" if v["higher_is_better"] else "≤"
    return f"{sign} {_fmt(v['target'], v['unit'], v['target'])}"


def _verdict(v: dict[str, Any]) -> str:
    if v["regressed"]:
        return "**regressed**"
    return "met" if v["met"] else "**missed**"


def targets_table(results: dict[str, Any]) -> list[str]:
    lines = [
        "| figure | target | measured | last committed | compared | verdict |",
        "|---|---|---:|---:|---|---|",
    ]
    for v in results.get("targets", []):
        lines.append(
            f"| {v['label']} | {_target(v)} | {_fmt(v['value'], v['unit'], v['target'])} | "
            f"{_fmt(v['previous'], v['unit'], v['target'])} | {'yes' if v['compared'] else 'no'} | "
            f"{_verdict(v)} |"
        )
    return lines


def repeats_table(results: dict[str, Any]) -> list[str]:
    """The p99 runs, each beside the machine's speed probed right before it (bench/host_probe.py)."""
    lines = [
        "| run | ACW starts/s | samples | p50 ms | p99 ms | max ms | machine: loop ms, fdatasync p50 / max ms |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for n, r in enumerate(results.get("latency_repeats", []), 1):
        lines.append(
            f"| {n} | {r['acw_starts_per_s']} | {r['count']} | {r['p50']} | {r['p99']} | {r['max']} |"
            f" {_host(r.get('host'))} |"
        )
    peak = next((r for r in results["runs"] if r["scenario"] == "peak"), None)
    if peak:
        lat = peak["latency_ms"]
        probe = next((p for p in results.get("host", []) if p["label"] == "peak run"), None)
        lines.append(
            f"| peak (unlimited budget) | {peak['extra']['acw_starts_per_s']} | {lat['count']} | "
            f"{lat['p50']} | {lat['p99']} | {lat['max']} | {_host(probe)} |"
        )
    return lines


def _host(probe: dict[str, Any] | None) -> str:
    if not probe:
        return "-"
    return f"{probe['loop_ms']}, {probe['fdatasync_p50_ms']} / {probe['fdatasync_max_ms']}"


def host_line(results: dict[str, Any]) -> str:
    """The machine's speed over the sitting, from every probe."""
    s = results.get("host_summary")
    if not s:
        return ""
    startup = next((p for p in results.get("host", []) if p["label"] == "start-up"), None)
    return (
        f"\nMachine speed over the sitting ({s['probes']} probes, `bench/host_probe.py`): the fixed"
        f" interpreter loop took {s['loop_ms_min']} to {s['loop_ms_max']} ms (median"
        f" {s['loop_ms_median']}), the slowest fdatasync {s['fdatasync_max_ms']} ms"
        + (f"; right before the start-up runs, {startup['loop_ms']} ms." if startup else ".")
    )


def repeats_chart(results: dict[str, Any], img: Path) -> str | None:
    """Per run, the latency distribution (box: p1-p99) against the 10 ms and 25 ms targets."""
    runs = [r for r in results["runs"] if r["contender"] == "wrapupd" and r["scenario"] == "peak"]
    samples = [r.get("samples") or [0.0] for r in results.get("latency_repeats", [])]
    if not samples:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"run {n} (~50/s)" for n in range(1, len(samples) + 1)]
    data = [*samples, *(r["latency_ms"]["samples"] for r in runs)]
    labels += ["peak (200/s)" for _ in runs]
    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.boxplot(data, tick_labels=labels, whis=(1, 99), showfliers=True)
    ax.axhline(10, color="tab:red", linestyle="--", linewidth=1, label="p99 target at ~50/s")
    ax.axhline(25, color="tab:orange", linestyle=":", linewidth=1, label="p99 target at 200/s")
    ax.set_yscale("log")
    ax.set_ylabel("ACW start -> code applied (ms, log)")
    ax.set_title("wrapupd latency, consecutive runs (whiskers p1-p99)")
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path = img / "bench-p99-runs.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def failover_table(results: dict[str, Any]) -> list[str]:
    """One row per failover (slowest and median item), or why it could not be measured."""
    row = results.get("failover")
    if not row:
        return []
    if "error" in row:
        return [f"Failover not measured: `{row['error'][-300:]}`"]
    lines = [
        FAILOVER.format(lease=row["lease_seconds"], items=row["items"], repeats=row["repeats"]),
        "",
        "| failover | items | slowest item (s) | median item (s) |",
        "|---|---:|---:|---:|",
    ]
    for n, run in enumerate(row["runs"], 1):
        lines.append(
            f"| {n} | {run['items']} | {run['failover_max_s']:.2f} | {run['failover_median_s']:.2f} |"
        )
    lines.append(
        f"| median of {row['repeats']} / worst | | {row['median_s']:.2f} / {row['max_s']:.2f} | |"
    )
    load = row.get("load_avg_1_5_15")
    if load:
        lines += [
            "",
            f"Load average when the failovers ended (1/5/15 min): {' / '.join(map(str, load))}.",
        ]
    return lines


def _load(results: dict[str, Any]) -> str:
    load = results["machine"].get("load_avg_1_5_15")
    if not load:
        return ""
    return (
        f"\nLoad average of the machine when the run ended (1/5/15 min): "
        f"{' / '.join(str(x) for x in load)} on {results['machine'].get('cpus')} CPUs."
    )


def section(results: dict[str, Any], img: Path) -> str:
    """Markdown for the top of the document."""
    if not results.get("targets"):
        return ""
    chart = repeats_chart(results, img)
    plan = results["plan"]
    parts = [
        "## Targets (issues 13 and 14): each figure beside its target",
        "",
        *targets_table(results),
        "",
        NOISE.format(
            startup_runs=plan.get("startup_runs", 3),
            repeats=plan.get("latency_repeats", 3),
            previous=f"`{results['compared_with']}`"
            if results.get("compared_with")
            else "none yet",
        ),
        _load(results),
        host_line(results),
        "",
        "### p99 in consecutive runs",
        "",
        *repeats_table(results),
        "",
    ]
    if chart:
        parts += [f"![latency per run](img/{chart})", ""]
    failovers = failover_table(results)
    if failovers:
        parts += ["### Failover: a replica dies, another writes its items", "", *failovers, ""]
    return "\n".join(parts) + "\n"
