"""heareval's on-disk embedding format, so users can cross-check our probe with the reference kit.

Per split, in one directory (what `heareval.embeddings.task_embeddings.memmap_embeddings` writes and
`heareval.predictions.task_predictions.SplitMemmapDataset` reads, scene tasks):

- `<split>.embeddings.npy`: a RAW float32 C-order memmap `[n, d]`, NO .npy header (np.load fails on it;
  read it with `np.memmap(path, dtype=float32, mode="r", shape=(n, d))`);
- `<split>.embedding-dimensions.json`: `[n, d]`;
- `<split>.target-labels.pkl`: a pickled list of n label lists (strings).

The predictor also expects `task_metadata.json`, `labelvocabulary.csv` and `<split>.json` beside
them; `export_task` copies those from the task directory. Then
`python -m heareval.predictions.runner DIR` runs the reference kit on our embeddings.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np


def write_heareval_embeddings(directory: str | Path, split: str, embeddings: np.ndarray,
                              labels: Sequence[Sequence[str]]) -> Path:
    """Write one split's scene embeddings `[n, d]` and label lists; returns the memmap's path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    emb = np.ascontiguousarray(np.asarray(embeddings, dtype=np.float32))
    if emb.ndim != 2:
        raise ValueError(f"embeddings must be [n, d], got shape {emb.shape}")
    if len(labels) != emb.shape[0]:
        raise ValueError(f"{emb.shape[0]} embeddings but {len(labels)} label lists")
    path = directory / f"{split}.embeddings.npy"
    emb.tofile(path)  # the same bytes np.memmap(mode="w+") would hold: raw float32, no header
    (directory / f"{split}.embedding-dimensions.json").write_text(json.dumps(list(emb.shape)))
    with open(directory / f"{split}.target-labels.pkl", "wb") as f:
        pickle.dump([[str(x) for x in lab] for lab in labels], f)
    return path


def read_heareval_embeddings(directory: str | Path, split: str) -> tuple[np.ndarray, list[list[str]]]:
    """Read back one split: (float32 `[n, d]`, label lists)."""
    directory = Path(directory)
    dims_path = directory / f"{split}.embedding-dimensions.json"
    if not dims_path.exists():
        raise FileNotFoundError(f"{dims_path} is missing; is {directory} a heareval embedding directory?")
    n, d = json.loads(dims_path.read_text())
    emb = np.array(np.memmap(directory / f"{split}.embeddings.npy", dtype=np.float32, mode="r", shape=(n, d)))
    with open(directory / f"{split}.target-labels.pkl", "rb") as f:
        labels = pickle.load(f)
    return emb, labels


def export_task(directory: str | Path, task_dir: str | Path | None, splits: dict[str, tuple[np.ndarray, list]]) -> Path:
    """Write every split, plus copies of the task's metadata, vocabulary and split files when known."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for split, (emb, labels) in splits.items():
        write_heareval_embeddings(directory, split, emb, labels)
    if task_dir is not None:
        task_dir = Path(task_dir)
        names = ["task_metadata.json", "labelvocabulary.csv"] + [f"{s}.json" for s in splits]
        for name in names:
            if (task_dir / name).exists():
                shutil.copy(task_dir / name, directory / name)
    return directory
