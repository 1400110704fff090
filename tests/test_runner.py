"""Runner and result store: the matrix, caching, resume, failures, alignment and the frame."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import bench
from bench import audio as au
from bench.store import REFERENCE, ResultStore

import fakes

BAD = {"corrupt", "silent", "short", "nan", "empty"}


@pytest.fixture(autouse=True)
def _fakes(monkeypatch):
    fakes.install(monkeypatch)


def test_run_scores_every_good_item_and_records_each_bad_one(audio_dir, tmp_path):
    res = bench.run(codecs=["gain:gain=0.5"], tasks=[f"files:{audio_dir}"], metrics=["l1"], out=tmp_path / "ws", jobs=1)
    frame = res.to_frame()
    row = frame[(frame.codec == "gain") & (frame.metric == "l1")].iloc[0]
    assert row.n == 5 and row.n_failed == len(BAD)
    failures = res.failures()
    assert set(failures.item) == BAD
    reasons = dict(zip(failures.item, failures.error))
    assert "cannot decode" in reasons["corrupt"] and "silent" in reasons["silent"]
    assert "too short" in reasons["short"] and "NaN" in reasons["nan"] and "empty" in reasons["empty"]
    assert all(f"item {i}" in reasons[i] or "clips" in reasons[i] for i in BAD)  # each names its item

    # Independent value: mean over items of mean|ref - 0.5 ref| at 8 kHz, mono mix, = 0.5 * mean|ref_8k|.
    expected = []
    for name in ["good0", "good1", "good2", "good3", "stereo"]:
        path = next(audio_dir.glob(name + ".*"))
        x, sr = au.load(path)
        x = au.to_channels(x, 1)
        ref8 = au.resample(x, sr, 8000)
        rec16 = au.resample(x, sr, 16000) * 0.5
        rec8 = au.fit_length(au.resample(rec16, 16000, 8000), ref8.shape[-1])
        expected.append(np.mean(np.abs(ref8 - rec8)))
    assert row.value == pytest.approx(np.mean(expected), rel=1e-5)
    assert row.bitrate_kbps == pytest.approx(0.5)


def test_rerun_does_no_codec_work_and_new_metric_reuses_outputs(audio_dir, tmp_path):
    ws = tmp_path / "ws"
    first = bench.run(codecs=["gain"], tasks=[f"files:{audio_dir}"], metrics=["l1"], out=ws, jobs=1)
    assert first.codec_work == 5
    before = fakes.CALLS["encode"]
    again = bench.run(codecs=["gain"], tasks=[f"files:{audio_dir}"], metrics=["l1"], out=ws, jobs=1)
    assert again.codec_work == 0 and fakes.CALLS["encode"] == before
    more = bench.run(codecs=["gain"], tasks=[f"files:{audio_dir}"], metrics=["l1", "peak"], out=ws, jobs=1)
    assert more.codec_work == 0 and fakes.CALLS["encode"] == before
    frame = more.to_frame()
    peak = frame[(frame.metric == "peak") & (frame.codec == "gain")].iloc[0]
    floor = frame[(frame.metric == "peak") & (frame.fingerprint == REFERENCE)].iloc[0]
    assert peak.n == 2 and floor.n == 2  # peak applies to speech: the two items with transcripts
    assert peak.value == pytest.approx(0.5 * floor.value, rel=0.02)  # gain 0.5 halves the peak
    pd_equal = first.to_frame().set_index(["fingerprint", "metric"]).value
    assert np.allclose(pd_equal.values, frame[frame.metric == "l1"].set_index(["fingerprint", "metric"]).value.values)


def test_options_change_the_fingerprint_and_the_numbers(audio_dir, tmp_path):
    res = bench.run(codecs=["gain:gain=0.5", "gain:gain=0.9"], tasks=[f"files:{audio_dir}"], metrics=["l1"],
                    out=tmp_path / "ws", jobs=1)
    frame = res.to_frame().set_index("label")
    assert frame.loc["gain:delay=0.0,fail_on=0,gain=0.9", "value"] < frame.loc["gain:delay=0.0,fail_on=0,gain=0.5", "value"]


def test_codec_failure_is_recorded_and_run_goes_on(audio_dir, tmp_path):
    res = bench.run(codecs=["gain:fail_on=9000"], tasks=[f"files:{audio_dir}"], metrics=["l1"], out=tmp_path / "ws", jobs=1)
    fails = res.failures()
    codec_fails = fails[fails.stage == "codec"]
    assert len(codec_fails) >= 1 and "planted codec failure" in codec_fails.error.iloc[0]
    row = res.to_frame().iloc[0]
    assert row.n == 1 and row.n_failed == 4 + len(BAD)  # 0.6 s clips fail, the 0.5 s one passes


def test_store_schema_version_and_atomic_output(tmp_path):
    store = ResultStore(tmp_path / "ws")
    path = store.cache_path("fp", "files:/x y", "a/b")
    store.save_output(path, np.ones((1, 10), np.float32), np.zeros((1, 2, 3), np.int64), 16000, 123.0)
    out = store.load_output(path)
    assert out["audio"].shape == (1, 10) and out["bits_per_second"] == 123.0 and out["codes"].shape == (1, 2, 3)
    assert not list(path.parent.glob("*.tmp"))
    store.db.execute("UPDATE meta SET value='999' WHERE key='schema_version'")
    store.db.commit()
    with pytest.raises(Exception, match="schema version 999"):
        ResultStore(tmp_path / "ws")


KILL_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from bench.codecs import CODECS
    from bench.metrics import METRICS
    from bench.registry import Entry
    CODECS._entries["gain"] = Entry("gain", "fakes:Gain", {{}})
    METRICS._entries["l1"] = Entry("l1", "fakes:L1", {{}})
    import bench
    bench.run(codecs=["gain:delay={delay}"], tasks=["files:{clips}"], metrics=["l1"], out={out!r}, jobs=1)
""")


def test_sigkill_then_resume_gives_the_same_numbers(tmp_path):
    clips = tmp_path / "many"
    clips.mkdir()
    from conftest import tone

    for i in range(12):
        sf.write(clips / f"c{i:02d}.wav", tone(0.4, 16000, 200 + 40 * i, seed=i), 16000)
    tests_dir = str(Path(__file__).parent)
    env = {**os.environ, "PYTHONPATH": tests_dir + os.pathsep + os.environ.get("PYTHONPATH", "")}

    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT.format(tests=tests_dir, delay=0.4, clips=clips,
                                                                      out=str(killed))], env=env)
    db = killed / "results.sqlite"
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until some, not all, items are stored
        if db.exists():
            try:
                n = sqlite3.connect(db).execute("SELECT COUNT(*) FROM scores").fetchone()[0]
            except sqlite3.OperationalError:
                n = 0
            if n >= 3:
                break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n_before = sqlite3.connect(db).execute("SELECT COUNT(*) FROM scores").fetchone()[0]
    assert 3 <= n_before < 12, "kill landed outside the run; the test must interrupt it midway"

    subprocess.run([sys.executable, "-c", KILL_SCRIPT.format(tests=tests_dir, delay=0, clips=clips,
                                                             out=str(killed))], env=env, check=True)
    whole = tmp_path / "whole"
    subprocess.run([sys.executable, "-c", KILL_SCRIPT.format(tests=tests_dir, delay=0, clips=clips,
                                                             out=str(whole))], env=env, check=True)

    def scores(ws):
        rows = sqlite3.connect(ws / "results.sqlite").execute(
            "SELECT item, value FROM scores WHERE metric='l1' ORDER BY item").fetchall()
        return rows

    # delay differs between the two commands, and so does the fingerprint: compare per item values.
    a, b = scores(killed), scores(whole)
    resumed = {}
    for item, v in a:
        resumed.setdefault(item, []).append(v)
    assert sorted(resumed) == [i for i, _ in b]
    for item, v in b:
        assert all(x == pytest.approx(v, abs=0) for x in resumed[item])


def test_worker_processes_give_the_same_numbers(audio_dir, tmp_path):
    kwargs = dict(codecs=["opus:bitrate=6", "mp3:bitrate=16"], tasks=[f"files:{audio_dir}"], metrics=["mel"])
    one = bench.run(out=tmp_path / "one", jobs=1, **kwargs).to_frame()
    two = bench.run(out=tmp_path / "two", jobs=2, **kwargs).to_frame()
    assert len(one) == 2 and list(one.n) == [5, 5] and list(one.n_failed) == [len(BAD)] * 2
    assert np.allclose(one.sort_values("label").value.values, two.sort_values("label").value.values, rtol=0, atol=1e-9)
