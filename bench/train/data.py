"""Training data for `bench train semanticodec model`: task items as 16 kHz mono clips, cut into seeded windows.

Items come from any task `bench run` takes (`files:DIR`, dataset and HEAR tasks, demo tasks), resolved with
`bench.tasks.load_task`, mono (channel mean) at 16 kHz. A batch is a deterministic function of (seed, step,
rank): the item order is a seeded permutation per epoch, and each window starts at a seeded offset in its item
(clips shorter than a window are zero-padded after their end, as the encoder pads), so a resumed run sees
exactly the batches an uninterrupted one would, with no sampler state to save.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)


class DataTooShortError(ValueError):
    """Less audio than one training window."""


def load_clips(tasks: list[str], limit: int | None = None) -> tuple[list[str], list[np.ndarray]]:
    """(ids, clips): every item of `tasks` (the first `limit` of each) as float32 `[T]` at 16 kHz. Items that
    cannot be read (or are silent, or shorter than one 0.16 s patch) are skipped with a warning."""
    from bench.tasks import load_task
    from bench.train.features import prepare_audio

    ids, clips = [], []
    for name in tasks:
        items = list(load_task(name).items())
        for item in items[: limit] if limit else items:
            try:
                clips.append(prepare_audio(item))
            except Exception as err:  # noqa: BLE001 - one bad file never stops a run (house habit 5)
                log.warning("skipped %s: %s", item.id, err)
                continue
            ids.append(f"{name}/{item.id}")
    return ids, clips


@dataclass(frozen=True)
class Batch:
    wave: np.ndarray  # [B, window] float32, 16 kHz
    lengths: list[int]  # valid samples per row
    keys: list[tuple[int, int]]  # (clip index, start sample): what the frozen outputs depend on


class WindowSampler:
    """Seeded windows of `window` samples from `clips`; `batch(step, rank)` -> `Batch` of `batch_size` rows.

    `hop` quantises window starts (default one 0.16 s patch, 2560 samples): fewer distinct crops, so the
    frozen AudioMAE/VAE outputs can be cached per (clip, start)."""

    def __init__(self, clips: list[np.ndarray], window: int, batch_size: int, seed: int = 0, world: int = 1,
                 hop: int = 2560, ids: list[str] | None = None):
        if not clips:
            raise DataTooShortError("no readable audio in the given tasks; check --task (and --limit)")
        total = sum(len(c) for c in clips)
        if total < window:
            raise DataTooShortError(
                f"the training audio totals {total / 16000:.2f} s, less than one {window / 16000:.2f} s window; "
                "give more or longer clips (--task)")
        self.clips, self.window, self.batch_size = clips, int(window), int(batch_size)
        self.seed, self.world, self.hop = int(seed), int(world), max(1, int(hop))
        self.ids = ids or [str(i) for i in range(len(clips))]

    def _order(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch, 1]).permutation(len(self.clips))

    def _start(self, epoch: int, clip: int) -> int:
        spare = len(self.clips[clip]) - self.window
        if spare <= 0:
            return 0
        n = spare // self.hop + 1
        return int(np.random.default_rng([self.seed, epoch, 2, clip]).integers(n)) * self.hop

    def batch(self, step: int, rank: int = 0) -> Batch:
        """Rows `(step * world + rank) * B ...` of the endless seeded stream of windows."""
        n = len(self.clips)
        first = (int(step) * self.world + int(rank)) * self.batch_size
        wave = np.zeros((self.batch_size, self.window), dtype=np.float32)
        lengths, keys = [], []
        for row, k in enumerate(range(first, first + self.batch_size)):
            epoch, pos = divmod(k, n)
            clip = int(self._order(epoch)[pos])
            start = self._start(epoch, clip)
            piece = self.clips[clip][start: start + self.window]
            wave[row, : len(piece)] = piece
            lengths.append(len(piece))
            keys.append((clip, start))
        return Batch(wave, lengths, keys)

    def fixed(self, n: int) -> Batch:
        """The first `n` clips from their start: the validation windows."""
        n = min(n, len(self.clips))
        wave = np.zeros((n, self.window), dtype=np.float32)
        lengths = []
        for i in range(n):
            piece = self.clips[i][: self.window]
            wave[i, : len(piece)] = piece
            lengths.append(len(piece))
        return Batch(wave, lengths, [(i, 0) for i in range(n)])
