"""HEAR score functions on scene predictions, in numpy (heareval.score's definitions).

All functions take `predictions` float `[n, L]` (softmax or sigmoid outputs, or any monotone score)
and `targets` `[n, L]` one-hot (multiclass) or multi-hot (multilabel), and return a float.

- top1_acc / pitch_acc: fraction of rows whose argmax prediction is the argmax target.
- chroma_acc: as top1_acc, with both classes taken modulo 12 (octave errors forgiven).
- mAP: average precision per class (sklearn's step-wise definition, ties grouped), macro-averaged
  over ALL classes; a class with no positive in `targets` contributes 0, as sklearn does.
- aucroc: macro ROC AUC (NaN when a class has no positive or no negative, as heareval returns).
- d_prime: mean over classes of sqrt(2) * Phi^-1(AUC).
"""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np

log = logging.getLogger(__name__)


def _check(predictions: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(predictions, dtype=np.float64)
    t = np.asarray(targets, dtype=np.float64)
    if p.ndim != 2 or p.shape != t.shape:
        raise ValueError(f"predictions {p.shape} and targets {t.shape} must both be [n, labels]")
    if p.shape[0] == 0:
        raise ValueError("no rows to score")
    return p, t


def top1_acc(predictions: np.ndarray, targets: np.ndarray) -> float:
    p, t = _check(predictions, targets)
    return float(np.mean(p.argmax(axis=1) == t.argmax(axis=1)))


def chroma_acc(predictions: np.ndarray, targets: np.ndarray) -> float:
    p, t = _check(predictions, targets)
    return float(np.mean(p.argmax(axis=1) % 12 == t.argmax(axis=1) % 12))


def average_precision(scores: np.ndarray, truth: np.ndarray) -> float:
    """AP of one class: sum over distinct thresholds of (R_k - R_{k-1}) * P_k (sklearn's definition)."""
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], truth[order] > 0
    last_of_tie = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tps = np.cumsum(y)[last_of_tie].astype(np.float64)
    fps = (last_of_tie + 1) - tps
    precision = tps / (tps + fps)
    if tps[-1] == 0:  # no positive: sklearn sets recall to 1 everywhere, so AP = precision[0] = 0
        return 0.0
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def mean_average_precision(predictions: np.ndarray, targets: np.ndarray) -> float:
    p, t = _check(predictions, targets)
    empty = int(np.sum(t.sum(axis=0) == 0))
    if empty:
        log.debug("mAP: %d of %d classes have no positive example; they count as AP 0", empty, t.shape[1])
    return float(np.mean([average_precision(p[:, j], t[:, j]) for j in range(p.shape[1])]))


def _roc_auc(scores: np.ndarray, truth: np.ndarray) -> float:
    """Mann-Whitney AUC with ties counted half; NaN when one side is empty."""
    from scipy.stats import rankdata

    pos = truth > 0
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def aucroc(predictions: np.ndarray, targets: np.ndarray) -> float:
    p, t = _check(predictions, targets)
    aucs = [_roc_auc(p[:, j], t[:, j]) for j in range(p.shape[1])]
    return float("nan") if np.any(np.isnan(aucs)) else float(np.mean(aucs))


def d_prime(predictions: np.ndarray, targets: np.ndarray) -> float:
    from scipy.stats import norm

    p, t = _check(predictions, targets)
    aucs = np.array([_roc_auc(p[:, j], t[:, j]) for j in range(p.shape[1])])
    if np.any(np.isnan(aucs)):
        return float("nan")
    return float(np.mean(norm.ppf(aucs) * np.sqrt(2.0)))


SCORES: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "top1_acc": top1_acc,
    "pitch_acc": top1_acc,
    "chroma_acc": chroma_acc,
    "mAP": mean_average_precision,
    "aucroc": aucroc,
    "d_prime": d_prime,
}


def get_score(name: str) -> Callable[[np.ndarray, np.ndarray], float]:
    try:
        return SCORES[name]
    except KeyError:
        raise ValueError(
            f"HEAR score {name!r} is not supported by the probe (event-based sed_eval scores are not); "
            f"supported: {', '.join(SCORES)}"
        ) from None
