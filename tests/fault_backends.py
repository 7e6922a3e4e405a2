"""Backends that misbehave on purpose, to prove that isolation contains them.

Each behaves like the ONNX reference evaluator, except on tests whose index is
``TRIGGER_EVERY``-th, where it segfaults, aborts, hangs, eats memory, exits, or
returns a wrong answer; ``BrokenSetup`` cannot even start. Load them as
``tests.fault_backends:ClassName``.
"""

from __future__ import annotations

import ctypes
import os
import time

import numpy as np

from fuzzer.execution.backends.onnx_reference import OnnxReference
from fuzzer.execution.outcome import Stage

TRIGGER_EVERY = 4


class Faulty(OnnxReference):
    description = "reference evaluator that misbehaves on every fourth test"
    role = "target"  # a compiler under test that happens to compute like the reference
    family = "faulty"

    def prepare(self, case):
        self.triggered = case.index % TRIGGER_EVERY == 1
        return super().prepare(case)

    def run(self, evaluator, inputs):
        if self.triggered:
            return self.misbehave(super().run(evaluator, inputs))
        return super().run(evaluator, inputs)

    def misbehave(self, outputs):
        raise NotImplementedError


class Segfault(Faulty):
    name = "fault-segfault"

    def misbehave(self, outputs):
        ctypes.string_at(0)


class Abort(Faulty):
    name = "fault-abort"

    def misbehave(self, outputs):
        os.abort()


class Hang(Faulty):
    name = "fault-hang"

    def misbehave(self, outputs):
        while True:
            time.sleep(0.01)


class MemoryBomb(Faulty):
    name = "fault-memory"

    def misbehave(self, outputs):
        hoard = []
        while True:
            hoard.append(np.ones(16 << 20))  # 128 MiB written at memset speed: resident at once


class Exit(Faulty):
    name = "fault-exit"

    def misbehave(self, outputs):
        os._exit(7)


class WrongAnswer(Faulty):
    name = "fault-wrong"

    def misbehave(self, outputs):
        # numbers off by one, booleans flipped, bfloat16 (numpy kind "V") too
        return [o + 1 if o.dtype.kind in "fiu" else ~o if o.dtype == bool
                else (o.astype(np.float32) + 1).astype(o.dtype) for o in outputs]


class AlwaysWrong(WrongAnswer):
    name = "fault-always-wrong"

    def prepare(self, case):
        prepared = super().prepare(case)
        self.triggered = True
        return prepared


class SlowAlwaysWrong(AlwaysWrong):
    """Claims to compile slowly, so a campaign runs it on a sample of tests in its own lane."""

    name = "fault-slow-wrong"
    timeout_factor = 2.0


class SlowOtherAlwaysWrong(SlowAlwaysWrong):
    """A second slow compiler: a lane of its own beside ``SlowAlwaysWrong``'s."""

    name = "fault-slow-other"
    family = "slow-other"


class PackedFault(OnnxReference):
    """Compiles a batch of several cases as one program (whole-batch stages, as aot-eager
    does), which misbehaves; each case alone is fine."""

    description = "reference evaluator whose packed batches misbehave"
    role = "target"
    family = "faulty"
    batch_size = 4

    def execute_batch(self, cases, report_stage):
        if len(cases) > 1:
            report_stage("*", Stage.COMPILE)
            self.misbehave()
        yield from super().execute_batch(cases, report_stage)

    def misbehave(self):
        raise NotImplementedError


class SlowPack(PackedFault):
    """A packed compile that never ends (Dynamo on a large packed program)."""

    name = "fault-slow-pack"

    def misbehave(self):
        while True:
            time.sleep(0.01)


class CrashingPack(PackedFault):
    """A packed compile that segfaults."""

    name = "fault-crashing-pack"

    def misbehave(self):
        ctypes.string_at(0)


class BrokenSetup(OnnxReference):
    """A compiler whose worker cannot start (its library is missing)."""

    name = "broken-setup"

    def setup(self) -> None:
        raise RuntimeError("libcompiler.so: cannot open shared object file")
