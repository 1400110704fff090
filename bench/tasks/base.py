"""Tasks are lists of items; an item is one clip with its transcript or label.

Audio is loaded lazily and checked on access, so one unreadable file becomes one recorded failure
(naming the item) instead of a crash while listing the task.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

DOMAINS = ("speech", "music", "sound")


@dataclass(frozen=True)
class TaskMeta:
    name: str
    domain: str  # "speech", "music", "sound" or "mixed" (then each item says)
    description: str
    licence: str = ""
    source: str = ""


@dataclass
class Item:
    """One clip. `audio` is float32 `[C, T]` at `sample_rate`, read from `path` on first access."""

    id: str
    domain: str
    path: Path | None = None
    text: str | None = None
    label: str | None = None
    sample_rate: int | None = None
    info: dict[str, Any] = field(default_factory=dict)
    _audio: np.ndarray | None = field(default=None, repr=False)
    # The longest item a run accepts (seconds; None: any). Checked from the file's header before decoding,
    # so a 2-hour file is one clear failure, not 26 GB of memory. The runner sets it (--max-seconds).
    max_seconds: float | None = field(default=None, repr=False, compare=False)

    @property
    def audio(self) -> np.ndarray:
        if self._audio is None:
            from bench import audio as au

            if self.path is None:
                raise au.AudioError(f"item {self.id}: no audio and no path")
            try:
                data, sr = au.load(self.path, max_seconds=self.max_seconds)
            except au.AudioError as err:
                raise au.AudioError(f"item {self.id}: {err}") from None
            self._audio, self.sample_rate = data, sr
        return self._audio

    def load(self) -> tuple[np.ndarray, int]:
        data = self.audio
        assert self.sample_rate is not None
        return data, self.sample_rate

    def signature(self) -> str:
        """What the item's content is, cheaply: file size and modification time (ns) for a file, a digest
        of the samples for in-memory audio. Part of every stored result's identity: a file replaced under
        the same name gets new results, never its old ones."""
        if self.path is not None:
            try:
                st = os.stat(self.path)
            except OSError:
                return "unreadable"
            return f"{st.st_size}:{st.st_mtime_ns}"
        if self._audio is not None:
            h = hashlib.sha256(np.ascontiguousarray(self._audio, dtype=np.float32).tobytes())
            h.update(f"{self._audio.shape}:{self.sample_rate}".encode())
            return "sha256:" + h.hexdigest()[:24]
        return "none"

    def release(self) -> None:
        """Drop the decoded audio (keeps memory flat over long tasks)."""
        if self.path is not None:
            self._audio = None


class Task:
    """Base class: subclasses set `meta` and implement `items()`."""

    meta: TaskMeta

    def items(self) -> list[Item]:
        raise NotImplementedError

    @property
    def name(self) -> str:
        return self.meta.name

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items())

    def __len__(self) -> int:
        return len(self.items())

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.meta.name}>"
