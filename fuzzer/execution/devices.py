"""Cheap detection of accelerators, without importing any compiler."""

from __future__ import annotations

import os
import shutil
from functools import cache


@cache
def gpu_present() -> bool:
    """Whether an NVIDIA GPU is visible (device nodes or the driver's tool)."""
    return os.path.exists("/dev/nvidiactl") or shutil.which("nvidia-smi") is not None
