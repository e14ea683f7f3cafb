"""Benchmarks: wrapupd against what users would do instead, on the same emulator traffic.

Run with ``python -m bench [--full] [--out DIR]`` (``make bench``). Never part of ``make test``;
``tests/bench_smoke`` only checks that the harness runs on a tiny load.
"""
