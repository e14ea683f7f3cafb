"""The emulator's ground truth, read from outside: what really happened to every participant.

A child emulator process and its control plane (:mod:`groundtruth.emulator`) and the one scorer of
that truth (:mod:`groundtruth.score`), shared by ``wrapupd demo``, the fault matrix, the benchmarks
and the end-to-end tests so that "missed", "late", "doubled", "overwritten" and "stray" mean one
thing everywhere. It imports neither the daemon nor the emulator: it speaks HTTP to the emulator
and reads the JSON the emulator's control plane returns.
"""
