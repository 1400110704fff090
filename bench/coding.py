"""Running a codec over items: one item or a zero-padded batch through encode and decode, the output
checked, trimmed and cached, and each item's `encodes` row (measured bitrate, token rate, timings).

The runner (bench/runner.py) decides which items need this; everything here works on one item or one batch.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import audio as au
from bench.machine import timing_context
from bench.store import ResultStore

log = logging.getLogger(__name__)

MIN_SECONDS = 0.1  # shorter items are recorded as failures ("too short") before any codec sees them


def codec_output(codec, item, store_cache: Path, ref: np.ndarray, sr: int) -> tuple[np.ndarray, int, dict | None]:
    """Decoded audio `[C, T]` at the codec's rate: from the cache if there, else by running the codec.

    Returns (audio, sample_rate, encodes-row or None when it came from the cache).
    """
    out = ResultStore.load_output(store_cache)  # None when absent, or unreadable (then removed): recompute
    if out is not None and not _fits(out, ref, sr, codec):
        log.warning("cached output %s does not fit its item (shape %s): discarded, recomputing", store_cache,
                    out["audio"].shape)
        store_cache.unlink(missing_ok=True)
        out = None
    if out is not None:
        return out["audio"], out["sample_rate"], {"bits_per_second": out["bits_per_second"],
                                                  "seconds": ref.shape[-1] / sr, "sample_rate": out["sample_rate"],
                                                  "path": str(store_cache), "from_cache": True}
    import torch

    x, codec_sr, enc, encode_s = _encode(codec, ref, sr)
    with torch.inference_mode():
        t0 = time.perf_counter()
        rec = codec.decode(enc)
        decode_s = time.perf_counter() - t0
    rec = _checked(codec, rec[0].detach().float().cpu().numpy(), x.shape[-1])
    return rec, codec_sr, _save_output(codec, enc, 0, rec, store_cache, codec_sr, encode_s, decode_s)


def _fits(out: dict, ref: np.ndarray, sr: int, codec) -> bool:
    """Is a cached output the right shape for this item (channels, length at the codec's rate +- 2 samples)?"""
    audio = out["audio"]
    expected = ref.shape[-1] * out["sample_rate"] / sr
    channels = codec.meta.channels or ref.shape[0]
    return audio.shape[0] == channels and abs(audio.shape[-1] - expected) <= 2


def _encode(codec, ref: np.ndarray, sr: int):
    """One item `[C, T]` at sr -> (input at the codec's rate, that rate, Encoded, encode seconds)."""
    import torch

    codec_sr = codec.meta.sample_rate or sr
    x = au.resample(ref, sr, codec_sr)
    with torch.inference_mode():
        t0 = time.perf_counter()
        wav = torch.from_numpy(np.ascontiguousarray(x))[None]
        enc = codec.encode(wav, sample_rate=codec_sr)  # every codec: encode(wav, sample_rate=None, lengths=None)
        return x, codec_sr, enc, time.perf_counter() - t0


def encode_only(codec, ref: np.ndarray, sr: int) -> dict:
    """The `encodes` row of one item from its codes alone (no decode, no cached output: path None)."""
    x, codec_sr, enc, encode_s = _encode(codec, ref, sr)
    return _encodes_row(codec, enc, 0, x.shape[-1] / codec_sr, codec_sr, encode_s, None, None)


def _checked(codec, rec: np.ndarray, n: int) -> np.ndarray:
    """Decoded `[C, T']` -> `[C, n]`; raises for NaN/Inf."""
    rec = au.fit_length(rec, n)
    if not np.all(np.isfinite(rec)):
        raise ValueError(f"codec {codec.label} produced NaN/Inf samples")
    return rec


def _save_output(codec, enc, i: int, rec: np.ndarray, cache: Path, codec_sr: int, encode_s: float,
                 decode_s: float, batch: int = 1) -> dict:
    """Cache item i's decoded audio and codes; return its `encodes` row (`batch`: items in the timed call)."""
    codes = enc.item_codes(i).detach().cpu().numpy() if enc.codes is not None else None
    bitrate = float(enc.item_bitrates[i] if enc.item_bitrates else enc.bitrate)
    ResultStore.save_output(cache, rec, codes, codec_sr, bitrate)
    return _encodes_row(codec, enc, i, rec.shape[-1] / codec_sr, codec_sr, encode_s, decode_s, cache, batch)


def _encodes_row(codec, enc, i: int, seconds: float, codec_sr: int, encode_s: float, decode_s: float | None,
                 cache: Path | None, batch: int = 1) -> dict:
    """Item i's `encodes` row: measured bitrate, token rate, timings (and where they were taken: `timed_on`)
    and where its output is cached."""
    codes = enc.item_codes(i) if enc.codes is not None else None
    # Tokens per second: every code of every stream counts (the SemantiCodec paper's "token rate").
    # Classic codecs carry bytes (payload), not tokens: no token rate for them.
    is_tokens = codec.meta.frame_rate and codes is not None and enc.payload is None and codes.ndim == 3
    tps = codes.shape[-2] * codes.shape[-1] / seconds if is_tokens else None
    return {"bits_per_second": float(enc.item_bitrates[i] if enc.item_bitrates else enc.bitrate),
            "seconds": seconds, "encode_s": encode_s, "decode_s": decode_s, "sample_rate": codec_sr,
            "path": None if cache is None else str(cache), "tokens_per_second": tps,
            "timed_on": timing_context(codec.device_type, batch)}


def batch_outputs(codec, entries: list[tuple[Any, Path]]) -> dict[str, tuple[np.ndarray, int, dict]]:
    """Run several items through a codec in one zero-padded batch (codecs with `batch_items` > 1).

    entries: (item, cache file). Returns item id -> (decoded `[C, T]`, codec rate, encodes row), each
    saved to its cache as soon as the batch is done. Items that do not load, and every item of a batch
    that raises, are left out: they then run alone, so a failure is recorded against the item that
    caused it. Encode/decode seconds of the batch are shared among its items in proportion to length.
    """
    import torch

    codec_sr = codec.meta.sample_rate
    ready = []
    for item, cache in entries:
        try:
            audio, sr = item.load()
            au.check(audio, sr, min_seconds=MIN_SECONDS, name=f"item {item.id}", max_seconds=item.max_seconds)
        except Exception:  # noqa: BLE001 - process_item records it
            continue
        ready.append((item, cache, au.resample(au.to_channels(audio, codec.meta.channels), sr, codec_sr)))
    if len(ready) < 2:
        return {}
    lengths = [x.shape[-1] for _, _, x in ready]
    wav = np.zeros((len(ready), codec.meta.channels, max(lengths)), dtype=np.float32)
    for i, (_, _, x) in enumerate(ready):
        wav[i, :, : lengths[i]] = x
    try:
        with torch.inference_mode():
            t0 = time.perf_counter()
            enc = codec.encode(torch.from_numpy(wav), lengths=lengths)
            t1 = time.perf_counter()
            rec = codec.decode(enc).detach().float().cpu().numpy()
            t2 = time.perf_counter()
    except Exception:  # noqa: BLE001
        log.debug("batch of %d failed; running its items one by one", len(ready), exc_info=True)
        return {}
    out = {}
    for i, (item, cache, _) in enumerate(ready):
        try:
            r = _checked(codec, rec[i], lengths[i])
        except ValueError:
            continue
        share = lengths[i] / sum(lengths)
        out[item.id] = (r, codec_sr, _save_output(codec, enc, i, r, cache, codec_sr, (t1 - t0) * share,
                                                  (t2 - t1) * share, len(ready)))
    return out


def batch_size(codec) -> int:
    """Items per codec call: the codec's `batch_items` when it has a fixed rate and channel count, else 1."""
    if codec is None or not (codec.meta.sample_rate and codec.meta.channels):
        return 1
    return max(1, int(getattr(codec, "batch_items", 1)))


def batchable(item, cache: Path) -> bool:
    """Does this item need the codec and load cleanly (its audio stays loaded for the batch)?"""
    if cache.exists():
        return False
    try:
        audio, sr = item.load()
        au.check(audio, sr, min_seconds=MIN_SECONDS, name=f"item {item.id}", max_seconds=item.max_seconds)
    except Exception:  # noqa: BLE001 - recorded when the item runs
        return False
    return True
