"""The Speed section of reports: seconds per audio second from the stored timings, where each was timed
(`timed_on`), the schema-3 column and its migration, and the metric-against-decode-time plots."""

from __future__ import annotations

import json
import sqlite3

import pandas as pd
import pytest
import soundfile as sf

import bench
from bench.machine import cpu_model
from bench.reports.build import write_report
from bench.reports.frame import summary_frame
from bench.reports.speed import plot_decode_time, speed_frame, speed_markdown
from bench.store import SCHEMA_VERSION, ResultStore

import fakes
from conftest import tone

AMD = {"cpu": "AMD EPYC", "cpus": 2, "device": "cpu", "threads": 2, "batch": 1, "load": 0.5}


def _plant(store: ResultStore, fp: str, label: str, task: str, rows: list[tuple[float, float, float | None, dict]]):
    """rows: (seconds, encode_s, decode_s, timed_on) per item; plus one cell so the codec is in the frame."""
    store.add_codec(fp, label.split(":")[0], {}, label, None, {})
    for i, (seconds, enc, dec, ctx) in enumerate(rows):
        store.record_item(fp, task, f"i{i}", encode={"bits_per_second": 1000.0, "seconds": seconds,
                                                     "encode_s": enc, "decode_s": dec, "sample_rate": 16000,
                                                     "timed_on": ctx})
    store.write_cell(fp, task, "mel", 1.0, len(rows), 0, 0)


def test_speed_is_total_coding_time_over_total_audio(tmp_path):
    store = ResultStore(tmp_path / "ws")
    _plant(store, "a", "fast:x=1", "t", [(2.0, 0.5, 1.0, AMD), (6.0, 1.5, 3.0, AMD)])
    _plant(store, "b", "slow:x=1", "t", [(4.0, 8.0, 2.0, {**AMD, "load": 3.5}),  # load 3.5 on 2 CPUs: busy
                                         (4.0, 4.0, None, None)])  # encode-only, machine not recorded
    sf_ = speed_frame(store, summary_frame(store)).set_index("codec")
    assert sf_.loc["fast:x=1", "encode_rtf"] == pytest.approx(2.0 / 8.0)  # (0.5 + 1.5) / (2 + 6)
    assert sf_.loc["fast:x=1", "decode_rtf"] == pytest.approx(4.0 / 8.0)
    assert not sf_.loc["fast:x=1", "busy"] and sf_.loc["fast:x=1", "timed_on"] == "AMD EPYC, cpu, 2 threads"
    # decode over the items that were decoded only (4 s), encode over all 8 s
    assert sf_.loc["slow:x=1", "encode_rtf"] == pytest.approx(12.0 / 8.0)
    assert sf_.loc["slow:x=1", "decode_rtf"] == pytest.approx(2.0 / 4.0)
    assert sf_.loc["slow:x=1", "busy"]
    assert sf_.loc["slow:x=1", "timed_on"] == "AMD EPYC, cpu, 2 threads; not recorded"
    md = speed_markdown(speed_frame(store, summary_frame(store)))
    assert "| fast:x=1 | t | 2/2 | 8 | 0.25 | 0.5 | 4x / 2x | AMD EPYC, cpu, 2 threads |" in md
    assert "(busy)" in md and "different machines" in md


def test_a_gpu_row_names_the_gpu_and_the_batch(tmp_path):
    store = ResultStore(tmp_path / "ws")
    gpu = {**AMD, "device": "cuda", "gpu": "NVIDIA H200", "batch": 8}
    _plant(store, "g", "semanticodec:steps=10", "t", [(10.0, 1.0, 2.0, gpu)])
    row = speed_frame(store, summary_frame(store)).iloc[0]
    assert row.timed_on == "NVIDIA H200, cuda, 2 threads, batch 8"


def _clips(folder, n=2, seconds=0.5):
    folder.mkdir()
    for i in range(n):
        sf.write(folder / f"c{i}.wav", tone(seconds, 16000, 220 + 110 * i, seed=i), 16000)
    return folder


def test_a_run_records_where_and_how_long_each_item_was_coded(monkeypatch, tmp_path):
    import torch

    fakes.install(monkeypatch)
    clips = _clips(tmp_path / "clips")
    res = bench.run(codecs=["gain:gain=0.5,delay=0.05", "gain:gain=0.9"], tasks=[f"files:{clips}"],
                    metrics=["l1"], out=tmp_path / "ws", jobs=1)
    enc = res.store.encodes_frame()
    assert len(enc) == 4
    for r in enc.itertuples():
        ctx = json.loads(r.timed_on)
        assert ctx["cpu"] == cpu_model() and ctx["device"] == "cpu" and ctx["batch"] == 1
        assert ctx["threads"] == torch.get_num_threads() and ctx["cpus"] > 0
        assert r.decode_s is not None and r.decode_s >= 0
    slow = [fp for fp, label, _ in res.store.codec_rows() if "delay=0.05" in label]
    delayed = enc[enc.fingerprint.isin(slow)]
    assert len(delayed) == 2
    assert (delayed.encode_s >= 0.05).all()  # the codec's own sleep is inside the timed encode
    paths = write_report(res.store)
    speed = pd.read_csv(paths["speed_csv"])
    assert len(set(speed.codec)) == 2
    for r in speed.itertuples():
        part = enc[enc.fingerprint == r.fingerprint]
        assert r.encode_rtf == pytest.approx(part.encode_s.sum() / part.seconds.sum())
        assert r.decode_rtf == pytest.approx(part.decode_s.sum() / part.seconds.sum())
    assert "## Speed" in paths["markdown"].read_text()
    # two rows of one codec: each metric against decode time is drawn
    assert (paths["markdown"].parent / "plots" / "l1_vs_decode_time.png").stat().st_size > 1000


def test_no_decode_time_plot_without_a_sweep(tmp_path):
    store = ResultStore(tmp_path / "ws")
    _plant(store, "a", "fast:x=1", "t", [(2.0, 0.5, 1.0, AMD)])
    _plant(store, "b", "slow:x=1", "t", [(2.0, 0.5, 3.0, AMD)])
    frame = summary_frame(store)
    assert plot_decode_time(frame, speed_frame(store, frame), tmp_path / "plots") == []  # one row per codec
    _plant(store, "c", "slow:x=2", "t", [(2.0, 0.5, 6.0, AMD)])
    frame = summary_frame(store)
    assert [p.name for p in plot_decode_time(frame, speed_frame(store, frame), tmp_path / "plots")] == [
        "mel_vs_decode_time.png", "mel_vs_decode_time.pdf"]


def test_a_batch_shares_its_time_and_says_so(monkeypatch, tmp_path):
    from bench.codecs import CODECS
    from bench.registry import Entry

    fakes.install(monkeypatch)
    monkeypatch.setitem(CODECS._entries, "batchgain", Entry("batchgain", "test_speed:BatchGain", {"needs_weights": False}))
    clips = _clips(tmp_path / "clips", n=3)
    res = bench.run(codecs=["batchgain"], tasks=[f"files:{clips}"], metrics=["l1"], out=tmp_path / "ws", jobs=1)
    enc = res.store.encodes_frame()
    assert [json.loads(t)["batch"] for t in enc.timed_on] == [3, 3, 3]
    assert "batch 3" in speed_frame(res.store, summary_frame(res.store)).timed_on.iloc[0]


class BatchGain(fakes.Gain):
    name = "batchgain"
    batch_items = 4


def test_a_schema_2_workspace_reads_and_migrates(tmp_path):
    ws = tmp_path / "ws"
    store = ResultStore(ws)
    _plant(store, "a", "fast:x=1", "t", [(2.0, 0.5, 1.0, AMD)])
    store.close()
    db = sqlite3.connect(ws / "results.sqlite")
    db.execute("ALTER TABLE encodes DROP COLUMN timed_on")  # as schema 2 wrote it
    db.execute("UPDATE meta SET value='2' WHERE key='schema_version'")
    db.commit()
    db.close()
    old = ResultStore(ws, readonly=True)  # a reader does without the column
    assert speed_frame(old, summary_frame(old)).timed_on.tolist() == ["not recorded"]
    old.close()
    store = ResultStore(ws)
    assert store.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    assert store.encodes_frame().timed_on.tolist() == [None]  # its old row: machine unknown, times kept
    assert store.encode_row("a", "t", "i0")["encode_s"] == 0.5


def test_merged_shards_keep_where_each_item_was_timed(tmp_path):
    from bench.merge import merge

    a, b = ResultStore(tmp_path / "a"), ResultStore(tmp_path / "b")
    _plant(a, "x", "fast:x=1", "t", [(2.0, 0.5, 1.0, AMD)])
    _plant(b, "x", "fast:x=1", "u", [(2.0, 0.5, 1.0, {**AMD, "cpu": "Intel(R) Xeon(R) Platinum 8480+"})])
    a.close()
    b.close()
    merge([tmp_path / "a", tmp_path / "b"], tmp_path / "m", allow_partial=True)
    m = ResultStore(tmp_path / "m", readonly=True)
    cpus = {r.task: json.loads(r.timed_on)["cpu"] for r in m.encodes_frame().itertuples()}
    assert cpus == {"t": "AMD EPYC", "u": "Intel(R) Xeon(R) Platinum 8480+"}


def test_points_are_labelled_by_the_options_that_differ():
    from bench.reports.speed import point_labels

    rows = pd.DataFrame({"label": ["a", "b", "c"], "options": [
        json.dumps({"sampler": "ddim", "ddim_steps": 50, "tiny": True}),
        json.dumps({"sampler": "unipc", "ddim_steps": 10, "tiny": True}),
        json.dumps({"sampler": "unipc", "ddim_steps": 5, "tiny": True})]})
    assert point_labels(rows) == ["ddim_steps=50,sampler=ddim", "ddim_steps=10,sampler=unipc",
                                  "ddim_steps=5,sampler=unipc"]
    assert point_labels(rows.assign(options="{}")) == ["a", "b", "c"]  # nothing to tell apart: the labels
