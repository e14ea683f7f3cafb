"""How fast the machine is at the moment a figure is taken: an interpreter loop and a run of fsyncs.

The benchmark machine is a two-core virtual machine whose speed moves with its neighbours: within
one hour the same pure-Python loop has taken from 57 to 180 ms, with the load average and the
steal counter hardly moving. The latency tail and the start-up are sums of interpreter work and of
one fsync (the ``writing`` mark), so a probe of each is taken right before the figure. A slow
reading marks a slow machine; a usual one does not prove a quiet machine (it slows down for seconds
at a time, and in ways a tight loop does not feel). A probe takes about half a second on a quiet
machine; it is a reading printed beside the figures, never a correction and never a verdict.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

LOOP_ADDITIONS = 1_000_000
LOOP_PASSES = 5
FSYNCS = 50
FSYNC_SPACING_S = 0.002  # like the marks of a few writes a second, not one long burst
BLOCK = b"w" * 4096


def interpreter_loop_ms() -> float:
    """One pass of a fixed pure-Python loop, in milliseconds."""
    started = time.perf_counter()
    total = 0
    for n in range(LOOP_ADDITIONS):
        total += n
    return (time.perf_counter() - started) * 1000


def fdatasync_ms(directory: Path, count: int = FSYNCS) -> list[float]:
    """``count`` 4 KiB overwrites, each made durable with ``fdatasync``, in milliseconds each."""
    path = directory / f"host-probe-{os.getpid()}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, BLOCK * 16)
        os.fsync(fd)  # the file's size is on disk: what follows only overwrites
        times = []
        for n in range(count):
            os.pwrite(fd, BLOCK, (n % 16) * len(BLOCK))
            started = time.perf_counter()
            os.fdatasync(fd)
            times.append((time.perf_counter() - started) * 1000)
            time.sleep(FSYNC_SPACING_S)
        return times
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)


def probe(directory: Path, label: str) -> dict[str, Any]:
    """The machine's speed now: the loop's median pass and the fsyncs' median and worst."""
    loops = [interpreter_loop_ms() for _ in range(LOOP_PASSES)]
    syncs = sorted(fdatasync_ms(directory))
    return {
        "label": label,
        "loop_ms": round(statistics.median(loops), 1),
        "fdatasync_p50_ms": round(statistics.median(syncs), 2),
        "fdatasync_max_ms": round(syncs[-1], 2),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def summary(probes: list[dict[str, Any]]) -> dict[str, Any]:
    """The sitting's probes reduced: the loop's fastest, median and slowest, the worst fsync."""
    loops = [p["loop_ms"] for p in probes]
    return {
        "probes": len(probes),
        "loop_ms_min": min(loops),
        "loop_ms_median": round(statistics.median(loops), 1),
        "loop_ms_max": max(loops),
        "fdatasync_max_ms": max(p["fdatasync_max_ms"] for p in probes),
    }
