"""Reference HEAR-protocol numbers from heareval (hear-eval-kit), for tests/test_probe.py.

Runs in its own environment (heareval 2021.1.3 pins numpy 1.19.2 and numba 0.48, which need Python <= 3.8;
see README.md here) and does not import bench. It writes two files beside itself:

- probe_inputs.npz: every input, made here from fixed seeds with numpy: predictions/targets for the score
  functions, an input batch for the predictor layout, and two small embedding tasks (train/valid/test);
- probe_heareval.json: what heareval's own code returns on them:
  * "scores": heareval.score.available_scores[name](label_to_idx)(predictions, targets) for each score;
  * "grid": the 8 grid points `python -m heareval.predictions.runner --grid default` trains, read from the
    hparams.yaml Lightning wrote for each (a run with max_epochs overridden to 3 through the task metadata's
    task_specific_param_grid, which changes no other key and not the order);
  * "predictor": heareval.predictions.task_predictions.FullyConnectedPrediction built after
    torch.manual_seed(seed): its parameters (module order) and its eval-mode output on a fixed batch;
  * "tasks": `python -m heareval.predictions.runner TASK --grid-points 1` on each embedding task, with a
    one-point grid given by task_specific_param_grid (dropout 0 and one full batch per epoch, so that only
    rounding depends on the order of examples), 6 epochs ("short") or until early stopping ("long"): the
    chosen hyper-parameters, best validation score and epoch, the validation history (Lightning's
    metrics.csv), the test scores, the test predictions and the kept checkpoint's state_dict.
"""

from __future__ import annotations

import csv
import json
import pickle
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from heareval.predictions.task_predictions import PARAM_GRID, FullyConnectedPrediction
from heareval.score import available_scores

HERE = Path(__file__).resolve().parent
INPUTS = HERE / "probe_inputs.npz"
OUTPUT = HERE / "probe_heareval.json"
SCORE_NAMES = ["top1_acc", "pitch_acc", "chroma_acc", "mAP", "d_prime", "aucroc"]


def _num(v) -> float | None:
    v = float(v)
    return None if np.isnan(v) else v  # JSON has no NaN: null


# -- inputs ---------------------------------------------------------------------------------------


def score_inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    n, k = 60, 5
    truth = rng.integers(0, k - 1, size=n)  # class k-1 never occurs (AP 0, AUC undefined)
    mc_pred = np.round(rng.random((n, k)), 1)  # rounding makes ties, which AP groups
    mc_pred[np.arange(n), truth] += 0.3 * rng.random(n)
    mc_target = np.eye(k)[truth]
    ml_target = (rng.random((n, k)) < 0.3).astype(np.float64)
    ml_target[0], ml_target[1] = 1.0, 0.0  # every class has a positive and a negative
    ml_pred = np.round(0.5 * rng.random((n, k)) + 0.4 * ml_target, 2)
    pitch_truth = rng.integers(0, 24, size=40)
    pitch_guess = np.where(rng.random(40) < 0.3, (pitch_truth + 12) % 24, pitch_truth)  # octave errors
    pitch_guess = np.where(rng.random(40) < 0.2, rng.integers(0, 24, size=40), pitch_guess)
    pitch_pred = rng.random((40, 24)) * 0.5
    pitch_pred[np.arange(40), pitch_guess] += 1.0
    return {"mc_pred": mc_pred, "mc_target": mc_target, "ml_pred": ml_pred, "ml_target": ml_target,
            "pitch_pred": pitch_pred, "pitch_target": np.eye(24)[pitch_truth]}


def _blobs(rng, k: int, d: int, per_class: int, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.concatenate([centres[c] + rng.standard_normal((per_class, d)) for c in range(k)])
    y = np.repeat(np.eye(k), per_class, axis=0)
    order = rng.permutation(len(x))
    return x[order].astype(np.float32), y[order].astype(np.float32)


def task_inputs() -> dict[str, np.ndarray]:
    out = {}
    rng = np.random.default_rng(11)  # multiclass: 3 overlapping blobs in 8 dimensions
    centres = rng.standard_normal((3, 8)) * 1.2
    for split, per_class in (("train", 16), ("valid", 8), ("test", 8)):
        out[f"mc_{split}_x"], out[f"mc_{split}_y"] = _blobs(rng, 3, 8, per_class, centres)
    rng = np.random.default_rng(12)  # multilabel: 4 labels from noisy linear rules in 6 dimensions
    w = rng.standard_normal((6, 4))
    for split, n in (("train", 64), ("valid", 32), ("test", 32)):
        x = rng.standard_normal((n, 6)).astype(np.float32)
        y = ((x @ w + 0.7 * rng.standard_normal((n, 4))) > 0.6).astype(np.float32)
        out[f"ml_{split}_x"], out[f"ml_{split}_y"] = x, y
    return out


_MC = {"hidden_layers": [2], "hidden_dim": [32], "dropout": [0.0], "lr": [3.2e-3], "check_val_every_n_epoch": [3],
       "batch_size": [1024]}
_ML = {"hidden_layers": [1], "hidden_dim": [16], "dropout": [0.0], "lr": [1e-2], "check_val_every_n_epoch": [3],
       "batch_size": [1024]}
# name -> (data, task metadata, one-point grid). "short": 6 epochs (checks after epochs 3 and 6), where bench
# should reproduce the trained predictor itself; "long": until early stopping, whose decisions bench should
# reproduce from the same validation scores (see README.md: long runs drift apart on rounding noise).
TASKS = {
    "mc_short": dict(data="mc", prediction_type="multiclass", evaluation=["top1_acc", "mAP"],
                     grid={**_MC, "max_epochs": [6], "patience": [20]}),
    "ml_short": dict(data="ml", prediction_type="multilabel", evaluation=["mAP", "d_prime", "aucroc"],
                     grid={**_ML, "max_epochs": [6], "patience": [20]}),
    "mc_long": dict(data="mc", prediction_type="multiclass", evaluation=["top1_acc", "mAP"],
                    grid={**_MC, "max_epochs": [45], "patience": [3]}),
    "ml_long": dict(data="ml", prediction_type="multilabel", evaluation=["mAP", "d_prime", "aucroc"],
                    grid={**_ML, "max_epochs": [90], "patience": [2]}),
}


# -- heareval -------------------------------------------------------------------------------------


def run_scores(inputs: dict[str, np.ndarray]) -> dict:
    out = {}
    for case in ("mc", "ml", "pitch"):
        pred, target = inputs[f"{case}_pred"], inputs[f"{case}_target"]
        label_to_idx = {str(i): i for i in range(target.shape[1])}
        out[case] = {name: _num(available_scores[name](label_to_idx=label_to_idx)(pred, target))
                     for name in SCORE_NAMES}
    return out


PREDICTOR_CASES = [
    dict(seed=0, nfeatures=12, nlabels=5, hidden_layers=2, hidden_dim=16, initialization="xavier_normal_",
         prediction_type="multiclass"),
    dict(seed=1, nfeatures=12, nlabels=5, hidden_layers=1, hidden_dim=16, initialization="xavier_uniform_",
         prediction_type="multilabel"),
]


def run_predictor(x: np.ndarray) -> list[dict]:
    out = []
    for case in PREDICTOR_CASES:
        conf = {"hidden_layers": case["hidden_layers"], "hidden_dim": case["hidden_dim"], "dropout": 0.1,
                "hidden_norm": torch.nn.BatchNorm1d, "norm_after_activation": False,
                "initialization": getattr(torch.nn.init, case["initialization"])}
        torch.manual_seed(case["seed"])
        model = FullyConnectedPrediction(case["nfeatures"], case["nlabels"], case["prediction_type"], conf)
        model.eval()
        with torch.no_grad():
            probs = model(torch.from_numpy(x))
        params = [{"name": n, "shape": list(p.shape), "values": p.detach().reshape(-1).tolist()}
                  for n, p in model.named_parameters()]
        out.append({**case, "modules": [type(m).__name__ for m in model.hidden] + ["Linear"],
                    "parameters": params, "output": probs.tolist()})
    return out


def _write_task(root: Path, name: str, spec: dict, inputs: dict[str, np.ndarray], grid: dict) -> None:
    """A task folder in heareval's embedding layout (what hear-preprocess + an embedding run leave);
    `name` is the data set ("mc" or "ml")."""
    root.mkdir(parents=True)
    nlabels = inputs[f"{name}_train_y"].shape[1]
    labels = [f"L{i}" for i in range(nlabels)]
    (root / "labelvocabulary.csv").write_text("idx,label\n" + "".join(f"{i},{lab}\n" for i, lab in enumerate(labels)))
    for split in ("train", "valid", "test"):
        x, y = inputs[f"{name}_{split}_x"], inputs[f"{name}_{split}_y"]
        (root / f"{split}.embeddings.npy").write_bytes(np.ascontiguousarray(x, dtype=np.float32).tobytes())
        (root / f"{split}.embedding-dimensions.json").write_text(json.dumps(list(x.shape)))
        with open(root / f"{split}.target-labels.pkl", "wb") as f:
            pickle.dump([[labels[j] for j in np.flatnonzero(row)] for row in y], f)
    meta = {"task_name": f"bench_reference_{name}", "embedding_type": "scene",
            "prediction_type": spec["prediction_type"], "split_mode": "trainvaltest",
            "splits": ["train", "valid", "test"], "evaluation": spec["evaluation"],
            "evaluation_params": {"task_specific_param_grid": grid}}
    (root / "task_metadata.json").write_text(json.dumps(meta, indent=1))


def _runner(task: Path, grid_points: int) -> None:
    cmd = [sys.executable, "-m", "heareval.predictions.runner", str(task), "--grid-points", str(grid_points)]
    res = subprocess.run(cmd, cwd=task.parent, capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")


def _hparams(path: Path) -> dict:
    """hparams.yaml as Lightning's CSVLogger wrote heareval's hparams_to_json(conf): flat `key: value` lines."""
    out = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(": ")
        value = value.strip().strip("'\"")
        m = re.search(r"<function (\w+) at|!!python/name:([\w.]+)", value)  # a callable: its name
        if m:
            value = (m.group(1) or m.group(2)).split(".")[-1]
        else:
            try:
                value = json.loads(value)
            except ValueError:
                pass
        out[key] = value
    return out


def _versions(task: Path) -> list[Path]:
    return sorted((task / "lightning_logs").glob("version_*"), key=lambda p: int(p.name.split("_")[1]))


def run_grid(work: Path, inputs: dict[str, np.ndarray]) -> list[dict]:
    task = work / "grid"
    _write_task(task, "mc", TASKS["mc_short"], inputs, {"max_epochs": [3]})
    _runner(task, grid_points=8)
    keep = ("hidden_layers", "hidden_dim", "lr", "initialization", "dropout", "batch_size", "patience",
            "check_val_every_n_epoch", "hidden_norm", "embedding_norm", "norm_after_activation", "optim")
    points = [{k: _hparams(v / "hparams.yaml")[k] for k in keep} for v in _versions(task)]
    # max_epochs was overridden above (to keep the run short): the default grid's own value
    (max_epochs,) = PARAM_GRID["max_epochs"]
    return [{**p, "max_epochs": max_epochs} for p in points]


def run_task(work: Path, name: str, inputs: dict[str, np.ndarray]) -> dict:
    task = work / name
    spec = TASKS[name]
    _write_task(task, spec["data"], spec, inputs, spec["grid"])
    _runner(task, grid_points=1)
    result = json.loads((task / "test.predicted-scores.json").read_text())
    with open(task / "test.predictions.pkl", "rb") as f:
        predictions = pickle.load(f)
    (version_dir,) = _versions(task)
    primary = f"val_{spec['evaluation'][0]}"
    history = [[int(row["epoch"]), float(row[primary])]
               for row in csv.DictReader(open(version_dir / "metrics.csv")) if row.get(primary)]
    hp = _hparams(version_dir / "hparams.yaml")
    (ckpt,) = (version_dir / "checkpoints").glob("*.ckpt")  # ModelCheckpoint keeps the best validation check
    state = torch.load(ckpt, map_location="cpu")
    test = result["test"]
    assert state["epoch"] == test["epoch"]
    return {
        "data": spec["data"], "prediction_type": spec["prediction_type"], "evaluation": spec["evaluation"],
        "hparams": {k: hp[k] for k in ("hidden_layers", "hidden_dim", "lr", "initialization", "dropout",
                                       "batch_size", "max_epochs", "patience", "check_val_every_n_epoch")},
        "validation_score": test["validation_score"], "best_epoch": test["epoch"],
        "validation_history": history,
        "test_scores": {s: _num(test[f"test_{s}"]) for s in spec["evaluation"]},
        "test_predictions": predictions["prediction"].tolist(),
        "best_state_dict": {k: {"shape": list(v.shape), "values": v.reshape(-1).tolist()}
                            for k, v in state["state_dict"].items()},
    }


def main() -> None:
    torch.set_num_threads(1)
    inputs = {**score_inputs(), **task_inputs()}
    inputs["predictor_x"] = np.random.default_rng(5).standard_normal((6, 12)).astype(np.float32)
    np.savez_compressed(INPUTS, **inputs)
    work = Path(tempfile.mkdtemp(prefix="heareval-ref-"))
    try:
        out = {
            "about": "heareval (hear-eval-kit) on probe_inputs.npz; made by make_probe.py",
            "generator": "tests/data/reference/make_probe.py",
            "versions": {**{p: version(p) for p in ("heareval", "torch", "pytorch-lightning", "scikit-learn",
                                                    "numpy", "scipy")}, "python": platform.python_version()},
            "scores": run_scores(inputs),
            "grid": run_grid(work, inputs),
            "predictor": run_predictor(inputs["predictor_x"]),
            "tasks": {name: run_task(work, name, inputs) for name in TASKS},
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    OUTPUT.write_text(json.dumps(out, indent=1) + "\n")
    for name, task in out["tasks"].items():
        print(name, task["hparams"]["initialization"], "best epoch", task["best_epoch"], task["test_scores"])
    print(f"wrote {INPUTS.name} and {OUTPUT.name} ({sys.executable})")


if __name__ == "__main__":
    main()
