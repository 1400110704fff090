"""The HEAR predictor protocol in plain torch (heareval 2021.1.3's `task_predictions`, restated).

Classifier: [Linear -> BatchNorm1d -> Dropout(0.1) -> ReLU] x hidden_layers, then Linear. Linear
weights get Xavier init (uniform or normal) with gain 1 for the first layer and gain sqrt(2) after a
ReLU; biases keep torch's default init. No normalisation of the input embeddings (heareval's
`embedding_norm` is Identity). Multiclass: softmax / cross-entropy; multilabel: sigmoid / BCE.

Training: Adam, batch 1024, at most `max_epochs` epochs; validation every `check_val_every_n_epoch`
epochs on the task's first score; the weights of the best validation check are kept (ties keep the
earlier one); training stops after `patience` validation CHECKS without strict improvement (Lightning's
EarlyStopping counts checks, so patience 20 at every 3rd epoch is 60 epochs).

Grid: 16 points (hidden_layers {1,2} x hidden_dim 1024 x lr {3.2e-3,1e-3,3.2e-4,1e-4} x init
{xavier_uniform, xavier_normal}) in sklearn ParameterGrid order, shuffled with `random.Random(42)`,
first 8 kept: the same 8 as heareval's `--grid default`. Model selection runs on the first data split
only; the best point is then retrained on every other split (k-fold rotation) and each split's test
fold is scored; k-fold results are reported as mean and sample std (ddof=1, pandas' default).

Deviations, all deliberate: the training set is shuffled every epoch on every split (heareval shuffles
only a split literally named "train"); a trailing batch of one example is skipped (BatchNorm cannot
train on it; Lightning would crash); each fit is seeded on its own (seed, grid index, split index) so
results do not depend on the order of fits; if `max_epochs` ends before the first check, the last
epoch is validated.
"""

from __future__ import annotations

import copy
import itertools
import logging
import random
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from bench.probe.scores import get_score

log = logging.getLogger(__name__)

GRID_SEED = 42  # heareval: seed_everything(42) then random.shuffle(confs)
GRID_POINTS = 8
PARAM_GRID: dict[str, list[Any]] = {
    "hidden_layers": [1, 2],
    "hidden_dim": [1024],
    "lr": [3.2e-3, 1e-3, 3.2e-4, 1e-4],
    "initialization": ["xavier_uniform", "xavier_normal"],
}
GRIDS = ("full", "reduced")


@dataclass(frozen=True)
class GridPoint:
    """One hyper-parameter setting of the predictor."""

    hidden_layers: int = 1
    hidden_dim: int = 1024
    lr: float = 1e-3
    initialization: str = "xavier_uniform"
    dropout: float = 0.1
    batch_size: int = 1024
    max_epochs: int = 500
    patience: int = 20  # validation checks without improvement
    check_val_every_n_epoch: int = 3

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


SMALL_TRAIN = 4096  # below this many training rows one thread is faster (and immune to a loaded machine)


@contextmanager
def torch_threads(n: int | None):
    """Run torch ops with `n` intra-op threads (None: unchanged), restoring the setting afterwards.

    Tiny matmuls (a probe on a few hundred clips, one STFT) gain nothing from threads, and on a loaded
    machine two spinning threads were measured 20-50x slower than one.
    """
    import torch

    before = torch.get_num_threads()
    if n is not None and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def grid_points(grid: str = "full") -> list[GridPoint]:
    """The grid points of a named grid.

    "full": heareval's default grid, 8 of 16 points sampled with seed 42.
    "reduced" (CI): two fixed points that converge within 60 epochs on small tasks
    (1 x 1024, lr 3.2e-3, xavier_uniform and 2 x 1024, lr 1e-3, xavier_normal), max 60 epochs.
    """
    if grid == "full":
        keys = sorted(PARAM_GRID)  # ParameterGrid order: sorted keys, last key varies fastest
        points = [GridPoint(**dict(zip(keys, values))) for values in itertools.product(*(PARAM_GRID[k] for k in keys))]
        random.Random(GRID_SEED).shuffle(points)
        return points[:GRID_POINTS]
    if grid == "reduced":
        return [
            GridPoint(hidden_layers=1, lr=3.2e-3, initialization="xavier_uniform", max_epochs=60),
            GridPoint(hidden_layers=2, lr=1e-3, initialization="xavier_normal", max_epochs=60),
        ]
    raise ValueError(f"unknown probe grid {grid!r}; use one of {', '.join(GRIDS)}")


def build_predictor(nfeatures: int, nlabels: int, point: GridPoint):
    """The MLP `[n, nfeatures] -> [n, nlabels]` logits, initialised as heareval does."""
    import torch
    from torch import nn

    inits = {"xavier_uniform": nn.init.xavier_uniform_, "xavier_normal": nn.init.xavier_normal_}
    init = inits.get(point.initialization)
    if init is None:
        raise ValueError(f"unknown initialization {point.initialization!r}; use xavier_uniform or xavier_normal")
    layers: list[nn.Module] = []
    dim, gain = nfeatures, nn.init.calculate_gain("linear")
    for _ in range(point.hidden_layers):
        linear = nn.Linear(dim, point.hidden_dim)
        init(linear.weight, gain=gain)
        layers += [linear, nn.BatchNorm1d(point.hidden_dim), nn.Dropout(point.dropout), nn.ReLU()]
        dim, gain = point.hidden_dim, nn.init.calculate_gain("relu")
    projection = nn.Linear(dim, nlabels)
    init(projection.weight, gain=gain)
    return torch.nn.Sequential(*layers, projection)


@dataclass
class FitResult:
    """A trained predictor (best validation weights loaded) and how training went."""

    model: Any
    point: GridPoint
    validation_score: float
    best_epoch: int  # 0-based epoch of the kept weights
    epochs_run: int
    stopped_early: bool
    history: list[tuple[int, float]] = field(default_factory=list)  # (epoch, validation score)


def predict(model, x: np.ndarray, multilabel: bool) -> np.ndarray:
    """Probabilities `[n, L]` (softmax, or sigmoid for multilabel) of a trained predictor."""
    import torch

    model.eval()
    with torch.no_grad():
        logits = model(torch.as_tensor(x, dtype=torch.float32))
        probs = torch.sigmoid(logits) if multilabel else torch.softmax(logits, dim=1)
    return probs.numpy().astype(np.float64)


def fit(
    point: GridPoint,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_valid: np.ndarray,
    y_valid: np.ndarray,
    multilabel: bool,
    score: str = "top1_acc",
    seed: int = 0,
) -> FitResult:
    """Train one predictor with early stopping on the validation `score` (higher is better).

    x_*: float32 `[n, D]` embeddings; y_*: `[n, L]` one-hot (multiclass) or multi-hot (multilabel).
    Deterministic for a given seed (torch's global RNG is forked, so callers' state is untouched).
    """
    import torch

    if len(x_train) < 2:
        raise ValueError(f"the probe needs at least 2 training examples, got {len(x_train)}")
    if len(x_valid) == 0:
        raise ValueError("the probe needs a non-empty validation split")
    score_fn = get_score(score)
    xt = torch.as_tensor(np.asarray(x_train, dtype=np.float32))
    yt = torch.as_tensor(np.asarray(y_train, dtype=np.float32))
    loss_fn = torch.nn.BCEWithLogitsLoss() if multilabel else torch.nn.CrossEntropyLoss()
    target = yt if multilabel else yt.argmax(dim=1)
    with torch.random.fork_rng(devices=[]), torch_threads(1 if len(xt) <= SMALL_TRAIN else None):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        model = build_predictor(xt.shape[1], yt.shape[1], point)
        optim = torch.optim.Adam(model.parameters(), lr=point.lr)
        best_score, best_state, best_epoch, bad_checks = None, None, -1, 0
        history: list[tuple[int, float]] = []
        stopped, epoch = False, -1
        for epoch in range(point.max_epochs):
            model.train()
            for idx in torch.randperm(len(xt), generator=gen).split(point.batch_size):
                if len(idx) < 2:  # BatchNorm cannot train on one example
                    continue
                optim.zero_grad()
                loss = loss_fn(model(xt[idx]), target[idx])
                loss.backward()
                optim.step()
            last = epoch == point.max_epochs - 1
            if (epoch + 1) % point.check_val_every_n_epoch and not (last and best_state is None):
                continue
            value = score_fn(predict(model, x_valid, multilabel), y_valid)
            history.append((epoch, value))
            if best_score is None or value > best_score:  # strict: ties keep the earlier weights
                best_score, best_epoch, bad_checks = value, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                bad_checks += 1
                if bad_checks >= point.patience:
                    stopped = True
                    break
        model.load_state_dict(best_state)
    log.debug("probe fit %s: best %s=%.4f at epoch %d, ran %d epochs%s", point, score, best_score, best_epoch,
              epoch + 1, " (early stop)" if stopped else "")
    return FitResult(model, point, float(best_score), best_epoch, epoch + 1, stopped, history)


def kfold_splits(folds: list[str]) -> list[dict[str, list[str]]]:
    """heareval's rotation over sorted folds: test = fold i, valid = fold i+1 (mod k), train = the rest."""
    ordered = sorted(folds)
    if len(set(ordered)) != len(ordered):
        raise ValueError(f"fold names are not unique: {folds}")
    if len(ordered) < 3:
        raise ValueError(f"k-fold rotation needs at least 3 folds (train, valid, test), got {len(ordered)}")
    k = len(ordered)
    out = []
    for i in range(k):
        test, valid = ordered[i], ordered[(i + 1) % k]
        out.append({"train": [f for f in ordered if f not in (test, valid)], "valid": [valid], "test": [test]})
    return out


def data_splits(metadata: dict[str, Any]) -> list[dict[str, list[str]]]:
    """Train/valid/test split names from a HEAR task_metadata dict (one entry per k-fold rotation)."""
    mode = metadata.get("split_mode")
    if mode == "trainvaltest":
        return [{"train": ["train"], "valid": ["valid"], "test": ["test"]}]
    if mode in ("new_split_kfold", "presplit_kfold"):
        return kfold_splits(list(metadata["splits"]))
    raise ValueError(f"unknown split_mode {mode!r} in task_metadata.json; "
                     "expected trainvaltest, new_split_kfold or presplit_kfold")


@dataclass
class ProtocolResult:
    scores: dict[str, float]  # test scores; k-fold: mean, plus NAME_std
    best_point: GridPoint
    grid: list[dict[str, Any]]  # per grid point: params, validation score, best epoch
    folds: list[dict[str, Any]]  # per data split: test fold, test scores, validation score, epoch


def run_protocol(
    data: dict[str, tuple[np.ndarray, np.ndarray]],
    splits: list[dict[str, list[str]]],
    multilabel: bool,
    score_names: list[str],
    grid: str | list[GridPoint] = "full",
    seed: int = 42,
) -> ProtocolResult:
    """Grid search on splits[0], retrain the best point on the other splits, score every test fold.

    data: split name -> (embeddings float32 `[n, D]`, targets `[n, L]`). score_names[0] selects models.
    """
    points = grid_points(grid) if isinstance(grid, str) else list(grid)
    if not points:
        raise ValueError("empty probe grid")

    def stack(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        missing = [n for n in names if n not in data]
        if missing:
            raise ValueError(f"split(s) {missing} have no embedded items (known: {sorted(data)})")
        return (np.concatenate([data[n][0] for n in names]), np.concatenate([data[n][1] for n in names]))

    primary = score_names[0]
    fits_by_split: list[FitResult] = []
    grid_report = []
    tr, va = stack(splits[0]["train"]), stack(splits[0]["valid"])
    best: FitResult | None = None
    for i, point in enumerate(points):
        result = fit(point, *tr, *va, multilabel=multilabel, score=primary, seed=seed * 1000 + i)
        grid_report.append({**point.to_dict(), "validation_score": result.validation_score,
                            "best_epoch": result.best_epoch, "epochs_run": result.epochs_run})
        if best is None or result.validation_score > best.validation_score:
            best = result
    assert best is not None
    fits_by_split.append(best)
    for s, split in enumerate(splits[1:], start=1):
        tr, va = stack(split["train"]), stack(split["valid"])
        fits_by_split.append(fit(best.point, *tr, *va, multilabel=multilabel, score=primary,
                                 seed=seed * 1000 + 100 * s))
    folds = []
    for split, result in zip(splits, fits_by_split):
        xt, yt = stack(split["test"])
        probs = predict(result.model, xt, multilabel)
        folds.append({"test": "|".join(split["test"]), "n_test": int(len(xt)),
                      "validation_score": result.validation_score, "best_epoch": result.best_epoch,
                      **{name: get_score(name)(probs, yt) for name in score_names}})
    scores: dict[str, float] = {}
    for name in score_names:
        values = np.array([f[name] for f in folds], dtype=np.float64)
        scores[name] = float(np.mean(values))
        if len(values) > 1:
            scores[f"{name}_std"] = float(np.std(values, ddof=1))
    return ProtocolResult(scores, best.point, grid_report, folds)

