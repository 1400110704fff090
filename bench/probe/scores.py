"""HEAR score functions on scene predictions, in numpy (heareval.score's definitions).

All functions take `predictions` float `[n, L]` (softmax or sigmoid outputs, or any monotone score)
and `targets` `[n, L]` one-hot (multiclass) or multi-hot (multilabel), and return a float.

- top1_acc / pitch_acc: fraction of rows whose argmax prediction is the argmax target.
- chroma_acc: as top1_acc, with both classes taken modulo 12 (octave errors forgiven).
- mAP: average precision per class (sklearn's step-wise definition, ties grouped), macro-averaged
  over ALL classes; a class with no positive in `targets` contributes 0, as sklearn does.
- aucroc: macro ROC AUC (NaN when a class has no positive or no negative, as heareval returns).
- d_prime: mean over classes of sqrt(2) * Phi^-1(AUC).

Uncertainty of a test score (printed beside every accuracy in the reports):

- wilson_interval(successes, n): Wilson score interval of a binomial proportion (95 % by default).
- accuracy_interval(accuracy, n): the same from an accuracy and its test-set size.
- folds_interval(folds, name): pooled over k-fold test sets (the probe cell's "folds" records).
- mean_interval(accuracies, ns): an unweighted mean of accuracies on independent test sets (the
  headline's mean over tasks): normal approximation with Agresti-Coull centres, clipped to [0, 1].
- bootstrap_interval(predictions, targets, score): percentile bootstrap over test rows (e.g. mAP).
"""

from __future__ import annotations

import logging
import math
from typing import Any, Callable

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


Z95 = 1.959963984540054  # the two-sided 95 % quantile of the standard normal
ACCURACY_SCORES = ("top1_acc", "pitch_acc", "chroma_acc")  # binomial proportions: Wilson intervals apply


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of `successes` out of `n` trials; (nan, nan) when n is 0."""
    if n <= 0:
        return float("nan"), float("nan")
    if not 0 <= successes <= n:
        raise ValueError(f"successes {successes} outside [0, {n}]")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_interval(accuracy: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson interval of an accuracy measured on `n` test items (the count of correct ones is rounded)."""
    if n <= 0 or accuracy is None or not math.isfinite(accuracy):
        return float("nan"), float("nan")
    return wilson_interval(min(n, max(0, round(accuracy * n))), n, z)


def folds_interval(folds: list[dict[str, Any]], name: str = "top1_acc", z: float = Z95
                   ) -> tuple[int, float, float]:
    """(test items, low, high) pooled over the probe's test folds (`n_test` and `name` per fold)."""
    usable = [f for f in folds or [] if f.get(name) is not None and int(f.get("n_test", 0)) > 0]
    n = sum(int(f["n_test"]) for f in usable)
    if not usable:
        return n, float("nan"), float("nan")
    correct = sum(round(float(f[name]) * int(f["n_test"])) for f in usable)
    return (n, *wilson_interval(min(n, correct), n, z))


def mean_interval(accuracies: list[float], ns: list[int], z: float = Z95) -> tuple[float, float]:
    """Interval of the unweighted mean of accuracies from independent test sets of sizes `ns`.

    One accuracy: its Wilson interval. Several: mean +- z * sqrt(sum p~(1-p~)/n~) / k with the
    Agresti-Coull centre p~ = (x + z^2/2) / (n + z^2) and n~ = n + z^2, clipped to [0, 1].
    """
    if len(accuracies) != len(ns) or not accuracies or any(n <= 0 for n in ns):
        return float("nan"), float("nan")
    if len(accuracies) == 1:
        return accuracy_interval(accuracies[0], ns[0], z)
    var = 0.0
    for p, n in zip(accuracies, ns):
        n_adj = n + z * z
        p_adj = (round(p * n) + z * z / 2) / n_adj
        var += p_adj * (1 - p_adj) / n_adj
    mean = float(np.mean(accuracies))
    half = z * math.sqrt(var) / len(accuracies)
    return max(0.0, mean - half), min(1.0, mean + half)


def bootstrap_interval(predictions: np.ndarray, targets: np.ndarray, score: str = "mAP", n_boot: int = 1000,
                       level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of a HEAR score, resampling test rows with replacement (seeded)."""
    p, t = _check(predictions, targets)
    fn = get_score(score)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(p), len(p))
        v = fn(p[idx], t[idx])
        if math.isfinite(v):
            values.append(v)
    if not values:
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))
