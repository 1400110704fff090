"""`musdb:ROOT`: MUSDB18 / MUSDB18-HQ music (150 full tracks, stereo 44.1 kHz), as the archives unpack.

MUSDB18-HQ (uncompressed; $BENCH_DATA/musdb18hq)::

    ROOT/test/TRACK NAME/mixture.wav  drums.wav  bass.wav  other.wav  vocals.wav
    ROOT/train/...

MUSDB18 (Native Instruments stems: one MP4 with 5 stereo AAC streams; $BENCH_DATA/musdb18)::

    ROOT/test/TRACK NAME.stem.mp4     stream 0 mixture, 1 drums, 2 bass, 3 other (the rest), 4 vocals

Sources (facts only): the dataset page sigsep.github.io/datasets/musdb.html (folders, the stream order, 44.1 kHz
stereo) and sigsep-mus-db's `musdb/configs/mus.yaml` (`stem_ids`: mixture 0, drums 1, bass 2, other 3,
vocals 4; the HQ file names). Stems are decoded with PyAV (no ffmpeg binary): each window decodes its stream
from the start and slices it, so it holds exactly the samples of a whole-track decode.

Options: `split=test` (default) or `train`; `stem=mixture` (default), drums, bass, other or vocals;
`segment=10` (seconds, the default; `segment=none` scores whole tracks, which bench refuses past its
--max-seconds); `format=auto|hq|stems` (auto: whichever the split folder holds; both at once is an error).
Items: id `TRACK NAME#0003` (window 3), domain music, info = {"track", "stem", "split", "format",
"start_s", "stop_s", "window"}. A last partial window shorter than half a window is dropped.

Licence: the tracks may be used for academic (non-commercial) research only; each track keeps its own
licence (listed by sigsep). Access is granted on request on Zenodo (record 1117372; HQ 3338373).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from bench.tasks.base import Item, TaskMeta
from bench.tasks.segments import (DataLayoutError, DataRootError, DatasetTask, file_items, listing,
                                  segment_seconds)

log = logging.getLogger(__name__)

STEMS = ("mixture", "drums", "bass", "other", "vocals")  # index = audio stream of a .stem.mp4
FORMATS = ("auto", "hq", "stems")


class MusdbTask(DatasetTask):
    prefix = "musdb"
    folders = ("musdb18hq", "musdb18", "MUSDB18-HQ", "MUSDB18")
    defaults: dict[str, Any] = {"split": "test", "stem": "mixture", "segment": 10, "format": "auto"}
    expected = ("test/TRACK/mixture.wav + drums/bass/other/vocals.wav (MUSDB18-HQ) or test/TRACK.stem.mp4 "
                "(MUSDB18)")

    def __init__(self, spec: str | None = None, **options: Any):
        super().__init__(spec, **options)
        self.split = str(self.options["split"])
        self.stem = str(self.options["stem"])
        if self.stem not in STEMS:
            raise ValueError(f"musdb: stem={self.stem!r}; use one of {', '.join(STEMS)}")
        self.format = str(self.options["format"])
        if self.format not in FORMATS:
            raise ValueError(f"musdb: format={self.format!r}; use one of {', '.join(FORMATS)}")
        self.segment = segment_seconds(self.prefix, self.options["segment"])
        folder = self.root / self.split
        if not folder.is_dir():
            raise DataRootError(f"{self.where()}: no {self.split}/ folder (expected ROOT/{self.split}/TRACK/"
                                f"mixture.wav (MUSDB18-HQ) or ROOT/{self.split}/TRACK.stem.mp4 (MUSDB18)); found: "
                                f"{listing(self.root)}")
        self.format = self._detect(folder)
        window = f", {self.segment:g} s windows" if self.segment else ", whole tracks"
        kind = "MUSDB18-HQ (wav)" if self.format == "hq" else "MUSDB18 (stems mp4)"
        self.meta = TaskMeta(self.spec, "music", f"{kind} {self.split} {self.stem}, stereo 44.1 kHz{window}",
                             licence="academic non-commercial research only (per-track licences, sigsep)",
                             source="https://sigsep.github.io/datasets/musdb.html")

    def expected_layout(self) -> str:
        return self.expected.replace("test/", f"{self.options['split']}/")

    def _hq_tracks(self, folder: Path) -> list[Path]:
        return sorted(p for p in folder.iterdir() if p.is_dir() and (p / "mixture.wav").is_file())

    def _stem_files(self, folder: Path) -> list[Path]:
        return sorted(p for p in folder.glob("*.stem.mp4") if p.is_file())

    def _detect(self, folder: Path) -> str:
        hq, stems = self._hq_tracks(folder), self._stem_files(folder)
        where = f"{self.where()}/{self.split}"
        if self.format == "hq" and not hq or self.format == "stems" and not stems or not (hq or stems):
            wanted = {"hq": "MUSDB18-HQ track folders (TRACK/mixture.wav + drums/bass/other/vocals.wav)",
                      "stems": "MUSDB18 stem files (TRACK.stem.mp4)"}
            what = wanted.get(self.format, f"{wanted['hq']} or {wanted['stems']}")
            raise DataRootError(f"{where}: no {what}; found: {listing(folder)}")
        if self.format == "auto":
            if hq and stems:
                raise DataRootError(f"{where}: holds both MUSDB18-HQ track folders ({len(hq)}) and .stem.mp4 files "
                                    f"({len(stems)}); say which with musdb:ROOT,format=hq or format=stems")
            return "hq" if hq else "stems"
        return self.format

    def _list(self) -> list[Item]:
        folder = self.root / self.split
        items: list[Item] = []
        if self.format == "hq":
            for track in self._hq_tracks(folder):
                path = track / f"{self.stem}.wav"
                if not path.is_file():
                    raise DataLayoutError(f"{self.where()}: {track.relative_to(self.root)}/ has no {self.stem}.wav "
                                          f"(a MUSDB18-HQ track folder holds {', '.join(s + '.wav' for s in STEMS)}); "
                                          f"found: {listing(track)}")
                items.extend(self._track_items(track.name, path, None))
        else:
            for path in self._stem_files(folder):
                name = path.name[: -len(".stem.mp4")]
                items.extend(self._track_items(name, path, STEMS.index(self.stem)))
        return items

    def _track_items(self, track: str, path: Path, stream: int | None) -> list[Item]:
        info = {"track": track, "stem": self.stem, "split": self.split, "format": self.format}
        return file_items(track, path, "music", self.segment, info=info, stream=stream)
