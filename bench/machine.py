"""What machine a number was measured on: benchmarks print it, and every run stores it (`runner.environment`)."""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path
from typing import Any


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, e.g. 'AMD EPYC' or 'Intel(R) Xeon(R) Platinum 8480+' (speed-ups differ
    between them); elsewhere what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def timing_context(device: str = "cpu", batch: int = 1) -> dict[str, Any]:
    """Where and how a codec call was timed, stored beside its encode/decode seconds (the `encodes` row's
    `timed_on`): CPU model, logical CPUs, torch threads, the device class (with the GPU's name on CUDA), the
    items in the call (a batch's time is shared among its items) and the 1-minute load average (timings taken
    with the CPUs busy with other work read slow)."""
    out: dict[str, Any] = {"cpu": cpu_model(), "cpus": os.cpu_count(), "device": device, "batch": int(batch)}
    try:
        import torch

        out["threads"] = torch.get_num_threads()
        if device == "cuda" and torch.cuda.is_available():
            out["gpu"] = torch.cuda.get_device_name()
    except ImportError:
        pass
    try:
        out["load"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    return out
