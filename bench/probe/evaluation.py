"""Embed a HEAR task's items, pool over time, run the HEAR predictor protocol, return test scores.

    from bench.probe import evaluate
    res = evaluate(None, task)                          # log-mel reference on the uncoded audio
    res = evaluate(bench.load_codec("opus", bitrate=6), task, grid="reduced")   # decoded-logmel
    res["top1_acc"], res["mAP"], res["embedding_kind"]

`task` is a `bench.tasks.hear.HearTask` (or any Task whose items carry info["split"] and
info["labels"] and which has `hear_metadata` and `vocabulary`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.probe.embed import POOLINGS, EncodeDecode, make_embedder, pool
from bench.probe.mlp import GRIDS, data_splits, run_protocol

log = logging.getLogger(__name__)

MAX_FAILED_FRACTION = 0.5  # beyond this the embedder is broken, not the items


class ProbeError(RuntimeError):
    """The probe could not run on this task (too many failed items, an empty split...)."""


def _task_protocol(task) -> tuple[dict[str, Any], list[str]]:
    md = getattr(task, "hear_metadata", None)
    vocab = getattr(task, "vocabulary", None)
    if md is None or vocab is None:
        raise ProbeError(f"task {getattr(task, 'name', task)!r} is not a HEAR task (no hear_metadata/vocabulary); "
                         "the probe runs on demo-digits, demo-instruments, demo-drums or hear:PATH")
    return md, list(vocab)


def embed_task(embedder, task, pooling: str = "mean") -> tuple[dict[str, tuple[np.ndarray, list[list[str]]]],
                                                                  list[tuple[str, str]]]:
    """Pooled embeddings per split: {split: (float32 `[n, D]`, label lists)}, plus (item id, error) failures."""
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; use one of {', '.join(POOLINGS)}")
    rows: dict[str, tuple[list[np.ndarray], list[list[str]]]] = {}
    failures: list[tuple[str, str]] = []
    items = list(task.items())
    size = max(1, int(getattr(embedder, "batch", 1)))  # items per embedder call (codecs that batch)
    for start in range(0, len(items), size):
        group = items[start: start + size]
        frames = embedder.items_frames(group) if size > 1 else [_frames_or_error(embedder, it) for it in group]
        for item, fr in zip(group, frames):
            item.release()
            try:
                if isinstance(fr, BaseException):
                    raise fr
                vec = pool(fr, pooling)
                if not np.all(np.isfinite(vec)):
                    raise ValueError("embedding holds NaN or Inf")
            except NotImplementedError:
                raise
            except Exception as err:  # noqa: BLE001 - one bad item is a recorded failure, not a crash
                failures.append((item.id, f"{type(err).__name__}: {err}"))
                log.warning("probe: item %s failed: %s", item.id, err)
                continue
            embs, labels = rows.setdefault(item.info["split"], ([], []))
            embs.append(vec)
            labels.append(list(item.info["labels"]))
    if items and len(failures) > MAX_FAILED_FRACTION * len(items):
        raise ProbeError(f"{len(failures)} of {len(items)} items failed to embed; first: {failures[0][0]}: "
                         f"{failures[0][1]}")
    return {s: (np.stack(e).astype(np.float32), lab) for s, (e, lab) in rows.items()}, failures


def _frames_or_error(embedder, item):
    """embedder.item_frames(item), or the exception it raised (NotImplementedError still propagates)."""
    try:
        return embedder.item_frames(item)
    except NotImplementedError:
        raise
    except Exception as err:  # noqa: BLE001 - recorded by the caller against this item
        return err


def targets(labels: list[list[str]], vocabulary: list[str]) -> np.ndarray:
    """Label lists -> multi-hot float32 `[n, L]` in vocabulary order."""
    index = {label: i for i, label in enumerate(vocabulary)}
    y = np.zeros((len(labels), len(vocabulary)), dtype=np.float32)
    for row, labs in enumerate(labels):
        for lab in labs:
            y[row, index[str(lab)]] = 1.0
    return y


def evaluate(codec_or_embedder=None, task=None, pooling: str = "mean", grid: str = "full", seed: int = 42,
             encode_decode: EncodeDecode | None = None, embedding: str = "auto",
             export_dir: str | Path | None = None) -> dict[str, Any]:
    """HEAR-protocol test scores of one embedder on one task.

    codec_or_embedder: None or "logmel" (uncoded log-mel reference), a Codec (its `embed()` if it has
    one, else log-mel of its decoded audio), a codec spec string, or an embedder object.
    encode_decode: optional `item -> (decoded [C, T], rate)` used instead of running the codec here.
    export_dir: also write the pooled embeddings in heareval's format there.

    Returns test scores (`top1_acc` for multiclass, `mAP`, each task score; `NAME_std` for k-fold),
    `score` (the task's first score) and metadata: embedding_kind, embedder, pooling, grid, seed, dim,
    n_items, n_failed, failures, chance, best_params, folds, grid_results, seconds.
    """
    if task is None:
        raise ValueError("evaluate() needs a task, e.g. bench.load_task('demo-digits')")
    if grid not in GRIDS:
        raise ValueError(f"unknown probe grid {grid!r}; use one of {', '.join(GRIDS)}")
    md, vocab = _task_protocol(task)
    start = time.perf_counter()
    embedder = make_embedder(codec_or_embedder, encode_decode, embedding)
    try:
        by_split, failures = embed_task(embedder, task, pooling)
    except NotImplementedError:
        if getattr(embedder, "kind", "") != "codec-latent" or embedding == "latent":
            raise
        log.info("probe: %s has no usable embed(); probing log-mel of its decoded audio", embedder.name)
        embedder = make_embedder(embedder.codec, encode_decode, "decoded")
        by_split, failures = embed_task(embedder, task, pooling)
    if export_dir is not None:
        from bench.probe.heareval_io import export_task

        export_task(export_dir, getattr(task, "root", None), by_split)
    multilabel = md["prediction_type"] == "multilabel"
    names = list(md.get("evaluation") or ["top1_acc"])
    for extra in (["mAP"] if multilabel else ["top1_acc", "mAP"]):
        if extra not in names:
            names.append(extra)
    data = {s: (emb, targets(lab, vocab)) for s, (emb, lab) in by_split.items()}
    result = run_protocol(data, data_splits(md), multilabel, names, grid=grid, seed=seed)
    out: dict[str, Any] = dict(result.scores)
    out.update({
        "score": result.scores[names[0]], "primary": names[0], "task": getattr(task, "name", ""),
        **embedder.describe(), "pooling": pooling, "grid": grid, "seed": seed,
        "dim": int(next(iter(by_split.values()))[0].shape[1]),
        "n_items": {s: int(len(lab)) for s, (_, lab) in by_split.items()},
        "n_failed": len(failures), "failures": failures[:20], "chance": 1.0 / len(vocab),
        "best_params": result.best_point.to_dict(), "folds": result.folds, "grid_results": result.grid,
        "seconds": time.perf_counter() - start,
    })
    log.info("probe %s on %s: %s=%.4f (%s, %s pooling, %s grid)", out["embedder"], out["task"], names[0],
             out["score"], out["embedding_kind"], pooling, grid)
    return out
