"""The runner hands SemantiCodec several items per call (`batch_items`); results equal item-by-item runs."""

from __future__ import annotations

import sqlite3

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
