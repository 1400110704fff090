"""Write a small synthetic HEAR task directory (tests, examples, smoke runs of `--task hear:PATH`).

Each class is a harmonic tone at its own pitch (250 Hz, 1 kHz, 4 kHz, ...) with +-5 % pitch jitter,
random level and a little white noise, so the classes are separable by spectrum. With
`shuffle_labels=True` the labels are permuted at random over all clips: nothing can be learned and a
probe should land near chance.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from bench import audio as au

DEFAULT_CLASSES = ("low", "mid", "high")
BASE_FREQS = (250.0, 1000.0, 4000.0, 500.0, 2000.0, 125.0)


def _tone(rng: np.random.Generator, freq: float, seconds: float, sample_rate: int) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f = freq * rng.uniform(0.95, 1.05)
    x = sum(np.sin(2 * np.pi * k * f * t + rng.uniform(0, 2 * np.pi)) / k for k in (1, 2, 3) if k * f < sample_rate / 2)
    x = rng.uniform(0.1, 0.4) * x / np.max(np.abs(x)) + 0.01 * rng.standard_normal(len(t))
    return np.clip(x, -1, 1).astype(np.float32)[None]


def write_synthetic_hear_task(
    root: str | Path,
    per_class: dict[str, int] | int | None = None,
    classes: tuple[str, ...] = DEFAULT_CLASSES,
    sample_rate: int = 16000,
    seconds: float = 0.5,
    split_mode: str = "trainvaltest",
    nfolds: int = 3,
    shuffle_labels: bool = False,
    seed: int = 0,
    task_name: str = "synthetic_tones",
) -> Path:
    """Write `root` as a HEAR scene/multiclass task; returns root.

    per_class: clips per class per split ({"train": 12, "valid": 6, "test": 15} by default for
    trainvaltest; an int applies to every split / fold).
    """
    if len(classes) > len(BASE_FREQS):
        raise ValueError(f"at most {len(BASE_FREQS)} classes")
    root = Path(root)
    if split_mode == "trainvaltest":
        splits = ["train", "valid", "test"]
    elif split_mode in ("new_split_kfold", "presplit_kfold"):
        splits = [f"fold{i:02d}" for i in range(nfolds)]
    else:
        raise ValueError(f"unknown split_mode {split_mode!r}")
    if per_class is None:
        per_class = {"train": 12, "valid": 6, "test": 15} if split_mode == "trainvaltest" else 8
    counts = {s: per_class if isinstance(per_class, int) else per_class[s] for s in splits}
    rng = np.random.default_rng(seed)
    table: dict[str, dict[str, list[str]]] = {}
    for split in splits:
        audio_dir = root / str(sample_rate) / split
        audio_dir.mkdir(parents=True, exist_ok=True)
        table[split] = {}
        for c, label in enumerate(classes):
            for i in range(counts[split]):
                name = f"{label}_{split}_{i:03d}.wav"
                clip = _tone(rng, BASE_FREQS[c], seconds, sample_rate)
                au.save(audio_dir / name, clip, sample_rate, subtype="PCM_16")
                table[split][name] = [label]
    if shuffle_labels:
        keys = [(s, k) for s in splits for k in table[s]]
        labels = [table[s][k] for s, k in keys]
        order = rng.permutation(len(labels))
        for (s, k), j in zip(keys, order):
            table[s][k] = labels[j]
    for split in splits:
        (root / f"{split}.json").write_text(json.dumps(table[split], indent=1))
    with open(root / "labelvocabulary.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["idx", "label"])
        for i, label in enumerate(classes):
            w.writerow([i, label])
    metadata = {
        "task_name": task_name, "version": "synthetic-1", "embedding_type": "scene",
        "prediction_type": "multiclass", "split_mode": split_mode, "sample_duration": seconds,
        "evaluation": ["top1_acc"], "mode": "full", "splits": splits,
    }
    if split_mode != "trainvaltest":
        metadata["nfolds"] = nfolds
    (root / "task_metadata.json").write_text(json.dumps(metadata, indent=1))
    return root
