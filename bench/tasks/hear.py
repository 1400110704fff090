"""`hear:PATH`: a task directory in the HEAR benchmark's format (as hearpreprocess writes it).

    PATH/task_metadata.json     task_name, embedding_type (scene), prediction_type (multiclass|multilabel),
                                split_mode (trainvaltest|presplit_kfold|new_split_kfold), splits, nfolds,
                                evaluation [score names; the first selects models], sample_duration, ...
    PATH/labelvocabulary.csv    header `idx,label`, idx 0..L-1
    PATH/<split>.json           {"file.wav": ["label", ...], ...}
    PATH/<sample_rate>/<split>/file.wav

Items: id `<split>/<file stem>`, `label` the labels joined by ";" (multiclass: the one label), and
`info` = {"split", "fold" (int for foldNN splits, else None), "labels" (list)}. Audio is read from the
highest sample rate present unless `sample_rate` is given. The domain comes from an optional
"domain" key in task_metadata.json, else the caller's default ("sound").
"""

from __future__ import annotations

import csv
import json
import logging
import re
from pathlib import Path
from typing import Any

from bench.tasks.base import DOMAINS, Item, Task, TaskMeta

log = logging.getLogger(__name__)

DEMO_HEAR_ROOT = Path(__file__).resolve().parent.parent / "data" / "demo" / "hear"
REQUIRED_KEYS = ("task_name", "prediction_type", "split_mode")


class HearTaskError(FileNotFoundError):
    """A HEAR task directory is missing a file or holds malformed metadata; the message names it."""


class HearTask(Task):
    def __init__(self, path: str | Path, sample_rate: int | None = None, domain: str | None = None,
                 name: str | None = None):
        self.root = Path(path).expanduser()
        if not self.root.is_dir():
            raise HearTaskError(f"hear:{path}: no such folder; give a HEAR task directory (the folder holding "
                                "task_metadata.json) as hear:PATH")
        self.hear_metadata = self._read_metadata()
        self.vocabulary = self._read_vocabulary()
        self.label_to_idx = {label: i for i, label in enumerate(self.vocabulary)}
        self.sample_rate = self._pick_rate(sample_rate)
        md = self.hear_metadata
        self.domain = md.get("domain") or domain or "sound"
        if self.domain not in DOMAINS + ("mixed",):
            raise HearTaskError(f"{self.root / 'task_metadata.json'}: domain {self.domain!r} is not one of "
                                f"{', '.join(DOMAINS)}")
        self.meta = TaskMeta(name or f"hear:{self.root}", self.domain,
                             f"HEAR task {md['task_name']} ({md['prediction_type']}, {len(self.vocabulary)} labels, "
                             f"{md['split_mode']})", licence=str(md.get("licence", md.get("license", ""))),
                             source=str(self.root))
        self._items: list[Item] | None = None

    # -- metadata --------------------------------------------------------------------------------

    def _read_metadata(self) -> dict[str, Any]:
        path = self.root / "task_metadata.json"
        if not path.exists():
            raise HearTaskError(f"{path} is missing; a HEAR task directory needs task_metadata.json, "
                                "labelvocabulary.csv, <split>.json and <sample_rate>/<split>/*.wav")
        try:
            md = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise HearTaskError(f"{path}: not valid JSON ({err})") from None
        missing = [k for k in REQUIRED_KEYS if k not in md]
        if missing:
            raise HearTaskError(f"{path}: missing key(s) {', '.join(missing)}")
        if md.get("embedding_type", "scene") != "scene":
            raise HearTaskError(f"{path}: embedding_type {md['embedding_type']!r}; the probe supports scene "
                                "tasks only (timestamp/event tasks are not implemented)")
        if md["prediction_type"] not in ("multiclass", "multilabel"):
            raise HearTaskError(f"{path}: prediction_type {md['prediction_type']!r}; expected multiclass or "
                                "multilabel")
        if "splits" not in md:
            if md["split_mode"] != "trainvaltest":
                raise HearTaskError(f"{path}: split_mode {md['split_mode']} needs a 'splits' list of fold names")
            md["splits"] = ["train", "valid", "test"]
        md.setdefault("evaluation", ["top1_acc"] if md["prediction_type"] == "multiclass" else ["mAP"])
        return md

    def _read_vocabulary(self) -> list[str]:
        path = self.root / "labelvocabulary.csv"
        if not path.exists():
            raise HearTaskError(f"{path} is missing; it lists the labels as `idx,label` rows")
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        if not rows or "idx" not in rows[0] or "label" not in rows[0]:
            raise HearTaskError(f"{path}: expected a header `idx,label` and one row per label")
        try:
            pairs = sorted((int(r["idx"]), str(r["label"])) for r in rows)
        except ValueError:
            raise HearTaskError(f"{path}: idx column must hold integers") from None
        if [i for i, _ in pairs] != list(range(len(pairs))):
            raise HearTaskError(f"{path}: idx must run 0..{len(pairs) - 1} without gaps")
        return [label for _, label in pairs]

    def _pick_rate(self, wanted: int | None) -> int:
        rates = sorted(int(p.name) for p in self.root.iterdir() if p.is_dir() and p.name.isdigit())
        if not rates:
            raise HearTaskError(f"{self.root}: no audio folder <sample_rate>/ (e.g. 16000/train/*.wav) found")
        if wanted is None:
            return rates[-1]
        if int(wanted) not in rates:
            raise HearTaskError(f"{self.root}: no audio at {wanted} Hz; available: {', '.join(map(str, rates))}")
        return int(wanted)

    @property
    def prediction_type(self) -> str:
        return self.hear_metadata["prediction_type"]

    @property
    def evaluation(self) -> list[str]:
        return list(self.hear_metadata["evaluation"])

    @property
    def splits(self) -> list[str]:
        return list(self.hear_metadata["splits"])

    def data_splits(self) -> list[dict[str, list[str]]]:
        """train/valid/test split names, one dict per k-fold rotation (heareval's definition)."""
        from bench.probe.mlp import data_splits

        return data_splits(self.hear_metadata)

    # -- items -----------------------------------------------------------------------------------

    def items(self) -> list[Item]:
        if self._items is None:
            self._items = [item for split in self.splits for item in self._split_items(split)]
        return self._items

    def _split_items(self, split: str) -> list[Item]:
        path = self.root / f"{split}.json"
        if not path.exists():
            raise HearTaskError(f"{path} is missing; task_metadata.json lists split {split!r}")
        try:
            table = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise HearTaskError(f"{path}: not valid JSON ({err})") from None
        if not isinstance(table, dict):
            raise HearTaskError(f"{path}: expected an object mapping file name -> list of labels")
        audio_dir = self.root / str(self.sample_rate) / split
        if not audio_dir.is_dir():
            raise HearTaskError(f"{audio_dir} is missing; audio for split {split!r} goes there")
        match = re.fullmatch(r"fold(\d+)", split)
        fold = int(match.group(1)) if match else None
        items = []
        for file, labels in sorted(table.items()):
            labels = [str(x) for x in (labels if isinstance(labels, list) else [labels])]
            unknown = [x for x in labels if x not in self.label_to_idx]
            if unknown:
                raise HearTaskError(f"{path}: {file} has label(s) {unknown} not in labelvocabulary.csv")
            if self.prediction_type == "multiclass" and len(labels) != 1:
                raise HearTaskError(f"{path}: {file} has {len(labels)} labels; a multiclass task needs exactly one")
            items.append(Item(id=f"{split}/{Path(file).stem}", domain=self.domain, path=audio_dir / file,
                              label=";".join(labels), sample_rate=self.sample_rate,
                              info={"split": split, "fold": fold, "labels": labels}))
        return items


class DemoHearTask(HearTask):
    """A HEAR task shipped in bench/data/demo/hear/<subdir>."""

    registry_name = ""
    subdir = ""
    default_domain = "sound"

    def __init__(self):
        path = DEMO_HEAR_ROOT / self.subdir
        if not (path / "task_metadata.json").exists():
            raise HearTaskError(f"{self.registry_name}: the shipped HEAR task {path} is missing; reinstall bench "
                                "(the demo corpus ships inside the package) or point --task hear:PATH at a copy")
        super().__init__(path, domain=self.default_domain, name=self.registry_name)


class DemoDigits(DemoHearTask):
    registry_name, subdir, default_domain = "demo-digits", "digits", "speech"


class DemoInstruments(DemoHearTask):
    registry_name, subdir, default_domain = "demo-instruments", "instruments", "music"


class DemoDrums(DemoHearTask):
    registry_name, subdir, default_domain = "demo-drums", "drums", "sound"
