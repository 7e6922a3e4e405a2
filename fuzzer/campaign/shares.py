"""Each lane's share of the machine: its CPU seconds, measured, and whether it is ahead of its weight.

A campaign's lanes run side by side (``fuzzer.campaign.driver``): the fast lane, and one lane
per slow compiler. Left to the kernel, the lane with the most processes and the shortest
tests takes most of the cores. Instead each lane is metered (CPU seconds of its workers, the
children they reaped, its case builder and its thread in the campaign's process, read from
``/proc``), and a lane that has used more than its weight's share waits before its next batch
until the others catch up. Nobody waits while a core is idle, nor for a lane that is not using
CPU (a hang that sleeps), so the split holds on a busy machine and costs nothing on an idle one.
"""

from __future__ import annotations

import os
import threading
from collections import Counter, deque
from typing import Callable, Iterable, Mapping

TICKS = os.sysconf("SC_CLK_TCK")
Source = tuple[str, int]  # ("process", pid) or ("thread", native id of a thread of this process)


def parse_lane_weights(text: str) -> dict[str, float]:
    """``fast=2,tvm=1,inductor=1`` as {name: weight}; ValueError naming what is wrong."""
    weights: dict[str, float] = {}
    for item in (part.strip() for part in text.split(",")):
        name, equals, number = (piece.strip() for piece in item.partition("="))
        try:
            weight = float(number)
        except ValueError:
            weight = float("nan")
        if not (equals and name and weight > 0 and weight != float("inf")):
            raise ValueError(f"expected LANE=WEIGHT,... with positive weights (e.g. fast=2,tvm=1,inductor=1), "
                             f"got {item!r}")
        if name in weights:
            raise ValueError(f"{name} is given two weights; give each lane one")
        weights[name] = weight
    return weights


def cpu_seconds(source: Source) -> float | None:
    """CPU seconds a process (with the children it has reaped) or a thread of this process
    has used; None once it is gone."""
    kind, ident = source
    path = f"/proc/{ident}/stat" if kind == "process" else f"/proc/self/task/{ident}/stat"
    try:
        with open(path) as stat:
            fields = stat.read().rsplit(")", 1)[1].split()  # after the command, which may hold spaces
    except (OSError, IndexError):
        return None
    # utime, stime, then (a process's own) cutime, cstime: fields 14-17 of proc(5)
    return sum(int(value) for value in fields[11:15 if kind == "process" else 13]) / TICKS


def idle_seconds() -> float:
    """CPU seconds the machine's cores have been idle since boot (0 where /proc/stat is missing)."""
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()
    except OSError:
        return 0.0
    return (int(fields[4]) + int(fields[5])) / TICKS  # idle, iowait


class CpuMeter:
    """CPU seconds of a changing set of processes and threads (workers restart under new ids),
    counted from when each joined; a source that ends stops counting at its last sample."""

    def __init__(self, sources: Callable[[], Iterable[Source]]) -> None:
        self.sources = sources
        self.seconds = 0.0
        self._last: dict[Source, float] = {}
        self.sample(count_new=False)  # what ran before the meter started is not the lane's share

    def sample(self, count_new: bool = True) -> float:
        seen = {}
        for source in self.sources():
            if (now := cpu_seconds(source)) is None:
                continue
            previous = self._last.get(source)
            if previous is not None:
                self.seconds += max(0.0, now - previous)
            elif count_new:
                self.seconds += now
            seen[source] = now
        self._last = seen
        return self.seconds


class FairShare:
    """Whether a lane is ahead of its weight's share of the machine.

    ``record`` gets each lane's CPU seconds so far and the machine's idle seconds, a few times a
    second. Lane A is ahead when, counting every lane's seconds in units of its share, A has used
    more than ``SLACK`` seconds more than a running lane B that is busy (used ``BUSY`` cores of
    late), and the machine has not had ``SPARE`` idle cores of late.
    """

    WINDOW = 2.0  # seconds of samples that recent use is measured over
    SLACK = 2.0  # seconds of the whole campaign's CPU that a lane may run ahead
    SPARE = 0.5  # idle cores at which no lane waits
    BUSY = 0.05  # cores a lane must use to be waited for

    def __init__(self, weights: Mapping[str, float]) -> None:
        total = sum(weights.values())
        self.shares = {name: weight / total for name, weight in weights.items()}
        self.used = dict.fromkeys(weights, 0.0)
        self._running: Counter = Counter()
        self._samples: deque[tuple[float, dict[str, float], float]] = deque()
        self._lock = threading.Lock()

    def start(self, name: str) -> None:
        with self._lock:
            self._running[name] += 1

    def stop(self, name: str) -> None:
        """A lane of ``name`` has ended: nobody waits for it any more."""
        with self._lock:
            self._running[name] -= 1

    def record(self, now: float, used: Mapping[str, float], idle: float) -> None:
        """Lanes' CPU seconds and the machine's idle seconds at monotonic time ``now``."""
        with self._lock:
            self.used = {**self.used, **used}
            self._samples.append((now, self.used, idle))
            while len(self._samples) > 2 and now - self._samples[1][0] >= self.WINDOW:
                self._samples.popleft()

    def ahead(self, name: str) -> bool:
        with self._lock:
            if len(self._samples) < 2:
                return False
            (then, used_then, idle_then), (now, used, idle) = self._samples[0], self._samples[-1]
            span = now - then
            if span <= 0 or (idle - idle_then) / span >= self.SPARE:
                return False
            mine = used[name] / self.shares[name]
            return any(used[other] / self.shares[other] < mine - self.SLACK
                       and (used[other] - used_then[other]) / span >= self.BUSY
                       for other, running in self._running.items() if running > 0 and other != name)
