"""`libritts:ROOT` and `librispeech:ROOT`: read English speech with transcripts, as the openslr tarballs unpack.

LibriTTS (openslr 60, 24 kHz WAV; LibriTTS-R has the same layout)::

    ROOT/                                   the `LibriTTS/` folder of the tarballs ($BENCH_DATA/LibriTTS)
      test-clean/SPEAKER/CHAPTER/SPEAKER_CHAPTER_PARAGRAPH_SENTENCE.wav
                                 .../SPEAKER_CHAPTER_PARAGRAPH_SENTENCE.normalized.txt   (the transcript used)
                                 .../SPEAKER_CHAPTER_PARAGRAPH_SENTENCE.original.txt     (kept in info)

LibriSpeech (openslr 12, 16 kHz FLAC)::

    ROOT/                                   the `LibriSpeech/` folder of the tarballs ($BENCH_DATA/LibriSpeech)
      test-clean/SPEAKER/CHAPTER/SPEAKER-CHAPTER-NNNN.flac
                         .../SPEAKER-CHAPTER.trans.txt          one `SPEAKER-CHAPTER-NNNN TRANSCRIPT` line each

Sources for the layouts (facts only): LibriSpeech's own README.TXT (openslr.org/12); torchaudio's
`torchaudio/datasets/libritts.py` (folder `LibriTTS`, split folders, `*/*/*.wav` with `.normalized.txt` and
`.original.txt` beside each) and `torchaudio/datasets/librispeech.py` (`SPEAKER-CHAPTER.trans.txt`).

Options: `split=test-clean` (default; any split folder: test-other, dev-clean, ...; several joined by `+`,
`split=test-clean+test-other`), `segment=S` (default none: whole utterances; windows lose their transcript).
Items: id = the utterance id (unique across the corpus), domain speech, `text` = the transcript,
info = {"split", "speaker", "chapter"} (+ "original_text" for LibriTTS). A ROOT that holds `LibriTTS/` (or
`LibriSpeech/`) instead of the split folders is accepted too.

A wav without its transcript (or a `.trans.txt` line without its flac) is a warning, logged once with the
count; such an item has no text (WER skips it, the signal metrics score it). No transcript at all is an error.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from bench.tasks.base import Item, TaskMeta
from bench.tasks.segments import (DataLayoutError, DataRootError, DatasetTask, file_items, listing,
                                  segment_seconds)

log = logging.getLogger(__name__)


class _LibriTask(DatasetTask):
    defaults: dict[str, Any] = {"split": "test-clean", "segment": None}
    archive_folder = ""  # the top folder inside the tarballs
    licence = "CC-BY-4.0"
    source = ""
    title = ""

    def __init__(self, spec: str | None = None, **options: Any):
        super().__init__(spec, **options)
        if not (self.root / self._first_split()).is_dir() and (self.root / self.archive_folder).is_dir():
            self.root = self.root / self.archive_folder  # ROOT given one level up
        self.splits = [s.strip() for s in str(self.options["split"]).split("+") if s.strip()]
        if not self.splits:
            raise ValueError(f"{self.prefix}: split={self.options['split']!r}; name a split folder, e.g. test-clean")
        self.segment = segment_seconds(self.prefix, self.options["segment"])
        for split in self.splits:
            if not (self.root / split).is_dir():
                raise DataRootError(f"{self.where()}: no {split}/ folder (expected {self._expected(split)}); "
                                    f"found: {listing(self.root)}")
        self.meta = TaskMeta(self.spec, "speech", f"{self.title} {'+'.join(self.splits)}: read English speech with "
                             "transcripts" + (f", {self.segment:g} s windows" if self.segment else ""),
                             licence=self.licence, source=self.source)

    def expected_layout(self) -> str:
        return self.expected.replace("test-clean", str(self.options["split"]))

    def _first_split(self) -> str:
        return str(self.options["split"]).split("+")[0].strip()

    def _expected(self, split: str) -> str:
        raise NotImplementedError

    def _list(self) -> list[Item]:
        items: list[Item] = []
        for split in self.splits:
            items.extend(self._split_items(split))
        return items

    def _make(self, utt: str, path: Path, text: str | None, info: dict[str, Any]) -> list[Item]:
        return file_items(utt, path, "speech", self.segment, text=text, info=info)

    def _warn_missing(self, split: str, what: str, missing: list[str]) -> None:
        if missing:
            log.warning("%s: %d %s in %s/ (first: %s); they are scored without a transcript (WER skips them)",
                        self.where(), len(missing), what, split, missing[0])


class LibriTTSTask(_LibriTask):
    prefix = "libritts"
    folders = ("LibriTTS",)
    archive_folder = "LibriTTS"
    expected = "test-clean/SPEAKER/CHAPTER/*.wav with a .normalized.txt beside each"
    source = "https://www.openslr.org/60/"
    title = "LibriTTS"

    def _expected(self, split: str) -> str:
        return f"ROOT/{split}/SPEAKER/CHAPTER/*.wav with .normalized.txt beside each"

    def _split_items(self, split: str) -> list[Item]:
        folder = self.root / split
        wavs = sorted(folder.glob("*/*/*.wav"))
        if not wavs:
            raise DataRootError(f"{self.where()}: {split}/ holds no SPEAKER/CHAPTER/*.wav files (expected "
                                f"{self._expected(split)}); found in {split}/: {listing(folder)}")
        items, missing = [], []
        for wav in wavs:
            utt = wav.stem
            text = _read_text(wav.with_name(utt + ".normalized.txt"))
            if text is None:
                missing.append(wav.relative_to(self.root).as_posix())
            info: dict[str, Any] = {"split": split, "speaker": wav.parent.parent.name, "chapter": wav.parent.name}
            original = _read_text(wav.with_name(utt + ".original.txt"))
            if original is not None:
                info["original_text"] = original
            items.extend(self._make(utt, wav, text, info))
        if len(missing) == len(wavs):
            raise DataRootError(f"{self.where()}: no .normalized.txt transcript beside any of the {len(wavs)} wav "
                                f"files in {split}/ (expected {self._expected(split)})")
        self._warn_missing(split, "wav files have no .normalized.txt", missing)
        return items


class LibriSpeechTask(_LibriTask):
    prefix = "librispeech"
    folders = ("LibriSpeech",)
    archive_folder = "LibriSpeech"
    expected = "test-clean/SPEAKER/CHAPTER/*.flac with SPEAKER-CHAPTER.trans.txt"
    source = "https://www.openslr.org/12/"
    title = "LibriSpeech"

    def _expected(self, split: str) -> str:
        return f"ROOT/{split}/SPEAKER/CHAPTER/SPEAKER-CHAPTER-NNNN.flac with SPEAKER-CHAPTER.trans.txt"

    def _split_items(self, split: str) -> list[Item]:
        folder = self.root / split
        flacs = {p.stem: p for p in sorted(folder.glob("*/*/*.flac"))}
        if not flacs:
            raise DataRootError(f"{self.where()}: {split}/ holds no SPEAKER/CHAPTER/*.flac files (expected "
                                f"{self._expected(split)}); found in {split}/: {listing(folder)}")
        transcripts: dict[str, str] = {}
        for table in sorted(folder.glob("*/*/*.trans.txt")):
            transcripts.update(_read_trans(table))
        if not transcripts:
            raise DataRootError(f"{self.where()}: no SPEAKER-CHAPTER.trans.txt in {split}/ (expected "
                                f"{self._expected(split)})")
        items = []
        for utt, flac in flacs.items():
            info = {"split": split, "speaker": flac.parent.parent.name, "chapter": flac.parent.name}
            items.extend(self._make(utt, flac, transcripts.get(utt), info))
        self._warn_missing(split, "flac files have no line in their .trans.txt",
                           [u for u in flacs if u not in transcripts])
        orphans = sorted(u for u in transcripts if u not in flacs)
        if orphans:
            log.warning("%s: %d transcript lines in %s/ have no flac file (first: %s); those utterances are left out",
                        self.where(), len(orphans), split, orphans[0])
        return items


def _read_text(path: Path) -> str | None:
    """A one-utterance transcript file, stripped; None when absent or empty."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as err:
        raise DataLayoutError(f"{path}: not UTF-8 (byte 0x{err.object[err.start]:02x} at offset {err.start})") from None
    return " ".join(text.split()) or None


def _read_trans(path: Path) -> dict[str, str]:
    """`ID TRANSCRIPT` lines of a LibriSpeech .trans.txt; a line without a transcript is an error naming it."""
    out: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise DataLayoutError(f"{path}: not UTF-8 (byte 0x{err.object[err.start]:02x} at offset {err.start})") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        utt, _, text = line.strip().partition(" ")
        if not text.strip():
            raise DataLayoutError(f"{path}:{n}: expected `SPEAKER-CHAPTER-NNNN TRANSCRIPT`, got {line.strip()!r}")
        out[utt] = " ".join(text.split())
    return out
