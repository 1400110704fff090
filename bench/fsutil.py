"""File modes for files written through a temporary name.

`tempfile.mkstemp` creates files readable by their owner only (0600) whatever the umask, so a report, a cached
output or a checkpoint renamed into place from one stays private, and a colleague or a web server cannot read
a shared `bench-out/`. `share(fd)` gives the file the mode an ordinary `open()` would (0666 less the umask).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path


@functools.lru_cache(maxsize=1)
def _umask() -> int:
    """The process umask, read once: from /proc on Linux (no change of process state), else by setting it and
    putting it straight back (the only portable way)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def share(fd: int) -> None:
    """Give the open file `fd` the mode `open()` would have created it with (0666 & ~umask)."""
    try:
        os.fchmod(fd, 0o666 & ~_umask())
    except OSError:  # a filesystem without modes (some network mounts): leave it as it is
        pass
