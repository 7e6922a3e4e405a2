"""The worker process: hosts one backend and runs batches of test cases sent over a pipe.

Run as ``python -m fuzzer.execution.worker BACKEND [--coverage]``. Messages are frames of one kind byte and a
4-byte length, then the payload. Once started, the worker announces its backend's name and
the package versions it sees (JSON), which may differ from the parent's when it runs under
another Python environment. The parent sends a pickled list of test cases, with numpy values
in a form any numpy loads (``fuzzer.execution.portable``); the worker answers with stage markers
``POSITION:STAGE`` (``*`` when a stage covers the whole batch,
as when a backend compiles the batch as one packed program) so that a crash can be
placed, and one pickled ``(position, Outcome)`` per case as soon as it is known. Anything
the backend prints goes to stderr, which the parent keeps for crash reports.

With ``--coverage``, the backend's compiler code is measured from the end of ``setup`` on
(import-time code does not count), and each Outcome carries the coverage bits new to this
worker (``fuzzer.execution.coverage_bits``); a packed batch's bits arrive with its first Outcome.
"""

from __future__ import annotations

import faulthandler
import json
import os
import pickle
import struct
import sys
from dataclasses import replace
from typing import BinaryIO

from fuzzer.execution import portable

HEADER = struct.Struct("<cI")
READY, FAILED, STAGE, RESULT, CASES = b"Y", b"F", b"S", b"R", b"C"
WHOLE_BATCH = "*"


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


def protocol_output() -> BinaryIO:
    """The pipe to the parent, as a stream of its own; file descriptor 1 then points at
    stderr, so stray prints (Python's or a C library's) never break the protocol."""
    stream = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return stream


def main(argv: list[str]) -> int:
    from fuzzer.execution.backends import load_backend
    from fuzzer.execution.coverage_bits import collector_for

    protocol_out = protocol_output()
    protocol_in = sys.stdin.buffer
    faulthandler.enable()
    try:
        backend = load_backend(argv[0])()
        backend.setup()
    except Exception as error:  # noqa: BLE001 - reported to the parent as one line
        send(protocol_out, FAILED, f"{type(error).__name__}: {error}".encode())
        return 3
    collector = collector_for(type(backend)) if "--coverage" in argv[1:] else None
    if collector is not None:
        collector.start()
    send(protocol_out, READY, json.dumps({"name": backend.name, "versions": backend.versions()}).encode())

    def report_stage(position: int | str, stage) -> None:
        send(protocol_out, STAGE, f"{position}:{stage.value}".encode())

    while (message := receive(protocol_in)) is not None:
        cases = pickle.loads(message[1])
        for position, outcome in backend.execute_batch(cases, report_stage):
            if collector is not None:
                outcome = replace(outcome, coverage=collector.collect())
            send(protocol_out, RESULT, portable.dumps((position, outcome)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
