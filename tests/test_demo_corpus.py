"""The shipped demo corpus (bench/data/demo): manifest, audio files, licences and the HEAR-format tasks.

These tests read the committed files only (no Debian packages, no network); they fail if a file was
changed without rebuilding the manifest, if an item is silent or mislabelled, or if a source lacks attribution.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

DEMO = Path(__file__).resolve().parents[1] / "bench" / "data" / "demo"
HEADER = ["id", "task", "path", "domain", "sample_rate", "channels", "duration", "text", "label", "source",
          "licence", "sha256"]
TASK_DOMAIN = {"demo-speech": "speech", "demo-music": "music", "demo-sound": "sound"}
HEAR_TASKS = ("digits", "instruments", "drums")


def read_rows() -> list[dict[str, str]]:
    with (DEMO / "manifest.tsv").open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader)
        assert header == HEADER
        rows = [dict(zip(header, r, strict=True)) for r in reader]
    return rows


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    return read_rows()


@pytest.fixture(scope="module")
def licences() -> str:
    return (DEMO / "LICENCES.md").read_text(encoding="utf-8")


def test_manifest_header_is_exact():
    first = (DEMO / "manifest.tsv").read_text(encoding="utf-8").split("\n", 1)[0]
    assert first == "\t".join(HEADER)


def test_rows_are_well_formed(rows):
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "duplicate ids"
    for r in rows:
        assert r["task"] in TASK_DOMAIN, r
        assert r["domain"] == TASK_DOMAIN[r["task"]], r
        assert r["path"] == f"{r['domain']}/{r['id']}.flac", r
        assert r["source"].strip() and r["licence"].strip(), f"{r['id']}: no source or licence"
        assert len(r["sha256"]) == 64 and int(r["sha256"], 16) >= 0
        assert r["duration"] == f"{float(r['duration']):.3f}", r["duration"]


def test_files_match_manifest(rows):
    on_disk = {p.relative_to(DEMO).as_posix() for d in TASK_DOMAIN.values() for p in (DEMO / d).glob("*")}
    assert on_disk == {r["path"] for r in rows}, "files on disk and manifest rows differ"
    for r in rows:
        path = DEMO / r["path"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == r["sha256"], f"{r['id']}: sha256 mismatch"
        info = sf.info(str(path))
        assert info.format == "FLAC" and info.subtype == "PCM_16", (r["id"], info.format, info.subtype)
        assert info.samplerate == int(r["sample_rate"]), r["id"]
        assert info.channels == int(r["channels"]), r["id"]
        assert abs(info.frames / info.samplerate - float(r["duration"])) < 1e-3, r["id"]


def test_no_item_is_silent_or_clipped(rows):
    for r in rows:
        x, _ = sf.read(str(DEMO / r["path"]), dtype="float32", always_2d=True)
        assert np.all(np.isfinite(x))
        peak = float(np.abs(x).max())
        assert 0.5 < peak < 1.0, f"{r['id']}: peak {peak} (expected normalised to about -1 dBFS)"
        rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
        assert rms > 1e-3, f"{r['id']}: nearly silent (rms {rms})"
        if x.shape[1] == 2:
            assert not np.allclose(x[:, 0], x[:, 1]), f"{r['id']}: 'stereo' with identical channels"


def test_speech_task(rows):
    speech = [r for r in rows if r["task"] == "demo-speech"]
    assert len(speech) >= 40
    for r in speech:
        assert (r["sample_rate"], r["channels"]) == ("16000", "1"), r["id"]
        assert 2.0 <= float(r["duration"]) <= 6.0, r["id"]
        assert r["text"].strip() and "[" not in r["text"], r["id"]
        assert r["label"], r["id"]
    recorded = [r for r in speech if r["source"].startswith("asterisk-core-sounds-en-g722:")]
    synthetic = [r for r in speech if "harvard-sentences" in r["source"]]
    assert len(recorded) >= 20 and len(synthetic) >= 20
    assert len({r["label"] for r in synthetic}) >= 3, "synthetic sentences should come from several voices"
    # a known answer: the transcript of one Asterisk prompt, as in core-sounds-en.txt
    by_id = {r["id"]: r for r in speech}
    assert by_id["asterisk-vm-helpexit"]["text"] == "Press star for help or pound to exit."


def test_music_task(rows):
    music = [r for r in rows if r["task"] == "demo-music"]
    assert sum(r["sample_rate"] == "48000" for r in music) >= 12, "at least 12 clips at 48 kHz"
    assert all(float(r["duration"]) == 10.0 for r in music)
    assert sum(r["channels"] == "2" for r in music) >= 1
    assert sum(r["channels"] == "1" for r in music) > len(music) / 2, "mostly mono"
    midi = [r for r in music if "openttd-openmsx:" in r["source"]]
    hold = [r for r in music if r["source"].startswith("asterisk-moh-opsound-g722:")]
    assert len(midi) >= 6 and all(r["sample_rate"] == "48000" for r in midi)
    assert hold and all(r["sample_rate"] == "16000" for r in hold), "hold music keeps its native 16 kHz"
    assert all(r["label"] for r in music)


def test_sound_task(rows):
    sound = [r for r in rows if r["task"] == "demo-sound"]
    assert len(sound) >= 40
    assert all(0.0 < float(r["duration"]) <= 2.0 for r in sound)
    counts = Counter(r["label"] for r in sound)
    assert {"kick", "snare", "hihat", "tom", "cymbal", "clap", "cowbell", "effect"} <= set(counts)
    assert min(counts.values()) >= 4, counts


def test_licences_cover_every_source(rows, licences):
    for r in rows:
        for src in r["source"].split(";"):
            package = src.split(":")[0]
            assert f"| {package} |" in licences, f"LICENCES.md has no entry for {package} ({r['id']})"
        assert f"`{r['path']}`" in licences, f"LICENCES.md does not list {r['path']}"
    for name in ("Allison Smith", "Digium", "CC-BY-SA-3.0", "GPL-2"):
        assert name in licences
    for task in HEAR_TASKS:
        assert f"hear/{task}" in licences


@pytest.mark.parametrize("task", HEAR_TASKS)
def test_hear_task_directory(task):
    root = DEMO / "hear" / task
    meta = json.loads((root / "task_metadata.json").read_text())
    assert meta["task_name"] == task
    assert meta["embedding_type"] == "scene" and meta["prediction_type"] == "multiclass"
    assert meta["split_mode"] == "trainvaltest" and meta["evaluation"] == ["top1_acc"]
    assert meta["splits"] == ["train", "valid", "test"]
    with (root / "labelvocabulary.csv").open(newline="") as fh:
        vocab = list(csv.reader(fh))
    assert vocab[0] == ["idx", "label"]
    assert [int(i) for i, _ in vocab[1:]] == list(range(len(vocab) - 1))
    labels = {lab for _, lab in vocab[1:]}
    assert len(labels) == len(vocab) - 1 >= 5
    n_samples = round(meta["sample_duration"] * 16000)
    for split in meta["splits"]:
        items = json.loads((root / f"{split}.json").read_text())
        files = {p.name for p in (root / "16000" / split).glob("*")}
        assert files == set(items), f"{task}/{split}: json and audio files differ"
        seen = set()
        for name, labs in items.items():
            assert name.endswith(".wav") and len(labs) == 1 and labs[0] in labels, (name, labs)
            seen.add(labs[0])
            x, sr = sf.read(str(root / "16000" / split / name), dtype="float32", always_2d=True)
            assert sr == 16000 and x.shape == (n_samples, 1), (name, sr, x.shape)
            assert 0.5 < float(np.abs(x).max()) < 1.0, name
        assert seen == labels, f"{task}/{split}: labels missing {labels - seen}"
    counts = {s: len(json.loads((root / f"{s}.json").read_text())) for s in meta["splits"]}
    assert counts["train"] >= 50 and counts["valid"] >= 20 and counts["test"] >= 10, counts


def test_hear_splits_are_disjoint_by_recording():
    """No recording (or synthetic voice) is in two splits, and drums never reuse a demo-sound file."""
    sources = json.loads((DEMO / "hear" / "sources.json").read_text())
    assert [t["name"] for t in sources] == list(HEAR_TASKS)
    drums = DEMO / "hear" / "drums"
    stems = {}
    for split in ("train", "valid", "test"):
        for name in json.loads((drums / f"{split}.json").read_text()):
            stem = name.rsplit("-speed", 1)[0].removesuffix(".wav")
            assert stems.setdefault(stem, split) == split, f"{stem} in {stems[stem]} and {split}"
    demo_sound = {r["source"].split(":", 1)[1] for r in read_rows() if r["task"] == "demo-sound"}
    drum_files = {f for files in next(t for t in sources if t["name"] == "drums")["sources"].values() for f in files}
    assert not demo_sound & drum_files
    digits = DEMO / "hear" / "digits"
    voices = {split: {n.rsplit("-", 1)[0] for n in json.loads((digits / f"{split}.json").read_text())}
              for split in ("train", "valid", "test")}
    assert not voices["train"] & voices["valid"] and not (voices["train"] | voices["valid"]) & voices["test"]


def test_corpus_size_is_bounded():
    total = sum(p.stat().st_size for p in DEMO.rglob("*") if p.is_file())
    assert 10e6 <= total <= 20e6, f"demo corpus is {total / 1e6:.1f} MB; keep it between 10 and 20 MB"


def _instrument_splits() -> dict[str, str]:
    root = DEMO / "hear" / "instruments"
    return {name: split for split in ("train", "valid", "test") for name in json.loads((root / f"{split}.json").read_text())}


def test_instrument_splits_share_no_program():
    """A program of one soundfont played at another pitch is the same instrument: it stays in one split."""
    owner: dict[tuple[str, str], str] = {}
    for name, split in sorted(_instrument_splits().items()):
        family, program, _pitch, soundfont = name.removesuffix(".wav").split("-")
        key = (soundfont, program)
        assert owner.setdefault(key, split) == split, f"{soundfont} {program} in {owner[key]} and {split} ({name})"


def test_instrument_splits_share_no_soundfont_sample():
    """provenance.json (written by the recipe from the SF2 tables) names the samples each clip plays;
    no sample sounds in two splits, so no test clip is a re-pitched training clip."""
    splits = _instrument_splits()
    provenance = json.loads((DEMO / "hear" / "instruments" / "provenance.json").read_text())
    assert set(provenance) == set(splits), "provenance.json and the split files list different clips"
    owner: dict[tuple[str, str], str] = {}
    for name, info in sorted(provenance.items()):
        assert info["split"] == splits[name], name
        assert info["samples"], f"{name}: no sample recorded"
        assert f"-gm{info['program']:03d}-p{info['pitch']}-" in name, name
        for sample in info["samples"]:
            key = (info["soundfont"], sample)
            assert owner.setdefault(key, splits[name]) == splits[name], \
                f"{info['soundfont']} sample {sample} in {owner[key]} and {splits[name]} ({name})"
    test = [n for n, s in splits.items() if s == "test"]
    assert len(test) == 24 and len({n.split("-")[0] for n in test}) == 8


def test_instrument_split_recipe_keeps_groups_whole():
    import sys

    sys.path.insert(0, str(DEMO.parents[2] / "scripts"))
    try:
        from demo_corpus.hear import assign_splits, group_by_sample
    finally:
        sys.path.pop(0)
    clips = [{"soundfont": "a.sf2", "program": p, "samples": [s]} for p, s in
             [(0, "x"), (0, "y"), (1, "y"), (2, "z"), (3, "w"), (4, "v"), (5, "u"), (6, "t")]]
    groups = group_by_sample(clips)
    assert groups[0] == [0, 1, 2]  # program 0 joins x and y; y joins program 1
    splits = assign_splits(groups, np.random.default_rng(0))
    for g in groups:
        assert len({splits[i] for i in g}) == 1
    assert {"train", "valid", "test"} == set(splits.values())
