"""Token statistics of code streams: how much of each codebook a codec uses, and what its tokens would cost
with an ideal entropy coder.

Pure numpy; no model, no store. The report builds its table from the codes the run cached
(bench/reports/tokens.py). Definitions, per stream (codebook) k of codes `[K, N]`:

- used share: distinct entries seen / codebook size V_k (1 / V_k for a constant stream, 1 for a stream that
  visits every entry);
- entropy H_k (bits per code): the plug-in (maximum-likelihood) estimate -sum_v p_v log2 p_v from the pooled
  counts of every frame of every item (it is biased low when there are few frames per entry: the table
  shows the frames counted beside it); perplexity 2^H_k (the number of equally likely entries with the
  same entropy);
- raw bitrate: log2(V_k) x frame rate, what fixed-length codes cost; entropy-coded bitrate: H_k x frame
  rate, what an ideal lossless coder of independent, identically distributed symbols with these
  frequencies would need (a coder exploiting context between frames or streams could need less).

Frame rate: code frames per second of audio (the caller passes the measured one: frames / seconds).
Negative codes are padding (e.g. SemantiCodec's -1 past an item's end) and are not counted.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Iterable, Sequence

import numpy as np


@dataclass(frozen=True)
class StreamStats:
    """Statistics of one code stream (codebook). size None: codebook size unknown (used share, raw NaN)."""

    codebook: int
    size: int | None
    frames: int  # codes counted (padding excluded)
    distinct: int
    used: float  # distinct / size, NaN when size is unknown
    entropy: float  # bits per code
    perplexity: float
    raw_bps: float  # log2(size) x frame rate
    entropy_bps: float  # entropy x frame rate

    def to_dict(self) -> dict:
        return asdict(self)


def entropy_bits(counts: np.ndarray) -> float:
    """Shannon entropy in bits of the distribution given by non-negative `counts` (0 for no counts)."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        return 0.0
    p = counts[counts > 0] / total
    return float(max(0.0, -(p * np.log2(p)).sum()))


def stream_counts(codes: Iterable[np.ndarray], k: int) -> np.ndarray:
    """Pooled histogram of stream k over items: each item's codes `[K, N_i]` (or `[1, K, N_i]`)."""
    total = np.zeros(0, dtype=np.int64)
    for item in codes:
        row = _as_streams(item)[k]
        row = row[row >= 0]
        if row.size:
            c = np.bincount(row.astype(np.int64))
            if c.size > total.size:
                c[: total.size] += total
                total = c
            else:
                total[: c.size] += c
    return total


def stream_stats(counts: np.ndarray, size: int | None, frame_rate: float, codebook: int = 0) -> StreamStats:
    """StreamStats of one stream from its histogram `counts` (entry -> occurrences) at `frame_rate` frames/s."""
    counts = np.asarray(counts, dtype=np.int64)
    frames = int(counts.sum())
    distinct = int((counts > 0).sum())
    h = entropy_bits(counts)
    size = int(size) if size else None
    return StreamStats(
        codebook=codebook, size=size, frames=frames, distinct=distinct,
        used=distinct / size if size else float("nan"), entropy=h, perplexity=float(2.0 ** h),
        raw_bps=math.log2(size) * frame_rate if size else float("nan"), entropy_bps=h * frame_rate)


def codebook_stats(codes: Sequence[np.ndarray] | np.ndarray, sizes: Sequence[int] | None,
                   frame_rate: float) -> list[StreamStats]:
    """Statistics of every stream, pooled over items.

    codes: one array `[K, N]` (or `[1, K, N]`), or a list of them (one per item, N may differ; K may not).
    sizes: codebook size of each stream (len K), or None when unknown. frame_rate: frames per second.
    """
    items = [codes] if isinstance(codes, np.ndarray) else list(codes)
    items = [_as_streams(c) for c in items]
    if not items:
        return []
    ks = {c.shape[0] for c in items}
    if len(ks) != 1:
        raise ValueError(f"items have different numbers of code streams: {sorted(ks)}")
    k = ks.pop()
    if sizes is not None and len(sizes) != k:
        raise ValueError(f"{len(sizes)} codebook sizes given for {k} code streams")
    return [stream_stats(stream_counts(items, i), sizes[i] if sizes is not None else None, frame_rate, i)
            for i in range(k)]


def _as_streams(codes: np.ndarray) -> np.ndarray:
    """`[K, N]` or `[1, K, N]` integer codes -> `[K, N]`."""
    codes = np.asarray(codes)
    if codes.ndim == 3 and codes.shape[0] == 1:
        codes = codes[0]
    if codes.ndim != 2:
        raise ValueError(f"expected codes [K, N] (or [1, K, N]), got shape {codes.shape}")
    if codes.size and not np.issubdtype(codes.dtype, np.integer):
        if not np.all(np.equal(np.mod(codes, 1), 0)):
            raise ValueError("codes must be whole numbers")
        codes = codes.astype(np.int64)
    return codes
