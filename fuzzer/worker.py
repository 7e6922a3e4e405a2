"""The worker process: hosts one backend and runs test cases sent over a pipe.

Run as ``python -m fuzzer.worker BACKEND``. Messages are frames of one kind byte and a
4-byte length, then the payload. The parent sends pickled test cases; the worker answers
with stage markers (so a crash can be placed in its stage) and one pickled Outcome each.
Anything the backend prints goes to stderr, which the parent keeps for crash reports.
"""

from __future__ import annotations

import faulthandler
import os
import pickle
import struct
import sys
import time
import traceback
from typing import BinaryIO

import numpy as np

from fuzzer.outcome import Outcome, Stage, Status, TestCase

HEADER = struct.Struct("<cI")
READY, FAILED, STAGE, RESULT, CASE = b"Y", b"F", b"S", b"R", b"C"
STAGE_CODES = {stage: stage.value.encode() for stage in Stage}


def send(stream: BinaryIO, kind: bytes, payload: bytes = b"") -> None:
    data = memoryview(HEADER.pack(kind, len(payload)) + payload)
    while data:  # unbuffered streams may write only part
        written = stream.write(data)
        data = data[written if written is not None else 0:]
    stream.flush()


def read_exact(stream: BinaryIO, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def receive(stream: BinaryIO) -> tuple[bytes, bytes] | None:
    header = read_exact(stream, HEADER.size)
    if header is None:
        return None
    kind, size = HEADER.unpack(header)
    payload = read_exact(stream, size)
    return None if payload is None else (kind, payload)


def execute(backend, case: TestCase, report_stage) -> Outcome:
    """Run ``case`` through prepare, compile and run; never raises."""
    started = time.perf_counter()
    stage = Stage.PREPARE
    try:
        report_stage(stage)
        prepared = backend.prepare(case)
        stage = Stage.COMPILE
        report_stage(stage)
        compiled = backend.compile(prepared)
        stage = Stage.RUN
        report_stage(stage)
        results = backend.run(compiled, case.inputs)
        names = list(case.output_types())
        outputs = {name: np.asarray(result) for name, result in zip(names, results)}
        if len(results) != len(names):
            raise RuntimeError(f"backend returned {len(results)} outputs, the graph has {len(names)}")
        return Outcome(backend.name, Status.OK, Stage.RUN, outputs,
                       seconds=time.perf_counter() - started)
    except MemoryError as error:
        return Outcome(backend.name, Status.OOM, stage, error_type="MemoryError", message=str(error),
                       seconds=time.perf_counter() - started)
    except Exception as error:  # noqa: BLE001 - every backend failure becomes an Outcome
        status = Status.UNSUPPORTED if backend.is_unsupported(error) else Status.ERROR
        return Outcome(backend.name, status, stage, error_type=type(error).__name__,
                       message=str(error)[:4000], traceback=traceback.format_exc()[-6000:],
                       seconds=time.perf_counter() - started)


def main(argv: list[str]) -> int:
    from fuzzer.backends import load_backend

    protocol_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not break the protocol
    protocol_in = sys.stdin.buffer
    faulthandler.enable()
    try:
        backend = load_backend(argv[0])()
        backend.setup()
    except Exception as error:  # noqa: BLE001 - reported to the parent as one line
        send(protocol_out, FAILED, f"{type(error).__name__}: {error}".encode())
        return 3
    send(protocol_out, READY, backend.name.encode())

    def report_stage(stage: Stage) -> None:
        send(protocol_out, STAGE, STAGE_CODES[stage])

    while (message := receive(protocol_in)) is not None:
        case = pickle.loads(message[1])
        outcome = execute(backend, case, report_stage)
        send(protocol_out, RESULT, pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
