"""What machine a number was measured on: benchmarks print it, and every run stores it (`runner.environment`)."""

from __future__ import annotations

import platform
from pathlib import Path


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
