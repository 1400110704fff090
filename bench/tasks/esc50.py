"""`esc50:ROOT`: ESC-50 environmental sound classification (2000 clips of 5 s, 44.1 kHz mono, 50 classes, 5 folds)
as a HEAR-protocol task for the probe.

Layout (the GitHub archive; $BENCH_DATA/ESC-50, or ESC-50-master as the zip unpacks)::

    ROOT/meta/esc50.csv     header `filename,fold,target,category,esc10,src_file,take`
    ROOT/audio/*.wav        `{FOLD}-{CLIP_ID}-{TAKE}-{TARGET}.wav`

Source (facts only): the dataset's README (github.com/karolpiczak/ESC-50): the columns, the naming, the 5 folds
(clips cut from one Freesound recording stay in one fold), CC BY-NC 3.0 (the ESC-10 subset CC BY).

The probe's protocol (`hear_metadata`, `vocabulary`, items with info["split"] and info["labels"], as
bench.probe.evaluation needs):
- default: the 5 folds as HEAR `presplit_kfold` splits `fold1`..`fold5` (HEAR's own esc50 task: the same 5
  folds, named fold00..fold04): the probe rotates test = fold k, valid = the next fold, train = the other
  three, and reports the mean (and std) over the 5 rotations;
- `fold=K`: one rotation only, test = fold K, valid = fold K+1 (fold 1 after fold 5), train = the other three
  (HEAR `trainvaltest`): the same numbers as rotation K of the default, at a fifth of the cost;
- `esc10`: only the ESC-10 subset (10 classes).
Items: id = the file name without .wav, domain sound, `label` = the category, info = {"split", "fold" (the
ESC-50 fold), "labels" [category], "target", "esc10"}. Missing audio files are an error (a complete download
has all 2000).
"""

from __future__ import annotations

import csv
import logging
from typing import Any

from bench.tasks.base import Item, TaskMeta
from bench.tasks.segments import DataLayoutError, DataRootError, DatasetTask, listing

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("filename", "fold", "target", "category")


class ESC50Task(DatasetTask):
    prefix = "esc50"
    folders = ("ESC-50", "ESC-50-master", "esc50")
    defaults: dict[str, Any] = {"fold": None, "esc10": False}
    expected = "meta/esc50.csv and audio/*.wav"

    def __init__(self, spec: str | None = None, **options: Any):
        super().__init__(spec, **options)
        self.esc10 = bool(self.options["esc10"])
        self.rows = self._read_meta()
        self.folds = sorted({r["fold"] for r in self.rows})
        if len(self.folds) < 3:
            raise DataLayoutError(f"{self.csv_path}: {len(self.folds)} fold(s) {self.folds}; the probe needs at least "
                                  "3 (train, valid, test); ESC-50 has 5")
        fold = self.options["fold"]
        if isinstance(fold, str) and fold.lower() in ("none", "all", ""):
            fold = None
        if fold is not None and not isinstance(fold, bool):
            try:
                fold = int(fold)
            except (TypeError, ValueError):
                pass
        if fold is not None and fold not in self.folds:
            raise ValueError(f"esc50: fold={fold!r}; use one of {', '.join(map(str, self.folds))} (or no fold= for "
                             "all five rotations)")
        self.fold = fold
        by_target: dict[int, str] = {}
        for r in self.rows:
            if by_target.setdefault(r["target"], r["category"]) != r["category"]:
                raise DataLayoutError(f"{self.csv_path}: target {r['target']} is both {by_target[r['target']]!r} and "
                                      f"{r['category']!r}")
        self.vocabulary = [by_target[t] for t in sorted(by_target)]
        if len(set(self.vocabulary)) != len(self.vocabulary):
            raise DataLayoutError(f"{self.csv_path}: one category has several targets")
        self.label_to_idx = {label: i for i, label in enumerate(self.vocabulary)}
        if fold is None:
            splits, mode = [f"fold{k}" for k in self.folds], "presplit_kfold"
        else:
            splits, mode = ["train", "valid", "test"], "trainvaltest"
        self.hear_metadata: dict[str, Any] = {
            "task_name": "esc10" if self.esc10 else "esc50", "version": "bench-esc50-1", "embedding_type": "scene",
            "prediction_type": "multiclass", "split_mode": mode, "splits": splits, "evaluation": ["top1_acc"],
            "sample_duration": 5.0, "domain": "sound",
        }
        if fold is None:
            self.hear_metadata["nfolds"] = len(self.folds)
        subset = "ESC-10" if self.esc10 else "ESC-50"
        protocol = (f"{len(self.folds)}-fold rotation" if fold is None else
                    f"test fold {fold}, valid fold {self._next_fold(fold)}")
        self.meta = TaskMeta(self.spec, "sound", f"{subset}: 5 s environmental sounds, {len(self.vocabulary)} classes "
                             f"(probe: {protocol})",
                             licence="CC-BY-3.0 (ESC-10 subset)" if self.esc10 else "CC-BY-NC-3.0",
                             source="https://github.com/karolpiczak/ESC-50")

    @property
    def csv_path(self):
        return self.root / "meta" / "esc50.csv"

    def _read_meta(self) -> list[dict[str, Any]]:
        path = self.csv_path
        if not path.is_file():
            raise DataRootError(f"{self.where()}: no meta/esc50.csv (expected ROOT/meta/esc50.csv and "
                                f"ROOT/audio/*.wav, as github.com/karolpiczak/ESC-50 unpacks); found: "
                                f"{listing(self.root)}")
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = [c.strip() for c in (reader.fieldnames or [])]
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                raise DataLayoutError(f"{path}: missing column(s) {', '.join(missing)}; expected a header "
                                      "`filename,fold,target,category,esc10,src_file,take`")
            rows = []
            for n, raw in enumerate(reader, 2):
                r = {k.strip(): (v or "").strip() for k, v in raw.items() if k}
                try:
                    fold, target = int(r["fold"]), int(r["target"])
                except ValueError:
                    raise DataLayoutError(f"{path}:{n}: fold and target must be integers, got {r['fold']!r}, "
                                          f"{r['target']!r}") from None
                esc10 = r.get("esc10", "").lower() in ("true", "1", "yes")
                if self.esc10 and not esc10:
                    continue
                if not r["filename"] or not r["category"]:
                    raise DataLayoutError(f"{path}:{n}: empty filename or category")
                rows.append({"filename": r["filename"], "fold": fold, "target": target, "category": r["category"],
                             "esc10": esc10, "src_file": r.get("src_file", ""), "take": r.get("take", "")})
        if not rows:
            raise DataLayoutError(f"{path}: no rows" + (" with esc10=True" if self.esc10 else ""))
        return rows

    def _next_fold(self, fold: int) -> int:
        return self.folds[(self.folds.index(fold) + 1) % len(self.folds)]

    def _split_of(self, fold: int) -> str:
        if self.fold is None:
            return f"fold{fold}"
        if fold == self.fold:
            return "test"
        return "valid" if fold == self._next_fold(self.fold) else "train"

    def _list(self) -> list[Item]:
        audio = self.root / "audio"
        if not audio.is_dir():
            raise DataRootError(f"{self.where()}: no audio/ folder (expected ROOT/audio/*.wav beside meta/); found: "
                                f"{listing(self.root)}")
        items, missing = [], []
        for r in self.rows:
            path = audio / r["filename"]
            if not path.is_file():
                missing.append(r["filename"])
                continue
            items.append(Item(id=path.stem, domain="sound", path=path, label=r["category"],
                              info={"split": self._split_of(r["fold"]), "fold": r["fold"], "labels": [r["category"]],
                                    "target": r["target"], "esc10": r["esc10"]}))
        if missing:
            raise DataRootError(f"{self.where()}: {len(missing)} of the {len(self.rows)} clips in meta/esc50.csv are "
                                f"not in audio/ (first: {missing[0]}); re-download the dataset")
        return items

    # -- what the probe asks of a HEAR task ---------------------------------------------------------------------

    @property
    def prediction_type(self) -> str:
        return "multiclass"

    @property
    def evaluation(self) -> list[str]:
        return list(self.hear_metadata["evaluation"])

    @property
    def splits(self) -> list[str]:
        return list(self.hear_metadata["splits"])

    def data_splits(self) -> list[dict[str, list[str]]]:
        """train/valid/test split names, one dict per rotation (heareval's definition)."""
        from bench.probe.mlp import data_splits

        return data_splits(self.hear_metadata)
