"""The runner hands SemantiCodec several items per call (`batch_items`); results equal item-by-item runs."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

import bench
from bench.codecs.semanticodec.codec import SemantiCodec

SPEC = "semanticodec:tiny,ddim_steps=2"
GOOD = {"good0", "good1", "good2", "good3", "stereo"}


def _rows(ws):
    with sqlite3.connect(ws / "results.sqlite") as db:
        enc = {r[0]: r[1:] for r in db.execute("SELECT item, bits_per_second, seconds, encode_s FROM encodes")}
        scores = {r[0]: r[1] for r in db.execute("SELECT item, value FROM scores WHERE metric LIKE 'mel%'")}
        fails = {r[0]: r[1] for r in db.execute("SELECT item, stage FROM failures")}
    return enc, scores, fails


def test_batched_run_equals_one_item_at_a_time(audio_dir, tmp_path, monkeypatch):
    calls = []
    encode = SemantiCodec.encode
    monkeypatch.setattr(SemantiCodec, "encode", lambda self, wav, *a, **k: calls.append(wav.shape[0]) or
                        encode(self, wav, *a, **k))
    bench.run(codecs=[SPEC], tasks=[f"files:{audio_dir}"], metrics=["mel"], out=tmp_path / "batched")
    assert max(calls) == len(GOOD)  # the good items went through in one call; bad ones did not join it
    calls.clear()
    monkeypatch.setattr(SemantiCodec, "batch_items", 1)
    bench.run(codecs=[SPEC], tasks=[f"files:{audio_dir}"], metrics=["mel"], out=tmp_path / "single", jobs=1)
    assert set(calls) == {1}

    enc_b, mel_b, fail_b = _rows(tmp_path / "batched")
    enc_s, mel_s, fail_s = _rows(tmp_path / "single")
    assert set(enc_b) == set(enc_s) == set(mel_b) == GOOD
    assert fail_b == fail_s and set(fail_b) == {"corrupt", "silent", "short", "nan", "empty"}
    for item in GOOD:
        bits_b, seconds_b, encode_s = enc_b[item]
        assert bits_b == enc_s[item][0]  # each item's own codes, not the batch's
        assert seconds_b == pytest.approx(enc_s[item][1]) and encode_s > 0
        assert mel_b[item] == pytest.approx(mel_s[item], rel=1e-4, abs=1e-5)
    assert len({enc_b[i][0] for i in GOOD}) > 1  # lengths differ, so do the per-item bitrates


def test_failing_batch_falls_back_to_items(audio_dir, tmp_path, monkeypatch):
    """A batch that raises is re-run item by item, so only the item at fault is recorded as failed."""
    encode = SemantiCodec.encode

    def picky(self, wav, *a, **k):
        if wav.shape[0] > 1:
            raise RuntimeError("out of memory (simulated)")
        return encode(self, wav, *a, **k)

    monkeypatch.setattr(SemantiCodec, "encode", picky)
    res = bench.run(codecs=[SPEC], tasks=[f"files:{audio_dir}"], metrics=["mel"], out=tmp_path / "ws")
    assert res.codec_work == len(GOOD)
    assert set(res.failures().item) == {"corrupt", "silent", "short", "nan", "empty"}


class _Clip:
    """A HEAR-style item: audio in memory, a split and labels."""

    def __init__(self, ident, audio, split="train", label="a"):
        self.id, self._audio, self.info = ident, audio, {"split": split, "labels": [label]}

    def load(self):
        return self._audio, 16000

    def release(self):
        pass


class _Task:
    def __init__(self, items):
        self._items = items

    def items(self):
        return self._items


def test_probe_embeds_items_in_batches_with_the_same_result():
    from bench.probe.embed import CodecLatent
    from bench.probe.evaluation import embed_task

    rng = np.random.default_rng(0)
    clips = [_Clip(f"c{i}", (0.1 * rng.standard_normal((1, int(16000 * (0.5 + 0.3 * i))))).astype(np.float32),
                   split="test" if i % 2 else "train", label="ab"[i % 2]) for i in range(5)]
    bad = np.full((1, 16000), np.nan, dtype=np.float32)
    items = clips[:2] + [_Clip("bad", bad)] + clips[2:]
    codec = SemantiCodec(tiny=True, ddim_steps=2)
    calls = []
    embed_items = codec.embed_items
    codec.embed_items = lambda wavs: calls.append(len(wavs)) or embed_items(wavs)
    batched = CodecLatent(codec)
    assert batched.batch == 8
    rows_b, fails_b = embed_task(batched, _Task(items))
    single = CodecLatent(codec)
    single.batch = 1
    rows_s, fails_s = embed_task(single, _Task(items))
    assert calls == [5]  # the good five in one call; the NaN clip failed alone without spoiling the batch
    assert [f[0] for f in fails_b] == [f[0] for f in fails_s] == ["bad"]
    assert "NaN" in fails_b[0][1]
    for split in ("train", "test"):
        np.testing.assert_allclose(rows_b[split][0], rows_s[split][0], rtol=1e-5, atol=1e-6)
        assert rows_b[split][1] == rows_s[split][1]


def test_probe_batch_that_raises_falls_back_to_items():
    """A clip the codec itself rejects (shorter than one AudioMAE patch) fails alone; the rest still embed."""
    from bench.probe.embed import CodecLatent
    from bench.probe.evaluation import embed_task

    rng = np.random.default_rng(1)
    items = [_Clip(f"c{i}", (0.1 * rng.standard_normal((1, 12000))).astype(np.float32)) for i in range(3)]
    items.insert(1, _Clip("short", (0.1 * rng.standard_normal((1, 800))).astype(np.float32)))
    rows, fails = embed_task(CodecLatent(SemantiCodec(tiny=True, ddim_steps=2)), _Task(items))
    assert [f[0] for f in fails] == ["short"] and "too short" in fails[0][1]
    assert rows["train"][0].shape[0] == 3


def test_probe_only_run_encodes_but_never_decodes(tmp_path, monkeypatch):
    """A run with only the (task-level) probe needs each item's bitrate, not its decoded audio."""
    decodes = []
    decode = SemantiCodec.decode
    monkeypatch.setattr(SemantiCodec, "decode", lambda self, enc, **k: decodes.append(1) or decode(self, enc, **k))
    res = bench.run(codecs=[SPEC], tasks=["demo-drums"], metrics=["probe:grid=reduced"], out=tmp_path / "ws")
    assert not decodes
    with sqlite3.connect(tmp_path / "ws" / "results.sqlite") as db:
        rows = db.execute("SELECT bits_per_second, path, decode_s FROM encodes").fetchall()
    assert len(rows) == 114 and all(p is None and d is None and b > 1000 for b, p, d in rows)
    frame = res.to_frame()
    assert frame[frame.codec == "semanticodec"].bitrate_kbps.iloc[0] > 1.0  # the kbps column still filled


def test_batches_sent_to_worker_processes_equal_the_in_process_run(audio_dir, tmp_path, monkeypatch):
    """jobs=2: batches of `batch_items` go to worker processes (bench.runner:_worker_batch), same numbers."""
    from bench import runner
    from bench.executors.local import LocalPool

    sent, jobs = [], []
    run_remote = runner._run_remote
    monkeypatch.setattr(runner, "_run_remote", lambda pool, codec, todo, record: (
        sent.append(len(todo)), run_remote(pool, codec, todo, record))[1])
    pool_run = LocalPool.run

    def recording_run(self, todo):
        todo = list(todo)
        jobs.extend((key, target) for key, target, _ in todo)
        return pool_run(self, todo)

    monkeypatch.setattr(LocalPool, "run", recording_run)
    bench.run(codecs=[SPEC], tasks=[f"files:{audio_dir}"], metrics=["mel"], out=tmp_path / "remote", jobs=2)
    assert sent == [10]  # every item of the folder, good and bad, went to the workers
    # in jobs of batch_items (8) items each, run by _worker_batch: ids 8 + 2, not 10 one-item jobs
    assert [target for _, target in jobs] == ["bench.workers:_worker_batch"] * 2, jobs
    assert [len(key) for key, _ in jobs] == [SemantiCodec.batch_items, 2]
    bench.run(codecs=[SPEC], tasks=[f"files:{audio_dir}"], metrics=["mel"], out=tmp_path / "local", jobs=1)
    enc_r, mel_r, fail_r = _rows(tmp_path / "remote")
    enc_l, mel_l, fail_l = _rows(tmp_path / "local")
    assert set(mel_r) == set(mel_l) == GOOD and fail_r == fail_l
    for item in GOOD:
        assert enc_r[item][0] == enc_l[item][0]
        assert mel_r[item] == pytest.approx(mel_l[item], rel=1e-4, abs=1e-5)


def test_worker_batch_equals_items_one_by_one(audio_dir, tmp_path):
    from pathlib import Path

    from bench import workers
    from bench.runner import CodecSpec
    from bench.workers import _worker_batch, _worker_init, _worker_item

    _worker_init(CodecSpec.parse(SPEC), ["mel"])
    items = [i for i in bench.load_task(f"files:{audio_dir}").items() if i.id in GOOD]
    batched = _worker_batch([(i, ["mel"], str(tmp_path / "b" / f"{n}.npz")) for n, i in enumerate(items)])
    single = [_worker_item(i, ["mel"], str(tmp_path / "s" / f"{n}.npz")) for n, i in enumerate(items)]
    assert len(batched) == len(items)
    for b, s in zip(batched, single):
        (key, vb), = b["scores"].items()
        assert vb["mel"] == pytest.approx(s["scores"][key]["mel"], rel=1e-4, abs=1e-5)
        assert b["encode"]["bits_per_second"] == s["encode"]["bits_per_second"]
    assert Path(batched[0]["encode"]["path"]).exists()
    workers._WORKER.clear()
