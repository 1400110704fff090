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
    # each names its item first (the folder name "clips" is in every path, so it proves nothing)
    assert all(reasons[i].startswith(f"item {i}: ") for i in BAD), reasons

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
    with pytest.raises(Exception, match="schema 999"):
        ResultStore(tmp_path / "ws")


KILL_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from bench.codecs import CODECS
    from bench.metrics import METRICS
    from bench.registry import Entry
    CODECS._entries["gain"] = Entry("gain", "fakes:Gain", {{}})
    METRICS._entries["l1"] = Entry("l1", "fakes:L1", {{}})
    import bench, fakes
    res = bench.run(codecs=["gain:delay=0.25"], tasks=["files:{clips}"], metrics=["l1"], out={out!r}, jobs=1)
    print("ENCODES", fakes.CALLS["encode"], "WORK", res.codec_work)
""")


def test_sigkill_then_resume_codes_only_what_was_missing_and_gives_the_same_numbers(tmp_path):
    clips = tmp_path / "many"
    clips.mkdir()
    from conftest import tone

    for i in range(12):
        sf.write(clips / f"c{i:02d}.wav", tone(0.4, 16000, 200 + 40 * i, seed=i), 16000)
    tests_dir = str(Path(__file__).parent)
    env = {**os.environ, "PYTHONPATH": tests_dir + os.pathsep + os.environ.get("PYTHONPATH", "")}

    def command(out: Path) -> list[str]:  # the same spec every time: a resume, not a fresh start
        return [sys.executable, "-c", KILL_SCRIPT.format(tests=tests_dir, clips=clips, out=str(out))]

    killed = tmp_path / "killed"
    proc = subprocess.Popen(command(killed), env=env, stdout=subprocess.PIPE)
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
    stored = sqlite3.connect(db).execute("SELECT COUNT(*) FROM scores").fetchone()[0]
    assert 3 <= stored < 12, "kill landed outside the run; the test must interrupt it midway"
    cached = len(list((killed / "cache").rglob("*.npz")))  # outputs on disk (stored, or saved just before the kill)
    assert stored <= cached <= stored + 1

    resumed = subprocess.run(command(killed), env=env, check=True, capture_output=True, text=True).stdout.split()
    assert resumed[:2] == ["ENCODES", str(12 - cached)]  # the resume coded exactly the items that had no output
    whole = tmp_path / "whole"
    fresh = subprocess.run(command(whole), env=env, check=True, capture_output=True, text=True).stdout.split()
    assert fresh[:2] == ["ENCODES", "12"]

    def scores(ws):
        return sqlite3.connect(ws / "results.sqlite").execute(
            "SELECT fingerprint, item, value FROM scores ORDER BY item").fetchall()

    a, b = scores(killed), scores(whole)
    assert len(a) == 12 and a == b  # one fingerprint, every item once, values identical to an uninterrupted run


def test_a_worker_crash_is_one_failure_row(audio_dir, tmp_path):
    n = int(round(0.6 * 16000))  # the 0.6 s clips (good0-3, at 16 kHz in the codec) kill their worker: SIGSEGV
    res = bench.run(codecs=[f"crash:crash_on={n}"], tasks=[f"files:{audio_dir}"], metrics=["l1"], out=tmp_path / "ws",
                    jobs=2)
    fails = res.failures()
    crashed = fails[fails.error.str.contains("SIGSEGV")]
    assert sorted(crashed.item) == ["good0", "good1", "good2", "good3"]
    assert set(crashed.stage) == {"codec"}
    row = res.to_frame().query("codec == 'crash'").iloc[0]
    assert row.n == 1 and row.n_failed == 4 + len(BAD)  # the run went on: the 0.5 s stereo clip is scored
    assert row.value == pytest.approx(0.0, abs=1e-4)  # gain 1: only resampling round-off


NO_GUARD = textwrap.dedent("""
    import bench
    res = bench.run(codecs=["opus:bitrate=6"], tasks=["files:{clips}"], metrics=["mel"], out={out!r}, jobs=2)
    print("N", int(res.to_frame().query("codec == 'opus'").n.iloc[0]))
""")


def test_run_without_a_main_guard_and_on_stdin(audio_dir, tmp_path):
    for i, how in enumerate(["file", "stdin"]):
        script = NO_GUARD.format(clips=audio_dir, out=str(tmp_path / f"ws{i}"))
        if how == "file":
            path = tmp_path / "script.py"
            path.write_text(script)
            out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=300)
        else:
            out = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.split() == ["N", "5"]


def test_worker_processes_give_the_same_numbers(audio_dir, tmp_path):
    kwargs = dict(codecs=["opus:bitrate=6", "mp3:bitrate=16"], tasks=[f"files:{audio_dir}"], metrics=["mel"])
    one = bench.run(out=tmp_path / "one", jobs=1, **kwargs).to_frame()
    two = bench.run(out=tmp_path / "two", jobs=2, **kwargs).to_frame()
    assert len(one) == 2 and list(one.n) == [5, 5] and list(one.n_failed) == [len(BAD)] * 2
    assert np.allclose(one.sort_values("label").value.values, two.sort_values("label").value.values, rtol=0, atol=1e-9)


def test_a_worker_with_other_code_than_the_driver_stops_the_run_in_one_line(audio_dir, tmp_path):
    # a metric whose code_version differs in worker processes: its scores would land under a key the driver never
    # reads (seen when bench changed on disk during a run); the worker refuses instead
    from bench.cli import _error_line
    from bench.workers import CodeMismatchError

    with pytest.raises(CodeMismatchError) as err:
        bench.run(codecs=["gain"], tasks=[f"files:{audio_dir}"], metrics=["drifted"], out=tmp_path / "ws", jobs=2)
    line = _error_line(err.value)
    assert "other bench code than the driver" in line and "drifted" in line and "\n" not in line
    # in the driver's own process nothing differs: the same metric runs
    res = bench.run(codecs=["gain"], tasks=[f"files:{audio_dir}"], metrics=["drifted"], out=tmp_path / "ws", jobs=1)
    assert res.to_frame().n.max() == 5


def test_default_workers_per_codec():
    from bench.runner import _default_jobs
    from bench.workers import Workers

    classic, neural = bench.load_codec("gain"), bench.load_codec("semanticodec:tiny,pretrained=false")
    assert _default_jobs(classic, Workers(None, "cpu")) == min(2, os.cpu_count() or 1)
    assert _default_jobs(neural, Workers(None, "cpu")) == 1  # one model in memory
    assert _default_jobs(neural, Workers(None, "cpu", "ray")) == 1
    assert _default_jobs(neural, Workers(None, "cuda", "ray", gpus_per_worker=1)) is None  # Ray: one per GPU



def test_the_cell_is_the_metrics_own_aggregate_of_the_items(audio_dir, tmp_path):
    # the fake L1 aggregates by the default mean, so a runner that averaged every metric's per-item values passed
    # everything above; fakes.TotalOverTotal's value is total / total over items of different lengths, not the mean
    res = bench.run(codecs=["gain:gain=0.5"], tasks=[f"files:{audio_dir}"], metrics=["tot"], out=tmp_path / "ws",
                    jobs=1)
    key = next(k for k in res.metrics if k.startswith("tot"))
    rows = res.store.item_scores(res.fingerprints[0], res.tasks[0], key)
    assert len(rows) == 5 and len({r["samples"] for r in rows.values()}) > 1
    total = sum(r["off"] for r in rows.values()) / sum(r["samples"] for r in rows.values())
    mean = float(np.mean([r["tot"] for r in rows.values()]))
    assert abs(total - mean) > 1e-4  # the two rules give different numbers here
    cell = res.to_frame().query("codec == 'gain'").iloc[0]
    assert cell.value == pytest.approx(total, rel=1e-12) and cell.n == 5
