"""Atomic report files: written to a temporary name in the same folder, fsynced, then renamed.

A reader (a browser, CI uploading the report, a second `bench report`) sees either the old file or the
new one, never half of one; a crash or a full disk leaves the old file and no temporary behind.

    write_text(path, text)                 # str -> UTF-8 file
    write_bytes(path, data)
    with replacing(path) as tmp:           # any writer that takes a path: tmp has path's suffix
        figure.savefig(tmp, format="png")
"""

from __future__ import annotations

import logging
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from bench.fsutil import share

log = logging.getLogger(__name__)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # not every platform opens folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success fsync it and rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    share(fd)  # readable as an open() would make it, not 0600
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def write_bytes(path: str | Path, data: bytes) -> Path:
    with replacing(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_csv(path: str | Path, frame) -> Path:
    """A pandas DataFrame as CSV (no index), atomically."""
    return write_text(path, frame.to_csv(index=False))
