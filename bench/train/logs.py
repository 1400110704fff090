"""Logs of a training run: CSV rows (append, truncate on resume, read) and the curves plot (matplotlib PNG)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from bench.train import checkpoint as ckpt


def append_csv(path: Path, columns: list[str], row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        if new:
            w.writeheader()
        w.writerow({k: row.get(k, "") for k in columns})


def truncate_csv(path: Path, step: int) -> None:
    """Drop rows after `step` (logged by a run killed after its last checkpoint)."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
        columns = rows[0].keys() if rows else None
    if columns is None:
        return
    keep = [r for r in rows if int(r["step"]) <= step]

    def write(f):
        w = csv.DictWriter(f, fieldnames=list(columns))
        w.writeheader()
        w.writerows(keep)

    ckpt.atomic_write(path, write, binary=False)


def read_log(path: str | Path) -> list[dict]:
    """A run's CSV log as a list of dicts of floats."""
    with open(path, newline="") as f:
        return [{k: float(v) if v not in ("", None) else math.nan for k, v in r.items()} for r in csv.DictReader(f)]


def plot_curves(run_dir: Path) -> Path | None:
    """RUN_DIR/curves.png: training loss, VQ utilisation and validation mel distance against step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = read_log(run_dir / "train_log.csv") if (run_dir / "train_log.csv").exists() else []
    val = read_log(run_dir / "val_log.csv") if (run_dir / "val_log.csv").exists() else []
    if not train and not val:
        return None
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    if train:
        s = [r["step"] for r in train]
        axes[0].plot(s, [r["loss"] for r in train], label="total")
        axes[0].plot(s, [r["diffusion"] for r in train], label="diffusion (v)")
        axes[0].plot(s, [r["commitment"] for r in train], label="commitment")
        axes[0].set_yscale("log")
        axes[0].legend()
        axes[1].plot(s, [100 * r["vq_utilisation"] for r in train])
    if val:
        s = [r["step"] for r in val]
        axes[2].plot(s, [r["mel_distance"] for r in val], marker="o", label="vs input")
        axes[2].plot(s, [r["mel_distance_resynth"] for r in val], marker="o", label="vs first-stage resynthesis")
        axes[2].legend()
    for ax, title in zip(axes, ("training loss", "acoustic codes used (%)", "validation mel distance")):
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = run_dir / "curves.png"
    ckpt.atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)
    return path
