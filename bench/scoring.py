"""Scoring one item: through the codec (or its cached output) and the metrics, every problem a failure row.

Runs in the driver (jobs=1) or in a worker process or Ray actor (bench/workers.py); never raises for a
problem of the item itself (unreadable, empty, silent, NaN, too short or too long, a codec or metric error).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from bench import audio as au
from bench.coding import MIN_SECONDS, codec_output, encode_only

log = logging.getLogger(__name__)


def _metric_rate(metric, item, codec_sr: int) -> int:
    if hasattr(metric, "rate_for_item"):
        return int(metric.rate_for_item(item))
    return int(metric.rate_for(codec_sr))


def _score(metric, ref: np.ndarray, ref_sr: int, rec: np.ndarray, rec_sr: int, item,
           aligned: dict[int, tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """Resample both sides to the metric's rate, align lengths to the reference, score, check values.

    `aligned` keeps each rate's pair for the item's other metrics (most share 16 kHz): resampled once.
    """
    rate = _metric_rate(metric, item, rec_sr)
    if rate not in aligned:
        r = au.resample(ref, ref_sr, rate)
        d = au.fit_length(au.resample(rec, rec_sr, rate), r.shape[-1])
        if d.shape[0] != r.shape[0]:
            d = au.to_channels(d, r.shape[0])
        aligned[rate] = (r, d)
    r, d = aligned[rate]
    values = metric.score(r, d, rate, item=item)
    bad = [k for k, v in values.items() if not np.isfinite(v)]
    if bad:
        raise ValueError(f"{metric.identity()} returned non-finite {', '.join(bad)}")
    return {k: float(v) for k, v in values.items()}


def process_item(codec, metrics: list, item, cache_file: Path, output: tuple | None = None) -> dict[str, Any]:
    """Run one item through the codec (or the cache) and the given metrics. Never raises for item problems.

    output: the item's (decoded, rate, encodes row) when a batch already ran it (`batch_outputs`).

    Returns {"encode": row or None, "scores": {identity: {key: value}}, "failures": [(stage, metric, error)],
    "item": (domain, sample_rate, seconds)}.
    """
    result: dict[str, Any] = {"encode": None, "scores": {}, "failures": [], "item": None}
    try:
        audio, sr = item.load()
        au.check(audio, sr, min_seconds=MIN_SECONDS, name=f"item {item.id}", max_seconds=item.max_seconds)
    except Exception as err:  # noqa: BLE001 - any unreadable input is one failure
        result["failures"].append(("load", "", reason(err)))
        return result
    result["item"] = (item.domain, sr, audio.shape[-1] / sr)
    try:
        channels = codec.meta.channels or audio.shape[0]
        ref = au.to_channels(audio, channels)
        if not metrics and output is None and not cache_file.exists():
            # nothing to score now (e.g. a probe-only run): the bitrate needs the encoder, not the decoder
            result["encode"] = encode_only(codec, ref, sr)
            item.release()
            return result
        rec, rec_sr, row = output if output is not None else codec_output(codec, item, cache_file, ref, sr)
        if row is not None and not row.pop("from_cache", False):
            result["encode"] = row
        elif row is not None:
            result["encode_cached"] = row
    except Exception as err:  # noqa: BLE001
        log.debug("codec failure on %s", item.id, exc_info=True)
        result["failures"].append(("codec", "", reason(err)))
        item.release()
        return result
    aligned: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for metric in metrics:
        try:
            result["scores"][metric_key(metric)] = _score(metric, ref, sr, rec, rec_sr, item, aligned)
        except Exception as err:  # noqa: BLE001
            log.debug("metric failure on %s", item.id, exc_info=True)
            result["failures"].append(("metric", metric_key(metric), reason(err)))
    item.release()
    return result


def process_reference(metrics: list, item) -> dict[str, Any]:
    """Score the uncoded audio against itself for metrics with a floor (e.g. the ASR's own WER)."""
    result: dict[str, Any] = {"encode": None, "scores": {}, "failures": [], "item": None}
    try:
        audio, sr = item.load()
        au.check(audio, sr, min_seconds=MIN_SECONDS, name=f"item {item.id}", max_seconds=item.max_seconds)
    except Exception as err:  # noqa: BLE001
        result["failures"].append(("load", "", reason(err)))
        return result
    result["item"] = (item.domain, sr, audio.shape[-1] / sr)
    aligned: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for metric in metrics:
        try:
            result["scores"][metric_key(metric)] = _score(metric, audio, sr, audio, sr, item, aligned)
        except Exception as err:  # noqa: BLE001
            result["failures"].append(("metric", metric_key(metric), reason(err)))
    item.release()
    return result


def metric_key(metric) -> str:
    """The key a metric's scores are stored under: its identity plus a digest of its code version and
    backend (`Metric.fingerprint()`), so a changed metric never reuses old scores."""
    return metric.fingerprint()


def reason(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return text if isinstance(err, (au.AudioError, ValueError)) else f"{type(err).__name__}: {text}"
