"""The platform's own answer: time-boxed ACW, which stamps ``ININ-WRAP-UP-TIMEOUT``.

No client at all. The run uses a copy of the demo org in which every watched queue is
``MANDATORY_TIMEOUT`` with the same ``timeoutMs`` (what a user relying on the platform sets), and
the same traffic. Its latency is the timeout by construction; the question is what the code means:
the same literal for every queue, never the queue's own default.
"""

from __future__ import annotations

from bench.harness import Emulator, Setup


class BuiltinContender:
    name = "built-in timeout"

    async def start(self, emu: Emulator, setup: Setup) -> None:
        return None

    async def stop(self) -> None:
        return None
