"""Each torch.compile worker compiles into a kernel cache of its own: a worker killed while
writing a kernel's library must not leave it for another worker to load."""

from __future__ import annotations

import os
import subprocess
import sys

from fuzzer.execution.backends.torch_compile import CACHE_PREFIX, private_cache_dir


def test_each_process_gets_its_own_cache_and_dead_processes_lose_theirs(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True)
    dead = tmp_path / f"{CACHE_PREFIX}{finished.stdout.strip()}-abc"
    alive = tmp_path / f"{CACHE_PREFIX}{os.getppid()}-def"  # the process that runs the tests' runner
    for directory in (dead, alive):
        (directory / "zb").mkdir(parents=True)
        (directory / "zb" / "main.so").write_bytes(b"\x7fELF truncated")
    first, second = private_cache_dir(tmp_path), private_cache_dir(tmp_path)
    assert first != second and os.path.isdir(first) and os.path.isdir(second)
    assert os.path.basename(first).startswith(f"{CACHE_PREFIX}{os.getpid()}-")
    assert not dead.exists() and alive.exists()
