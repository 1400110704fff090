"""File modes for files written through a temporary name.

`tempfile.mkstemp` creates files readable by their owner only (0600) whatever the umask, so a report, a cached
output or a checkpoint renamed into place from one stays private, and a colleague or a web server cannot read
a shared `bench-out/`. `share(fd)` gives the file the mode an ordinary `open()` would (0666 less the umask).
"""

from __future__ import annotations

import os


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


def share(fd: int) -> None:
    """Give the open file `fd` the mode `open()` would have created it with (0666 & ~umask)."""
    try:
        os.fchmod(fd, 0o666 & ~_umask())
    except OSError:  # a filesystem without modes (some network mounts): leave it as it is
        pass
