"""The token-statistics table of a workspace: per neural codec, task and codebook, the share of entries used,
entropy, perplexity, and the entropy-coded bitrate beside the raw one (definitions: bench/metrics/tokens.py).

Read from what the run already stored: each item's cached `.npz` (its `codes`, `[1, K, N_i]`) and its
`encodes` row (seconds, measured bits/s); codebook sizes from the codec's stored meta (`codebook_sizes`).
Classic codecs (bytes, not tokens: no `codebook_sizes`, no weights) and packet-loss channel rows (the same
codes as the plain codec) are left out. Cached files are only read, never removed (reports are read-only).

Columns of `token_frame`: codec (label), task, codebook (0..K-1, or "all" for the codec's total row), size,
used_pct, entropy_bits, perplexity, raw_kbps, entropy_kbps, frames, items, random_weights, fingerprint.
The "all" row's raw_kbps is the measured bitrate of the stored bitstreams (as in every other table) and its
entropy_kbps the sum over codebooks; its entropy_bits is the sum of the streams' entropies (bits per frame).
"""

from __future__ import annotations

import logging
import math
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from bench.metrics.tokens import codebook_stats
from bench.store import REFERENCE, ResultStore

log = logging.getLogger(__name__)

COLUMNS = ["codec", "task", "codebook", "size", "used_pct", "entropy_bits", "perplexity", "raw_kbps",
           "entropy_kbps", "frames", "items", "random_weights", "fingerprint"]


def is_token_codec(meta: dict) -> bool:
    """Does a stored codec meta describe a codec that sends tokens (not bytes), coded without a channel?"""
    if meta.get("channel"):
        return False
    if meta.get("codebook_sizes"):
        return True
    # a neural codec that does not declare its codebook sizes: statistics without used share / raw rate
    return bool(meta.get("needs_weights") or meta.get("random_weights"))


def _read_codes(path: str | Path) -> np.ndarray | None:
    """Codes `[K, N]` of one cached item, or None when the file is absent or unreadable (left as it is)."""
    try:
        with np.load(path) as z:
            codes = np.asarray(z["codes"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        log.info("token statistics: cannot read %s (%s); item left out", path, err)
        return None
    if codes.ndim == 3 and codes.shape[0] == 1:
        codes = codes[0]
    return codes if codes.ndim == 2 and codes.size else None


def token_frame(store: ResultStore, fingerprints: set[str] | None = None) -> pd.DataFrame:
    """Token statistics per (codec, task, codebook) for the token codecs among `fingerprints` (None: all)."""
    codecs = {fp: (label, meta) for fp, label, meta in store.codec_rows()
              if fp != REFERENCE and (fingerprints is None or fp in fingerprints) and is_token_codec(meta)}
    if not codecs:
        return pd.DataFrame(columns=COLUMNS)
    enc = store.encodes_frame()
    enc = enc[enc.fingerprint.isin(list(codecs)) & enc.path.notna()]
    rows = []
    for (fp, task), part in enc.groupby(["fingerprint", "task"], sort=True):
        label, meta = codecs[fp]
        items, seconds, bits = [], 0.0, 0.0
        for r in part.itertuples(index=False):
            codes = _read_codes(r.path)
            if codes is None or not (r.seconds and r.seconds > 0):
                continue
            items.append(codes)
            seconds += float(r.seconds)
            bits += float(r.bits_per_second) * float(r.seconds)
        if not items:
            continue
        sizes = meta.get("codebook_sizes")
        if sizes is not None and len(sizes) != items[0].shape[0]:
            log.warning("%s declares %d codebook sizes but stores %d code streams; sizes ignored", label,
                        len(sizes), items[0].shape[0])
            sizes = None
        try:
            frames = sum(int((c >= 0).any(axis=0).sum()) for c in items)
            stats = codebook_stats(items, sizes, frames / seconds)
        except ValueError as err:
            log.warning("token statistics of %s on %s: %s", label, task, err)
            continue
        common = {"codec": label, "task": task, "items": len(items),
                  "random_weights": bool(meta.get("random_weights")), "fingerprint": fp}
        for s in stats:
            if s.size and s.distinct > s.size:
                log.warning("%s stream %d uses %d entries but declares %d", label, s.codebook, s.distinct, s.size)
            rows.append({**common, "codebook": str(s.codebook), "size": s.size, "used_pct": 100 * s.used,
                         "entropy_bits": s.entropy, "perplexity": s.perplexity, "raw_kbps": s.raw_bps / 1000,
                         "entropy_kbps": s.entropy_bps / 1000, "frames": s.frames})
        rows.append({**common, "codebook": "all", "size": None, "used_pct": float("nan"),
                     "entropy_bits": sum(s.entropy for s in stats), "perplexity": float("nan"),
                     "raw_kbps": bits / seconds / 1000, "entropy_kbps": sum(s.entropy_bps for s in stats) / 1000,
                     "frames": frames})
    return pd.DataFrame(rows, columns=COLUMNS)


def _num(v, fmt: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, fmt)


def _kbps(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.3g}" if v < 100 else f"{v:.0f}"


def token_markdown(frame: pd.DataFrame) -> str:
    """The table (Markdown) with its definitions, or a line saying there is nothing to show."""
    if frame.empty:
        return "_No neural codec with stored codes in this workspace._\n"
    head = ["codec", "task", "codebook", "size", "used %", "entropy (bits)", "perplexity", "raw kbps",
            "entropy-coded kbps", "frames"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for r in frame.itertuples(index=False):
        label = r.codec + (" [random weights]" if r.random_weights else "")
        size = "-" if r.size is None or (isinstance(r.size, float) and math.isnan(r.size)) else str(int(r.size))
        lines.append("| " + " | ".join([
            label, r.task, r.codebook, size, _num(r.used_pct, ".1f"), _num(r.entropy_bits, ".3f"),
            _num(r.perplexity, ".1f"), _kbps(r.raw_kbps), _kbps(r.entropy_kbps), str(int(r.frames))]) + " |")
    unknown = sorted(set(frame[frame.codebook != "all"].loc[lambda f: f["size"].isna(), "codec"]))
    notes = ["", "Per codebook: used % = distinct entries seen / codebook size; entropy = plug-in estimate from the "
             "pooled counts of every frame of the task's items (biased low when frames are few per entry); "
             "perplexity = 2^entropy; raw kbps = log2(size) x frames/s; entropy-coded kbps = entropy x frames/s, what "
             "an ideal lossless coder of independent symbols would need. Row `all`: raw kbps is the measured "
             "bitrate, entropy-coded kbps the sum over codebooks."]
    if unknown:
        notes.append(f"Codecs that declare no codebook sizes (used % and raw kbps unknown): {', '.join(unknown)}.")
    return "\n".join(lines + notes) + "\n"
