"""Content digests of weight (and model) files, hashed once per file version.

`file_sha256(path)` is the sha256 of a file's bytes, read in 1 MiB blocks. A multi-GB checkpoint takes
seconds to hash, so each digest is remembered by the file's identity on disk - resolved path, size,
mtime_ns, ctime_ns and inode - in this process and in a small JSON file under the bench home
(`$BENCH_HOME/digests/sha256.json`, default `~/.cache/bench`), so the next process does not read the file
again. ctime is part of the key because it changes on every write and cannot be set back (`cp -p` or
`touch -r` can restore an mtime, not a ctime). A cache that cannot be read or written only costs a re-hash.

`files_digest(paths)` is the digest codecs put in their fingerprints: one sha256 over each file's name and
content digest, in name order.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Iterable

from bench.fsutil import share

log = logging.getLogger(__name__)

CACHE_VERSION = 1
_MEMORY: dict[str, str] = {}  # cache key -> hex digest, for this process


def cache_file() -> Path:
    """`<bench home>/digests/sha256.json` (the home as the weights cache finds it)."""
    from bench.codecs.weights import bench_home

    return bench_home() / "digests" / "sha256.json"


def _key(path: Path) -> tuple[Path, str, os.stat_result]:
    resolved = path.expanduser().resolve()
    st = resolved.stat()
    return resolved, f"{resolved}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}|{st.st_ino}", st


def _read_cache(where: Path) -> dict[str, str]:
    try:
        data = json.loads(where.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION or not isinstance(data.get("files"), dict):
        return {}
    return {str(k): str(v) for k, v in data["files"].items()}


def _write_cache(where: Path, key: str, digest: str) -> None:
    """Add one entry: re-read, merge (another process may have added entries), write atomically."""
    try:
        where.parent.mkdir(parents=True, exist_ok=True)
        files = _read_cache(where)
        files = {k: v for k, v in files.items() if Path(k.split("|", 1)[0]).exists()}  # forget deleted files
        files[key] = digest
        fd, tmp = tempfile.mkstemp(dir=where.parent, prefix=".sha256-", suffix=".json")
        share(fd)  # readable as an open() would make it, not 0600
        with os.fdopen(fd, "w") as f:
            json.dump({"version": CACHE_VERSION, "files": files}, f, indent=0, sort_keys=True)
        os.replace(tmp, where)
    except OSError as err:  # read-only home: the digest is recomputed by the next process
        log.debug("cannot record the digest of %s in %s: %s", key.split("|", 1)[0], where, err)


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    """The sha256 of a file's bytes, read now (no cache)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of the file's contents, cached by (path, size, mtime_ns, ctime_ns, inode) in memory and on disk."""
    resolved, key, _ = _key(Path(path))
    hit = _MEMORY.get(key)
    if hit is not None:
        return hit
    where = cache_file()
    hit = _read_cache(where).get(key)
    if hit is None:
        log.info("hashing %s (once per file version)", resolved)
        hit = sha256_of(resolved)
        _write_cache(where, key, hit)
    _MEMORY[key] = hit
    return hit


def files_digest(paths: Iterable[str | Path]) -> str:
    """One sha256 over the files' names and content digests, in name order (same value as
    `bench.codecs.weights.weights_digest`)."""
    h = hashlib.sha256()
    for p in sorted((Path(q) for q in paths), key=lambda q: q.name):
        h.update(p.name.encode())
        h.update(file_sha256(p).encode())
    return h.hexdigest()
