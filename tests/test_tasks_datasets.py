"""Dataset tasks in their usual layouts (libritts, librispeech, musdb, audioset, esc50) on tiny fake trees."""

from __future__ import annotations

import logging
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import bench
from bench.tasks import load_task
from bench.tasks.segments import (DataLayoutError, DataRootError, SegmentItem, decode_stream, manifest_digest,
                                  windows)

# -- writing fake trees ----------------------------------------------------------------------------------------


def tone(seconds: float, rate: int, channels: int = 1, freq: float = 440.0, seed: int = 0) -> np.ndarray:
    """A tone with a little noise, float32 `[T, C]` (soundfile's layout), distinct per seed."""
    t = np.arange(int(round(seconds * rate))) / rate
    rng = np.random.default_rng(seed)
    cols = [0.3 * np.sin(2 * np.pi * (freq + 37 * seed + 11 * c) * t) + 0.01 * rng.standard_normal(t.size)
            for c in range(channels)]
    return np.stack(cols, axis=1).astype(np.float32)


def write(path: Path, seconds: float, rate: int, channels: int = 1, seed: int = 0, **kw) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = tone(seconds, rate, channels, seed=seed)
    sf.write(str(path), data, rate, **kw)
    return data


LIBRITTS = {  # split -> [(utterance id, normalized text)]
    "test-clean": [("1089_134686_000001_000001", "He hoped there would be stew."),
                   ("1089_134686_000002_000000", "Stuff it into you."),
                   ("121_121726_000004_000003", "Hello, world!")],
    "test-other": [("1688_142285_000000_000000", "The other split.")],
}


def libritts_tree(root: Path, seconds: float = 0.6) -> Path:
    for split, utts in LIBRITTS.items():
        for n, (utt, text) in enumerate(utts):
            spk, ch = utt.split("_")[:2]
            folder = root / split / spk / ch
            write(folder / f"{utt}.wav", seconds, 24000, seed=n)
            (folder / f"{utt}.normalized.txt").write_text(text + "\n", encoding="utf-8")
            (folder / f"{utt}.original.txt").write_text(text.upper(), encoding="utf-8")
    return root


def librispeech_tree(root: Path) -> Path:
    lines = {"1089-134686": [("1089-134686-0000", "HE HOPED THERE WOULD BE STEW"), ("1089-134686-0001", "STUFF IT")],
             "121-121726": [("121-121726-0000", "HELLO WORLD")]}
    for chapter, utts in lines.items():
        spk, ch = chapter.split("-")
        folder = root / "test-clean" / spk / ch
        for n, (utt, _) in enumerate(utts):
            write(folder / f"{utt}.flac", 0.5, 16000, seed=n)
        (folder / f"{chapter}.trans.txt").write_text("".join(f"{u} {t}\n" for u, t in utts), encoding="utf-8")
    return root


def musdb_hq_tree(root: Path, lengths=(("Track A - Song", 2.5), ("Track B - Other Song", 2.4))) -> Path:
    for n, (track, seconds) in enumerate(lengths):
        for k, stem in enumerate(("mixture", "drums", "bass", "other", "vocals")):
            write(root / "test" / track / f"{stem}.wav", seconds, 44100, channels=2, seed=10 * n + k)
    return root


def write_stem_mp4(path: Path, seconds: float, rate: int = 44100, codec: str = "aac") -> list[np.ndarray]:
    """A NI-stems-like MP4: 5 stereo audio streams (mixture, drums, bass, other, vocals), each its own tone."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    signals = [np.ascontiguousarray(tone(seconds, rate, 2, freq=220.0 * (k + 1), seed=k).T) for k in range(5)]
    with av.open(str(path), "w", format="mp4") as container:
        streams = [container.add_stream(codec, rate=rate, layout="stereo") for _ in signals]
        for stream, sig in zip(streams, signals):
            fmt = stream.codec_context.format.name
            for start in range(0, sig.shape[1], 1024):
                chunk = np.ascontiguousarray(sig[:, start:start + 1024])
                if not fmt.endswith("p"):  # packed sample formats: one interleaved row
                    chunk = np.ascontiguousarray(chunk.T.reshape(1, -1))
                frame = av.AudioFrame.from_ndarray(chunk, format=fmt, layout="stereo")
                frame.sample_rate, frame.pts = rate, start
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
    return signals


AUDIOSET_LABELS = [("0", "/m/09x0r", "Speech"), ("1", "/m/05zppz", "Male speech, man speaking"),
                   ("2", "/m/04rlf", "Music"), ("3", "/m/0jbk", "Animal")]
AUDIOSET_ROWS = [("--4gqARaEJE", 0.0, 10.0, "/m/09x0r,/m/05zppz"),  # clip --4gqARaEJE_0.000_10.000.wav
                 ("-0RWZT-miFs", 420.0, 430.0, "/m/04rlf"),        # clip -0RWZT-miFs_420_430.flac
                 ("Yab3DcE4fGh", 30.0, 40.0, "/m/0jbk"),           # clip YYab3DcE4fGh.wav (the "Y" prefix)
                 ("zzzzzzzzzzz", 5.0, 15.0, "/m/04rlf,/m/0jbk"),   # clip zzzzzzzzzzz.wav (the bare id)
                 ("missingclip", 0.0, 10.0, "/m/09x0r")]           # never downloaded


def audioset_tree(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "class_labels_indices.csv", "w", encoding="utf-8") as f:
        f.write("index,mid,display_name\n")
        for idx, mid, name in AUDIOSET_LABELS:
            f.write(f'{idx},{mid},"{name}"\n')
    with open(root / "eval_segments.csv", "w", encoding="utf-8") as f:
        f.write("# Segments csv created Sun Mar  5 10:54:25 2017\n")
        f.write("# num_ytids=5, num_segs=5, num_unique_labels=4, num_positive_labels=7\n")
        f.write("# YTID, start_seconds, end_seconds, positive_labels\n")
        for ytid, a, b, mids in AUDIOSET_ROWS:
            f.write(f'{ytid}, {a:.3f}, {b:.3f}, "{mids}"\n')
    clips = root / "eval_segments"
    write(clips / "--4gqARaEJE_0.000_10.000.wav", 0.5, 16000, seed=1)
    write(clips / "-0RWZT-miFs_420_430.flac", 0.5, 16000, seed=2)
    write(clips / "YYab3DcE4fGh.wav", 0.5, 16000, seed=3)
    write(clips / "sub" / "zzzzzzzzzzz.wav", 0.5, 16000, seed=4)
    write(clips / "notinthecsv.wav", 0.5, 16000, seed=5)
    return root


ESC_CLASSES = {0: "dog", 1: "rooster", 2: "rain"}  # target -> category; esc10: dog and rain


def esc50_tree(root: Path, per_fold: int = 1) -> Path:
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    for fold in range(1, 6):
        for target, category in ESC_CLASSES.items():
            for take in "ABC"[:per_fold]:
                src = 1000 * fold + target
                name = f"{fold}-{src}-{take}-{target}.wav"
                write(root / "audio" / name, 0.3, 44100, seed=fold + 7 * target)
                rows.append(f"{name},{fold},{target},{category},{category in ('dog', 'rain')},{src},{take}")
    (root / "meta").mkdir(parents=True, exist_ok=True)
    (root / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


# -- LibriTTS / LibriSpeech -------------------------------------------------------------------------------------


def test_libritts_items_transcripts_and_splits(tmp_path):
    root = libritts_tree(tmp_path / "LibriTTS")
    task = load_task(f"libritts:{root}")
    assert task.name == "libritts" and task.meta.domain == "speech" and task.meta.licence == "CC-BY-4.0"
    items = task.items()
    assert [i.id for i in items] == sorted(u for u, _ in LIBRITTS["test-clean"])
    by_id = {i.id: i for i in items}
    assert by_id["1089_134686_000002_000000"].text == "Stuff it into you."
    assert by_id["1089_134686_000002_000000"].info == {"split": "test-clean", "speaker": "1089", "chapter": "134686",
                                                       "original_text": "STUFF IT INTO YOU."}
    assert all(i.domain == "speech" and i.path.suffix == ".wav" for i in items)
    audio, sr = items[0].load()
    assert sr == 24000 and audio.shape == (1, 14400)

    other = load_task(f"libritts:{root},split=test-other")
    assert other.name == "libritts:split=test-other"
    assert [i.id for i in other.items()] == ["1688_142285_000000_000000"]
    both = load_task(f"libritts:{root},split=test-clean+test-other")
    assert len(both.items()) == 4 and {i.info["split"] for i in both.items()} == {"test-clean", "test-other"}
    # ROOT one level up (the folder holding LibriTTS/) works too
    assert [i.id for i in load_task(f"libritts:{tmp_path}").items()] == [i.id for i in items]


def test_libritts_wav_without_transcript_is_a_warning(tmp_path, caplog):
    root = libritts_tree(tmp_path / "LibriTTS")
    (root / "test-clean/121/121726/121_121726_000004_000003.normalized.txt").unlink()
    with caplog.at_level(logging.WARNING):
        items = load_task(f"libritts:{root}").items()
    assert {i.id: i.text for i in items}["121_121726_000004_000003"] is None
    assert sum("have no .normalized.txt" in r.getMessage() for r in caplog.records) == 1


def test_librispeech_items_and_trans_txt(tmp_path, caplog):
    root = librispeech_tree(tmp_path / "LibriSpeech")
    folder = root / "test-clean/1089/134686"
    with open(folder / "1089-134686.trans.txt", "a", encoding="utf-8") as f:
        f.write("1089-134686-0099 A LINE WITHOUT ITS FLAC\n")
    with caplog.at_level(logging.WARNING):
        task = load_task(f"librispeech:{root}")
        items = task.items()
    assert task.name == "librispeech" and task.meta.source.startswith("https://www.openslr.org/12")
    assert [(i.id, i.text) for i in items] == [("1089-134686-0000", "HE HOPED THERE WOULD BE STEW"),
                                              ("1089-134686-0001", "STUFF IT"), ("121-121726-0000", "HELLO WORLD")]
    assert items[0].load()[1] == 16000
    assert any("have no flac file" in r.getMessage() for r in caplog.records)


def test_librispeech_malformed_trans_line(tmp_path):
    root = librispeech_tree(tmp_path / "LibriSpeech")
    (root / "test-clean/121/121726/121-121726.trans.txt").write_text("121-121726-0000\n", encoding="utf-8")
    with pytest.raises(DataLayoutError, match=r"121-121726.trans.txt:1: expected `SPEAKER-CHAPTER-NNNN TRANSCRIPT`"):
        load_task(f"librispeech:{root}").items()


def test_libri_missing_or_malformed_root(tmp_path, monkeypatch):
    with pytest.raises(DataRootError, match="no such folder; ROOT must be the folder holding test-clean/"):
        load_task(f"libritts:{tmp_path / 'nope'}")
    assert issubclass(DataRootError, FileNotFoundError) and issubclass(DataLayoutError, ValueError)
    (tmp_path / "LibriTTS" / "train-clean-100").mkdir(parents=True)
    with pytest.raises(FileNotFoundError) as err:
        load_task(f"libritts:{tmp_path / 'LibriTTS'}")
    msg = str(err.value)
    assert "no test-clean/ folder" in msg and "SPEAKER/CHAPTER/*.wav" in msg and "found: train-clean-100/" in msg
    (tmp_path / "LibriTTS" / "test-clean" / "19" / "198").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="holds no SPEAKER/CHAPTER/\\*.wav"):
        load_task(f"libritts:{tmp_path / 'LibriTTS'}").items()
    write(tmp_path / "LibriTTS/test-clean/19/198/19_198_000000_000000.wav", 0.3, 24000)
    with pytest.raises(FileNotFoundError, match="no .normalized.txt transcript beside any"):
        load_task(f"libritts:{tmp_path / 'LibriTTS'}").items()
    with pytest.raises(ValueError, match="unknown option 'splt'. Did you mean 'split'"):
        load_task(f"libritts:{tmp_path / 'LibriTTS'},splt=test-other")
    monkeypatch.delenv("BENCH_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match=r"no data root; give --task libritts:ROOT .* or set BENCH_DATA"):
        load_task("libritts")


def test_bench_data_resolution(tmp_path, monkeypatch):
    libritts_tree(tmp_path / "data" / "LibriTTS")
    librispeech_tree(tmp_path / "data" / "LibriSpeech")
    musdb_hq_tree(tmp_path / "data" / "musdb18")  # no musdb18hq/: the next conventional name is used
    audioset_tree(tmp_path / "data" / "audioset")
    esc50_tree(tmp_path / "data" / "ESC-50-master")  # as the GitHub zip unpacks
    monkeypatch.setenv("BENCH_DATA", str(tmp_path / "data"))
    assert load_task("libritts").root == (tmp_path / "data" / "LibriTTS").resolve()
    assert load_task("libritts:split=test-other").items()[0].id == "1688_142285_000000_000000"
    assert load_task("librispeech").root.name == "LibriSpeech"
    assert load_task("musdb").root.name == "musdb18"
    assert load_task("audioset").root.name == "audioset"
    assert load_task("esc50:fold=2").root.name == "ESC-50-master"
    shutil.rmtree(tmp_path / "data" / "LibriTTS")
    with pytest.raises(FileNotFoundError, match=r"BENCH_DATA=.* has no LibriTTS/ folder .*found: .*LibriSpeech/"):
        load_task("libritts")


# -- windows ---------------------------------------------------------------------------------------------------


def test_windows_rule():
    assert windows(25, 1, 10) == [(0, 10), (10, 20), (20, 25)]  # a last window of half a window is kept
    assert windows(24, 1, 10) == [(0, 10), (10, 20)]  # shorter than half: dropped
    assert windows(30, 1, 10) == [(0, 10), (10, 20), (20, 30)]
    assert windows(7, 1, 10) == [(0, 7)]  # shorter than one window: the whole file
    assert windows(7, 1, None) == [(0, 7)] and windows(0, 1, 10) == []
    assert windows(44100 * 3, 44100, 1.5) == [(0, 66150), (66150, 132300)]


def test_segmented_speech_windows_lose_the_transcript(tmp_path):
    root = libritts_tree(tmp_path / "LibriTTS", seconds=2.5)
    task = load_task(f"libritts:{root},segment=1")
    assert task.name == "libritts:segment=1"
    items = task.items()
    assert len(items) == 9 and items[0].id == "1089_134686_000001_000001#0000"
    assert all(i.text is None for i in items) and items[0].info["file_text"] == "He hoped there would be stew."


# -- MUSDB18 ---------------------------------------------------------------------------------------------------


def test_musdb_hq_windows_load_exactly_their_samples(tmp_path, monkeypatch):
    root = musdb_hq_tree(tmp_path / "musdb18hq")
    task = load_task(f"musdb:{root},segment=1")
    assert task.name == "musdb:segment=1" and task.meta.domain == "music" and task.format == "hq"
    assert "academic" in task.meta.licence
    items = task.items()
    # 2.5 s -> 2 full windows + a half window (kept); 2.4 s -> 2 full windows (0.4 s dropped)
    assert [i.id for i in items] == ["Track A - Song#0000", "Track A - Song#0001", "Track A - Song#0002",
                                     "Track B - Other Song#0000", "Track B - Other Song#0001"]
    whole, sr = sf.read(str(root / "test/Track A - Song/mixture.wav"), dtype="float32", always_2d=True)
    for item in items[:3]:
        assert isinstance(item, SegmentItem) and item.domain == "music"
        audio, rate = item.load()
        assert rate == 44100 and audio.shape[0] == 2 and audio.dtype == np.float32
        np.testing.assert_array_equal(audio, whole.T[:, item.start:item.stop])
        assert item.info["start_s"] == item.start / 44100 and item.info["track"] == "Track A - Song"
    assert items[2].stop - items[2].start == 22050
    assert len({i.signature() for i in items[:3]}) == 3  # the window bounds are part of the signature
    reads = []
    real_read = sf.read

    def spy(*args, **kwargs):
        reads.append((kwargs.get("start"), kwargs.get("stop")))
        return real_read(*args, **kwargs)

    monkeypatch.setattr(sf, "read", spy)
    fresh = load_task(f"musdb:{root},segment=1").items()[1]
    fresh.audio
    assert reads == [(44100, 88200)]  # only the window's frames are read
    monkeypatch.undo()
    clone = pickle.loads(pickle.dumps(items[1]))  # worker processes receive items pickled
    np.testing.assert_array_equal(clone.audio, items[1].audio)
    assert clone.signature() == items[1].signature()

    vocals = load_task(f"musdb:{root},stem=vocals")  # default segment: 10 s -> one window per (short) track
    assert vocals.name == "musdb:stem=vocals"
    assert [i.id for i in vocals.items()] == ["Track A - Song#0000", "Track B - Other Song#0000"]
    assert vocals.items()[0].path.name == "vocals.wav"
    whole_tracks = load_task(f"musdb:{root},segment=none").items()
    assert [i.id for i in whole_tracks] == ["Track A - Song", "Track B - Other Song"]


def test_musdb_stem_mp4_windows_match_a_whole_decode(tmp_path):
    from bench import audio as au

    root = tmp_path / "musdb18"
    write_stem_mp4(root / "test" / "Track A - Song.stem.mp4", 2.5)
    task = load_task(f"musdb:{root},segment=1")
    assert task.format == "stems"
    items = task.items()
    assert [i.id for i in items] == ["Track A - Song#0000", "Track A - Song#0001", "Track A - Song#0002"]
    path = root / "test" / "Track A - Song.stem.mp4"
    whole, sr = au.load(path)  # how bench reads the file whole: stream 0, every decoded frame
    for item in items:
        assert item.stream == 0
        np.testing.assert_array_equal(item.audio, whole[:, item.start:item.stop])
        assert item.sample_rate == sr == 44100
    assert items[-1].stop == 110250  # the header's length, not the decoder's padded tail

    vocals = load_task(f"musdb:{root},segment=1,stem=vocals").items()
    assert vocals[0].stream == 4
    import av

    with av.open(str(path)) as c:  # an independent decode of stream 4
        ref = np.concatenate([f.to_ndarray() for f in c.decode(c.streams.audio[4])], axis=1)
    np.testing.assert_allclose(vocals[1].audio, ref[:, 44100:88200], rtol=0, atol=0)
    assert not np.allclose(vocals[1].audio, items[1].audio, atol=1e-3)  # another stream than the mixture
    assert decode_stream(path, 4)[0].shape[1] >= 110250


def test_musdb_layout_errors(tmp_path):
    root = musdb_hq_tree(tmp_path / "musdb")
    write_stem_mp4(root / "test" / "Track C.stem.mp4", 0.5)
    with pytest.raises(FileNotFoundError, match="holds both MUSDB18-HQ track folders .*,format=hq or format=stems"):
        load_task(f"musdb:{root}")
    assert load_task(f"musdb:{root},format=stems").items()[0].id == "Track C#0000"
    assert len(load_task(f"musdb:{root},format=hq").items()) == 2
    (root / "test/Track B - Other Song/vocals.wav").unlink()
    with pytest.raises(ValueError, match=r"Track B - Other Song/ has no vocals.wav"):
        load_task(f"musdb:{root},format=hq,stem=vocals").items()
    with pytest.raises(ValueError, match="stem='voice'; use one of mixture, drums, bass, other, vocals"):
        load_task(f"musdb:{root},stem=voice")
    with pytest.raises(FileNotFoundError, match=r"no train/ folder .*found: test/"):
        load_task(f"musdb:{root},split=train")
    (tmp_path / "empty" / "test").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no MUSDB18-HQ track folders .* or MUSDB18 stem files"):
        load_task(f"musdb:{tmp_path / 'empty'}")


# -- AudioSet --------------------------------------------------------------------------------------------------


def test_audioset_clips_labels_and_missing(tmp_path, caplog):
    root = audioset_tree(tmp_path / "audioset")
    task = load_task(f"audioset:{root}")
    assert task.name == "audioset" and task.meta.domain == "sound" and "CC-BY-4.0" in task.meta.licence
    with caplog.at_level(logging.WARNING):
        items = task.items()
        task.items()  # listed once: reported once
    assert [i.id for i in items] == ["--4gqARaEJE", "-0RWZT-miFs", "Yab3DcE4fGh", "zzzzzzzzzzz"]
    by_id = {i.id: i for i in items}
    assert by_id["--4gqARaEJE"].info["labels"] == ["Speech", "Male speech, man speaking"]
    assert by_id["--4gqARaEJE"].label == "Speech;Male speech, man speaking"
    assert by_id["-0RWZT-miFs"].path.name == "-0RWZT-miFs_420_430.flac"
    assert by_id["Yab3DcE4fGh"].path.name == "YYab3DcE4fGh.wav"
    assert by_id["zzzzzzzzzzz"].info["mids"] == ["/m/04rlf", "/m/0jbk"]
    assert by_id["zzzzzzzzzzz"].info["start_s"] == 5.0
    assert all(i.domain == "sound" for i in items)
    assert task.missing == ["missingclip"]
    warnings = [r.getMessage() for r in caplog.records if "have no clip" in r.getMessage()]
    assert len(warnings) == 1 and "1 of 5 segments" in warnings[0]


def test_audioset_malformed(tmp_path):
    root = audioset_tree(tmp_path / "audioset")
    with open(root / "eval_segments.csv", "a", encoding="utf-8") as f:
        f.write('badrow12345, 0.000, "/m/09x0r"\n')
    with pytest.raises(ValueError, match=r"eval_segments.csv:9: expected `YTID, start_seconds, end_seconds"):
        load_task(f"audioset:{root}")
    root = audioset_tree(tmp_path / "audioset2")
    with open(root / "eval_segments.csv", "a", encoding="utf-8") as f:
        f.write('newclip1234, 0.000, 10.000, "/m/nope"\n')
    with pytest.raises(ValueError, match=r"label\(s\) \['/m/nope'\] not in class_labels_indices.csv"):
        load_task(f"audioset:{root}")
    (root / "class_labels_indices.csv").unlink()
    with pytest.raises(FileNotFoundError, match="no class_labels_indices.csv .*found: eval_segments/, eval_segments.c"):
        load_task(f"audioset:{root}")
    root = audioset_tree(tmp_path / "audioset3")
    shutil.rmtree(root / "eval_segments")
    with pytest.raises(FileNotFoundError, match="no clips found"):
        load_task(f"audioset:{root}")


# -- ESC-50 ----------------------------------------------------------------------------------------------------


def test_esc50_five_fold_protocol(tmp_path):
    root = esc50_tree(tmp_path / "ESC-50")
    task = load_task(f"esc50:{root}")
    assert task.name == "esc50" and task.meta.licence == "CC-BY-NC-3.0" and task.meta.domain == "sound"
    md = task.hear_metadata
    assert md["split_mode"] == "presplit_kfold" and md["splits"] == ["fold1", "fold2", "fold3", "fold4", "fold5"]
    assert md["nfolds"] == 5 and md["prediction_type"] == "multiclass" and task.vocabulary == ["dog", "rooster", "rain"]
    items = task.items()
    assert len(items) == 15 and all(i.domain == "sound" for i in items)
    item = next(i for i in items if i.id == "3-3002-A-2")
    assert item.label == "rain" and item.info["split"] == "fold3" and item.info["fold"] == 3
    assert item.info["labels"] == ["rain"] and item.info["target"] == 2 and item.info["esc10"] is True
    rotations = task.data_splits()
    assert rotations[0] == {"train": ["fold3", "fold4", "fold5"], "valid": ["fold2"], "test": ["fold1"]}


def test_esc50_one_fold_and_esc10(tmp_path):
    root = esc50_tree(tmp_path / "ESC-50")
    task = load_task(f"esc50:{root},fold=5")
    assert task.name == "esc50:fold=5" and task.hear_metadata["split_mode"] == "trainvaltest"
    splits = {i.id: i.info["split"] for i in task.items()}
    assert {s for k, s in splits.items() if k.startswith("5-")} == {"test"}
    assert {s for k, s in splits.items() if k.startswith("1-")} == {"valid"}  # the fold after 5 is fold 1
    assert {s for k, s in splits.items() if k[0] in "234"} == {"train"}
    esc10 = load_task(f"esc50:{root},esc10")
    assert esc10.name == "esc50:esc10" and esc10.vocabulary == ["dog", "rain"] and len(esc10.items()) == 10
    with pytest.raises(ValueError, match="fold=6; use one of 1, 2, 3, 4, 5"):
        load_task(f"esc50:{root},fold=6")
    (root / "audio" / "2-2001-A-1.wav").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 of the 15 clips in meta/esc50.csv are not in audio/"):
        load_task(f"esc50:{root}").items()
    (root / "meta" / "esc50.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"no meta/esc50.csv .*found: audio/, meta/"):
        load_task(f"esc50:{root}")


def test_esc50_runs_through_the_probe(tmp_path):
    from bench.probe import evaluate

    task = load_task(f"esc50:{esc50_tree(tmp_path / 'ESC-50', per_fold=3)},fold=1")
    res = evaluate(None, task, grid="reduced")
    assert res["n_items"] == {"test": 9, "valid": 9, "train": 27} and res["n_failed"] == 0
    assert 0.0 <= res["top1_acc"] <= 1.0 and res["chance"] == pytest.approx(1 / 3)


# -- manifest digest -------------------------------------------------------------------------------------------


def test_manifest_digest_is_content_based(tmp_path):
    root = libritts_tree(tmp_path / "a" / "LibriTTS")
    digest = load_task(f"libritts:{root}").manifest_digest()
    assert len(digest) == 64 and int(digest, 16) >= 0
    for path in root.rglob("*"):  # a touch changes mtimes (and the item signatures), not the manifest
        os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    assert load_task(f"libritts:{root}").manifest_digest() == digest
    copy = shutil.copytree(root, tmp_path / "b" / "else,where")  # another user's copy at another path (a comma too)
    assert load_task(f"libritts:{copy}").manifest_digest() == digest
    text = root / "test-clean/1089/134686/1089_134686_000001_000001.normalized.txt"
    text.write_text("He hoped there would be soup.", encoding="utf-8")
    changed = load_task(f"libritts:{root}")
    assert changed.manifest_digest() != digest
    assert changed.manifest_digest(changed.items()[:2]) != changed.manifest_digest()  # a --limit subset
    assert load_task(f"libritts:{copy},segment=0.2").manifest_digest() != digest  # other windows, other items


def test_manifest_digest_windows_and_labels(tmp_path):
    root = musdb_hq_tree(tmp_path / "musdb18hq")
    one = load_task(f"musdb:{root},segment=1")
    assert one.manifest_digest() != load_task(f"musdb:{root},segment=1.2").manifest_digest()
    # same ids, sizes and windows, another stem file: told apart by info["stem"]
    assert one.manifest_digest() != load_task(f"musdb:{root},segment=1,stem=vocals").manifest_digest()
    esc = esc50_tree(tmp_path / "ESC-50")
    assert load_task(f"esc50:{esc}").manifest_digest() != load_task(f"esc50:{esc},fold=1").manifest_digest()
    assert manifest_digest(one.items()) == one.manifest_digest()


# -- end to end ------------------------------------------------------------------------------------------------


def test_run_end_to_end_scores_every_item(tmp_path):
    libri = libritts_tree(tmp_path / "LibriTTS")
    musdb = tmp_path / "musdb18"
    write_stem_mp4(musdb / "test" / "Track A - Song.stem.mp4", 2.5)
    res = bench.run(codecs=["identity"], tasks=[f"libritts:{libri}", f"musdb:{musdb},segment=1"], metrics=["mel"],
                    out=tmp_path / "ws")
    frame = res.to_frame()
    rows = {r.task: r for r in frame.itertuples()}
    assert set(rows) == {"libritts", "musdb:segment=1"}
    assert rows["libritts"].n == 3 and rows["libritts"].n_failed == 0
    assert rows["musdb:segment=1"].n == 3 and rows["musdb:segment=1"].n_failed == 0
    assert all(np.isfinite(frame["value"]))
