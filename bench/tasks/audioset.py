"""`audioset:ROOT`: AudioSet evaluation segments (10 s YouTube clips, 527 classes, several labels each).

Layout ($BENCH_DATA/audioset)::

    ROOT/eval_segments.csv            Google's segment list: `#` header lines, then rows
                                      `YTID, start_seconds, end_seconds, "MID,MID,..."`
    ROOT/class_labels_indices.csv     header `index,mid,display_name`; display names may hold commas (quoted)
    ROOT/<clips>/CLIP.wav|.flac|...   the downloaded clips, in the first of eval_segments/, eval/, audio/eval/,
                                      audio/eval_segments/, audio/, clips/ that holds audio (or ROOT itself);
                                      `clips=SUBDIR` says where. Subfolders are searched too.

Clip names accepted (what the common downloaders write): `YTID_START_END` (seconds in any decimal form:
`-0RWZT-miFs_420.000_430.000`, `..._420_430`), `YTID`, and `YYTID` (audioset_tagging_cnn prefixes a "Y"
because some ids start with "-"). A YouTube id is 11 characters of [A-Za-z0-9_-]. Sources (facts only): the
download page research.google.com/audioset/download.html (CSV columns, the header lines, CC BY 4.0);
qiuqiangkong/audioset_tagging_cnn `utils/dataset.py` (`Y{YTID}.wav`, 3 header lines); downloader scripts on
GitHub that write `{YTID}_{start}_{end}.wav`.

Missing clips: an AudioSet download always misses some videos (deleted, private, region-locked). Segments
without a clip are left out of the task (not failures), counted in `task.missing` and reported once in the
log at listing; the manifest digest covers exactly the clips present. No clip at all is an error.

Options: `csv=eval_segments.csv` (e.g. balanced_train_segments.csv), `clips=SUBDIR`. Items: id = the YouTube id
(`YTID_START` when one id has several segments in the CSV), domain sound, `label` = display names joined by
";", info = {"labels" (display names), "mids", "ytid", "start_s", "end_s"}.
"""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path
from typing import Any

from bench.audio import AUDIO_EXTENSIONS
from bench.tasks.base import Item, TaskMeta
from bench.tasks.segments import DataLayoutError, DataRootError, DatasetTask, listing

log = logging.getLogger(__name__)

_YTID = r"[A-Za-z0-9_-]{11}"
_NUM = r"\d+(?:\.\d*)?"


def clip_keys(stem: str) -> list[tuple[str, float | None]]:
    """Every reading of a clip's file name as (ytid, start seconds or None): `YTID_START_END`, `YYTID_START_END`,
    `YTID`, `YYTID`. An id may itself begin with "Y", so a name can have two readings; lookups go by the
    CSV's (ytid, start), so an extra reading is harmless."""
    out: list[tuple[str, float | None]] = []
    for prefixed in (False, True):
        if prefixed and not stem.startswith("Y"):
            continue
        rest = stem[1:] if prefixed else stem
        timed = re.fullmatch(rf"({_YTID})_({_NUM})_({_NUM})", rest)
        if timed:
            out.append((timed.group(1), float(timed.group(2))))
        elif re.fullmatch(_YTID, rest):
            out.append((rest, None))
    return out


class AudioSetTask(DatasetTask):
    prefix = "audioset"
    folders = ("audioset", "AudioSet")
    defaults: dict[str, Any] = {"csv": "eval_segments.csv", "clips": ""}
    expected = "eval_segments.csv, class_labels_indices.csv and the clips (eval_segments/YTID_START_END.wav, ...)"

    def __init__(self, spec: str | None = None, **options: Any):
        super().__init__(spec, **options)
        self.csv_path = self.root / str(self.options["csv"])
        self.labels_path = self.root / "class_labels_indices.csv"
        for path, what in ((self.csv_path, "the segment list (rows `YTID, start_seconds, end_seconds, \"MID,...\"`)"),
                           (self.labels_path, "the label names (`index,mid,display_name`)")):
            if not path.is_file():
                raise DataRootError(f"{self.where()}: no {path.name} (expected ROOT/{path.name}: {what}; both CSVs "
                                    "are on research.google.com/audioset/download.html); found: "
                                    f"{listing(self.root)}")
        self.names = self._read_labels()
        self.segments = self._read_segments()
        self.clips_dir = self._find_clips()
        self.missing: list[str] = []
        self.meta = TaskMeta(self.spec, "sound", f"AudioSet {self.csv_path.stem}: 10 s YouTube clips with their "
                             f"labels ({len(self.names)} classes)",
                             licence="labels CC-BY-4.0 (Google); clips under their YouTube uploaders' terms",
                             source="https://research.google.com/audioset/")

    def _read_labels(self) -> dict[str, str]:
        with open(self.labels_path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        if not rows or [c.strip() for c in rows[0][:3]] != ["index", "mid", "display_name"]:
            raise DataLayoutError(f"{self.labels_path}: expected a header `index,mid,display_name`, got "
                                  f"{','.join(rows[0]) if rows else 'an empty file'}")
        names = {}
        for n, row in enumerate(rows[1:], 2):
            if not row:
                continue
            if len(row) < 3:
                raise DataLayoutError(f"{self.labels_path}:{n}: expected `index,mid,display_name`, got {row}")
            names[row[1].strip()] = row[2].strip()
        return names

    def _read_segments(self) -> list[dict[str, Any]]:
        out = []
        with open(self.csv_path, newline="", encoding="utf-8") as f:
            lines = [(n, line) for n, line in enumerate(f, 1) if line.strip() and not line.lstrip().startswith("#")]
        for n, line in lines:
            row = next(csv.reader([line], skipinitialspace=True))
            where = f"{self.csv_path}:{n}"
            if len(row) != 4:
                raise DataLayoutError(f"{where}: expected `YTID, start_seconds, end_seconds, \"MID,MID\"` (4 fields), "
                                      f"got {len(row)}: {line.strip()!r}")
            ytid, start, end, mids = (c.strip() for c in row)
            try:
                start_s, end_s = float(start), float(end)
            except ValueError:
                raise DataLayoutError(f"{where}: start/end seconds must be numbers, got {start!r}, {end!r}") from None
            mid_list = [m.strip() for m in mids.split(",") if m.strip()]
            unknown = [m for m in mid_list if m not in self.names]
            if unknown or not mid_list:
                raise DataLayoutError(f"{where}: label(s) {unknown or '(none)'} not in {self.labels_path.name}")
            out.append({"ytid": ytid, "start_s": start_s, "end_s": end_s, "mids": mid_list})
        if not out:
            raise DataLayoutError(f"{self.csv_path}: no segment rows (only `#` header lines?)")
        return out

    def _find_clips(self) -> Path:
        if self.options["clips"]:
            path = self.root / str(self.options["clips"])
            if not path.is_dir():
                raise DataRootError(f"{self.where()}: clips={self.options['clips']}: no such folder; found: "
                                    f"{listing(self.root)}")
            return path
        base = self.csv_path.stem
        short = base.removesuffix("_segments")
        for sub in (base, short, f"audio/{short}", f"audio/{base}", "audio", "clips", "."):
            path = self.root / sub
            if path.is_dir() and any(_is_audio(p) for p in path.rglob("*")):
                return path.resolve() if sub == "." else path
        raise DataRootError(f"{self.where()}: no clips found (expected audio files named YTID_START_END.wav, "
                            f"YTID.wav or YYTID.wav in ROOT/{base}/, ROOT/{short}/, ROOT/audio/ or ROOT/clips/, or "
                            f"clips=SUBDIR); found: {listing(self.root)}")

    def _list(self) -> list[Item]:
        timed: dict[tuple[str, float], Path] = {}
        plain: dict[str, Path] = {}
        for path in sorted(p for p in self.clips_dir.rglob("*") if _is_audio(p)):
            for ytid, start in clip_keys(path.stem):
                if start is None:
                    plain.setdefault(ytid, path)
                else:
                    timed.setdefault((ytid, round(start, 3)), path)
        counts: dict[str, int] = {}
        for seg in self.segments:
            counts[seg["ytid"]] = counts.get(seg["ytid"], 0) + 1
        items, missing = [], []
        for seg in self.segments:
            ytid = seg["ytid"]
            path = timed.get((ytid, round(seg["start_s"], 3)))
            if path is None and counts[ytid] == 1:
                path = plain.get(ytid)
            item_id = ytid if counts[ytid] == 1 else f"{ytid}_{seg['start_s']:g}"
            if path is None:
                missing.append(item_id)
                continue
            names = [self.names[m] for m in seg["mids"]]
            items.append(Item(id=item_id, domain="sound", path=path, label=";".join(names),
                              info={"labels": names, "mids": list(seg["mids"]), "ytid": ytid,
                                    "start_s": seg["start_s"], "end_s": seg["end_s"]}))
        self.missing = missing
        if not items:
            raise DataRootError(f"{self.where()}: none of the {len(self.segments)} segments in {self.csv_path.name} "
                                f"has a clip in {self.clips_dir} (expected names YTID_START_END.wav, YTID.wav or "
                                f"YYTID.wav; found: {listing(self.clips_dir)})")
        if missing:
            log.warning("%s: %d of %d segments in %s have no clip in %s (AudioSet downloads always miss some); "
                        "they are left out of the task and its manifest digest (first: %s)", self.where(),
                        len(missing), len(self.segments), self.csv_path.name, self.clips_dir, missing[0])
        return items


def _is_audio(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_EXTENSIONS and path.is_file()
