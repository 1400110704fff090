"""Trustworthy numbers in the workspace: cache identity, item content, item sets of cells, corrupt files,
schema versions and migrations, the writer lock, read-only workspaces (issue 11, items 1, 2, 4, 15, 17)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import bench
from bench.store import (SCHEMA_VERSION, ResultStore, StoreCorruptError, StoreError, StoreLockedError,
                         StoreVersionError)
from conftest import tone

import fakes


@pytest.fixture(autouse=True)
def _fakes(monkeypatch):
    fakes.install(monkeypatch)


def _l1(res) -> dict[str, float]:
    """Per-item l1 of the run's gain codec."""
    store = res.store
    key = next(k for k in res.metrics if k.startswith("l1"))
    return {i: v["l1"] for i, v in store.item_scores(res.fingerprints[0], res.tasks[0], key).items()}


def test_ids_that_sanitise_alike_never_share_a_cache_file(tmp_path):
    # x/y.wav and x_y.wav once mapped to one cache file: x_y was scored against x/y's decoded audio.
    clips = tmp_path / "clips"
    (clips / "x").mkdir(parents=True)
    sf.write(clips / "x" / "y.wav", tone(0.5, 16000, 220, seed=1), 16000)
    sf.write(clips / "x_y.wav", tone(0.5, 16000, 880, amp=0.2, seed=2), 16000)
    sf.write(clips / "a.wav", tone(0.5, 16000, 330, seed=3), 16000)
    sf.write(clips / "a.flac", tone(0.5, 16000, 660, amp=0.3, seed=4), 16000)
    res = bench.run(codecs=["gain:gain=1.0"], tasks=[f"files:{clips}"], metrics=["l1"], out=tmp_path / "ws", jobs=1)
    scores = _l1(res)
    assert sorted(scores) == ["a.flac", "a.wav", "x/y", "x_y"]  # a.wav and a.flac keep their extension
    assert all(v < 1e-6 for v in scores.values()), scores  # a pass-through codec: every item scored against itself
    files = list((tmp_path / "ws" / "cache").rglob("*.npz"))
    assert len(files) == 4


def test_two_folders_with_the_same_long_tail_have_their_own_cache(tmp_path):
    tail = "d" * 90
    for i, parent in enumerate(["one", "two"]):
        d = tmp_path / parent / tail
        d.mkdir(parents=True)
        sf.write(d / "c.wav", tone(0.5, 16000, 200 + 300 * i, seed=i), 16000)
    ws = tmp_path / "ws"
    for parent in ["one", "two"]:
        res = bench.run(codecs=["gain:gain=1.0"], tasks=[f"files:{tmp_path / parent / tail}"], metrics=["l1"],
                        out=ws, jobs=1)
        assert _l1(res)["c"] < 1e-6
        assert res.codec_work == 1


def test_a_changed_file_gets_new_results(tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    sf.write(clips / "c.wav", tone(0.5, 16000, 220, seed=1), 16000)
    sf.write(clips / "d.wav", tone(0.5, 16000, 330, seed=2), 16000)
    (clips / "transcripts.tsv").write_text("c\tthe changed clip\n")  # c is speech, so the speech-only peak scores it
    ws = tmp_path / "ws"
    first = bench.run(codecs=["gain:gain=1.0"], tasks=[f"files:{clips}"], metrics=["l1"], out=ws, jobs=1)
    assert first.codec_work == 2
    time.sleep(0.01)
    sf.write(clips / "c.wav", tone(0.8, 16000, 440, amp=0.9, seed=5), 16000)  # same name, other content
    second = bench.run(codecs=["gain:gain=1.0"], tasks=[f"files:{clips}"], metrics=["l1", "peak"], out=ws, jobs=1)
    assert second.codec_work == 1  # only the changed item ran through the codec again
    assert _l1(second)["c"] < 1e-6
    # the newly added metric compares the new file with its new decoded audio
    peak_key = next(k for k in second.metrics if k.startswith("peak"))
    peaks = second.store.item_scores(second.fingerprints[0], second.tasks[0], peak_key)
    assert set(peaks) == {"c"}  # d has no transcript: a sound item, which the speech-only peak skips
    # gain 1 at the file's own 16 kHz: the decoded audio is the new file's samples, so its peak is theirs
    new = sf.read(clips / "c.wav", dtype="float32")[0]
    old = tone(0.5, 16000, 220, seed=1)
    assert abs(np.abs(new).max() - np.abs(old).max()) > 0.1  # the old file's peak would not pass for the new one's
    assert peaks["c"]["peak"] == pytest.approx(float(np.abs(new).max()), rel=1e-4)
    frame = second.to_frame()
    row = frame[(frame.metric_name == "l1") & (frame.codec == "gain")].iloc[0]
    assert row.n == 2 and row.value < 1e-6


def test_task_level_cell_follows_the_item_set(tmp_path, audio_dir):
    ws = tmp_path / "ws"
    small = bench.run(codecs=["gain"], tasks=[f"files:{audio_dir}"], metrics=["itemcount"], out=ws, jobs=1, limit=3)
    count = small.to_frame()
    assert set(count[count.codec == "gain"].value) == {3.0}
    full = bench.run(codecs=["gain"], tasks=[f"files:{audio_dir}"], metrics=["itemcount"], out=ws, jobs=1)
    frame = full.to_frame()
    n_items = len(bench.load_task(f"files:{audio_dir}").items())
    assert set(frame[frame.codec == "gain"].value) == {float(n_items)}  # was stuck at 3 for good
    assert set(frame[frame.codec == "gain"].n) == {n_items}


def test_item_cells_cover_the_items_of_the_run_and_say_which(tmp_path, audio_dir):
    ws = tmp_path / "ws"
    bench.run(codecs=["gain"], tasks=[f"files:{audio_dir}"], metrics=["l1"], out=ws, jobs=1, limit=2)
    a = ResultStore(ws).cells()
    bench.run(codecs=["gain"], tasks=[f"files:{audio_dir}"], metrics=["l1"], out=ws, jobs=1)
    b = ResultStore(ws).cells()
    assert a.items_digest.iloc[0] != b.items_digest.iloc[0]
    assert a.n.iloc[0] + a.n_failed.iloc[0] == 2 and b.n.iloc[0] + b.n_failed.iloc[0] == len(list(audio_dir.glob("*.*"))) - 1


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
def test_a_corrupt_cache_file_is_discarded_and_recomputed(tmp_path, audio_dir, damage):
    ws = tmp_path / "ws"
    first = bench.run(codecs=["gain:gain=0.5"], tasks=[f"files:{audio_dir}"], metrics=["l1"], out=ws, jobs=1)
    assert len(list((ws / "cache").rglob("*.npz"))) == 5
    # the damaged file is good0's: an item with a transcript, so the new speech-only peak needs its decoded audio
    # (a file picked by its hashed name, which follows the tmp path, was a sound item in some runs: never read)
    damaged = Path(first.store.encode_row(first.fingerprints[0], first.tasks[0], "good0")["path"])
    data = damaged.read_bytes()
    damaged.write_bytes({"empty": b"", "truncated": data[: len(data) // 2], "garbage": b"\x00" * 300}[damage])
    before = fakes.CALLS["encode"]
    # the damaged one is coded again, not failed for good
    again = bench.run(codecs=["gain:gain=0.5"], tasks=[f"files:{audio_dir}"], metrics=["l1", "peak"], out=ws, jobs=1,
                      retry_failed=True)
    assert fakes.CALLS["encode"] - before == 1
    assert not [f for f in again.store.failures(again.fingerprints[0]) if f["stage"] == "codec"]
    frame = again.to_frame()
    l1 = frame[(frame.metric_name == "l1") & (frame.codec == "gain")].iloc[0]
    assert l1.n == 5 and l1.value == pytest.approx(first.to_frame().query("codec == 'gain'").value.iloc[0])
    peak = frame[(frame.metric_name == "peak") & (frame.codec == "gain")].iloc[0]
    assert peak.n == 2 and "good0" in again.store.item_scores(again.fingerprints[0], again.tasks[0], peak.metric_key)
    assert ResultStore.load_output(damaged) is not None  # rewritten whole


def test_load_output_discards_an_unreadable_file(tmp_path):
    path = tmp_path / "x.npz"
    path.write_bytes(b"PK\x03\x04 not really")
    assert ResultStore.load_output(path) is None
    assert not path.exists()
    assert ResultStore.load_output(tmp_path / "absent.npz") is None


def test_save_output_fsyncs_before_the_rename(tmp_path, monkeypatch):
    order = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (order.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (order.append("replace"), real_replace(a, b))[1])
    ResultStore.save_output(tmp_path / "c" / "o.npz", np.ones((1, 4), np.float32), None, 16000, 1.0)
    assert order[:2] == ["fsync", "replace"]


def test_a_newer_schema_is_refused_before_anything_is_written(tmp_path):
    ws = tmp_path / "ws"
    store = ResultStore(ws)
    store.db.execute("UPDATE meta SET value='999' WHERE key='schema_version'")
    store.db.commit()
    store.close()
    before = (ws / "results.sqlite").read_bytes()
    with pytest.raises(StoreVersionError, match="newer bench.*schema 999"):
        ResultStore(ws)
    with pytest.raises(StoreVersionError):
        ResultStore(ws, readonly=True)
    assert (ws / "results.sqlite").read_bytes() == before


V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, started REAL, finished REAL, config TEXT, environment TEXT);
CREATE TABLE codecs (fingerprint TEXT PRIMARY KEY, name TEXT, options TEXT, label TEXT, nominal_kbps REAL, meta TEXT);
CREATE TABLE metrics (identity TEXT PRIMARY KEY, name TEXT, key TEXT, meta TEXT);
CREATE TABLE items (task TEXT, item TEXT, domain TEXT, sample_rate INTEGER, seconds REAL, text TEXT, label TEXT,
    path TEXT, PRIMARY KEY (task, item));
CREATE TABLE encodes (fingerprint TEXT, task TEXT, item TEXT, bits_per_second REAL, seconds REAL, encode_s REAL,
    decode_s REAL, sample_rate INTEGER, path TEXT, tokens_per_second REAL, PRIMARY KEY (fingerprint, task, item));
CREATE TABLE scores (fingerprint TEXT, task TEXT, item TEXT, metric TEXT, key TEXT, value REAL,
    PRIMARY KEY (fingerprint, task, item, metric, key));
CREATE TABLE failures (fingerprint TEXT, task TEXT, item TEXT, stage TEXT, metric TEXT, error TEXT, created REAL,
    PRIMARY KEY (fingerprint, task, item, stage, metric));
CREATE TABLE cells (fingerprint TEXT, task TEXT, metric TEXT, value REAL, n INTEGER, n_failed INTEGER,
    n_skipped INTEGER, extra TEXT, updated REAL, PRIMARY KEY (fingerprint, task, metric));
INSERT INTO meta VALUES ('schema_version', '1');
INSERT INTO scores VALUES ('fp', 't', 'i', 'mel', 'mel', 1.5);
INSERT INTO cells VALUES ('fp', 't', 'mel', 1.5, 1, 0, 0, '{}', 0);
"""


def test_a_schema_1_workspace_is_migrated(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    db = sqlite3.connect(ws / "results.sqlite")
    db.executescript(V1_SCHEMA)
    db.close()
    with pytest.raises(StoreVersionError, match="schema 1"):
        ResultStore(ws, readonly=True)  # a reader never upgrades
    store = ResultStore(ws)
    assert store.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    assert store.item_scores("fp", "t", "mel") == {"i": {"mel": 1.5}}  # per-item rows are kept
    assert store.cells().empty  # cells that cannot say which items and code made them are not
    store.write_cell("fp", "t", "mel", 2.0, 1, 0, 0, items_digest="abc", codec_version="1", metric_version="1")
    assert store.cell("fp", "t", "mel")["items_digest"] == "abc"


def test_a_truncated_database_says_how_to_recover_and_the_cache_recovers_it(tmp_path, audio_dir):
    ws = tmp_path / "ws"
    first = bench.run(codecs=["gain:gain=0.5"], tasks=[f"files:{audio_dir}"], metrics=["l1"], out=ws, jobs=1)
    values = _l1(first)
    first.store.close()
    db = ws / "results.sqlite"
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 3])
    with pytest.raises(StoreCorruptError, match="move it away") as err:
        ResultStore(ws)
    assert "\n" not in str(err.value)
    shutil.move(db, str(db) + ".broken")
    before = fakes.CALLS["encode"]
    again = bench.run(codecs=["gain:gain=0.5"], tasks=[f"files:{audio_dir}"], metrics=["l1"], out=ws, jobs=1)
    assert fakes.CALLS["encode"] == before and again.codec_work == 0  # nothing coded again: the cache has it
    assert _l1(again) == values
    frame = again.to_frame()
    assert frame.query("codec == 'gain'").bitrate_kbps.iloc[0] == pytest.approx(0.5)


def test_garbage_in_place_of_the_database_is_one_clear_error(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "results.sqlite").write_bytes(b"this is not sqlite" * 100)
    for readonly in (False, True):
        with pytest.raises(StoreCorruptError, match="cannot be read"):
            ResultStore(ws, readonly=readonly)


def test_out_naming_a_file_is_one_clear_error(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(StoreError, match="is a file"):
        ResultStore(f)


def test_a_second_writer_is_refused(tmp_path, audio_dir):
    ws = tmp_path / "ws"
    holder = ResultStore(ws)
    with holder.writer():
        with pytest.raises(StoreLockedError, match=f"pid {os.getpid()}"):
            bench.run(codecs=["gain"], tasks=[f"files:{audio_dir}"], metrics=["l1"], out=ws, jobs=1)
    res = bench.run(codecs=["gain"], tasks=[f"files:{audio_dir}"], metrics=["l1"], out=ws, jobs=1)  # lock released
    assert res.codec_work == 5


def test_the_lock_is_released_when_its_holder_is_killed(tmp_path):
    ws = tmp_path / "ws"
    ResultStore(ws).close()
    code = ("import sys, time; from bench.store import ResultStore; s = ResultStore(sys.argv[1]); "
            "cm = s.writer(); cm.__enter__(); print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(ws)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    with pytest.raises(StoreLockedError):
        with ResultStore(ws).writer():
            pass
    proc.kill()
    proc.wait()
    with ResultStore(ws).writer():
        pass


def test_readonly_opens_write_nothing(tmp_path, audio_dir):
    ws = tmp_path / "ws"
    res = bench.run(codecs=["gain"], tasks=[f"files:{audio_dir}"], metrics=["l1"], out=ws, jobs=1)
    res.store.close()
    mine = lambda: {p.name: p.read_bytes() for p in ws.iterdir() if p.is_file() and "sqlite-" not in p.name}  # noqa: E731
    before = mine()
    store = ResultStore(ws, readonly=True)
    assert len(store.cells()) == 1
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        store.add_item("t", "i", "sound", 1, 1.0, None, None)
    store.close()
    assert mine() == before  # SQLite's own -wal/-shm files aside
    with pytest.raises(StoreError, match="no results"):
        ResultStore(tmp_path / "absent", readonly=True)
    assert not (tmp_path / "absent").exists()


READ_ARCHIVE = """
import sys
from bench.store import ResultStore
print(len(ResultStore(sys.argv[1], readonly=True).cells()))
try:
    ResultStore(sys.argv[1])
except Exception as err:
    print(type(err).__name__, err)
"""


def test_a_read_only_archive_can_be_read(tmp_path, audio_dir):
    ws = tmp_path / "ws"
    res = bench.run(codecs=["gain"], tasks=[f"files:{audio_dir}"], metrics=["l1"], out=ws, jobs=1)
    res.store.close()
    code = [sys.executable, "-c", READ_ARCHIVE]
    if os.geteuid() == 0:  # root ignores file modes: mount the workspace read-only in a private mount namespace
        cmd = ["unshare", "-m", "sh", "-c", 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && '
               'exec "$1" -c "$2" "$0"', str(ws), sys.executable, READ_ARCHIVE]
    else:
        for p in [ws, *ws.rglob("*")]:
            os.chmod(p, 0o555 if p.is_dir() else 0o444)
        cmd = code + [str(ws)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "1"  # one cell, read from the read-only folder
    assert lines[1].startswith("StoreReadOnlyError") and "give a writable --out folder" in lines[1]


def test_run_arguments_are_checked(tmp_path, audio_dir):
    task = f"files:{audio_dir}"
    one = bench.run(codecs="gain", tasks=task, metrics="l1", out=tmp_path / "ws", jobs=1)  # one name, not letters
    assert one.to_frame().query("codec == 'gain'").n.iloc[0] == 5
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="limit must be"):
            bench.run(codecs="gain", tasks=task, metrics="l1", out=tmp_path / "ws", limit=bad)
    with pytest.raises(ValueError, match="jobs must be"):
        bench.run(codecs="gain", tasks=task, metrics="l1", out=tmp_path / "ws", jobs=0)
    with pytest.raises(ValueError, match="empty"):
        bench.run(codecs=[], tasks=task, metrics="l1", out=tmp_path / "ws")


def test_files_task_input_checks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="needs a folder"):
        bench.load_task("files:")
    d = tmp_path / "c"
    d.mkdir()
    sf.write(d / "one.wav", tone(0.3, 16000), 16000)
    sf.write(d / "two.wav", tone(0.3, 16000), 16000)
    (d / "transcripts.tsv").write_bytes("\ufeffone\thello there\ntwo\tsecond\n".encode("utf-8"))
    texts = {i.id: i.text for i in bench.load_task(f"files:{d}").items()}
    assert texts == {"one": "hello there", "two": "second"}  # the BOM once hid the first transcript
    (d / "transcripts.tsv").write_bytes("one\tcaf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"transcripts.tsv is not UTF-8.*save it as UTF-8"):
        bench.load_task(f"files:{d}")


def test_duplicate_item_ids_are_refused(tmp_path, monkeypatch):
    from bench.tasks.base import Item, Task, TaskMeta

    class Dup(Task):
        meta = TaskMeta("dup", "sound", "two items, one id")

        def items(self):
            return [Item("a", "sound", path=Path("/x/a.wav")), Item("a", "sound", path=Path("/y/a.wav"))]

    import bench.tasks as tasks_module

    monkeypatch.setattr(tasks_module, "load_task", lambda name: Dup())
    with pytest.raises(ValueError, match="share the id 'a'"):
        bench.run(codecs="gain", tasks="dup", metrics="l1", out=tmp_path / "ws")


def test_in_memory_items_are_keyed_by_their_samples():
    from bench.tasks.base import Item

    a = Item("x", "sound", _audio=np.zeros((1, 100), np.float32), sample_rate=16000)
    b = Item("x", "sound", _audio=np.ones((1, 100), np.float32), sample_rate=16000)
    assert a.signature() != b.signature()
    assert a.signature() == Item("x", "sound", _audio=np.zeros((1, 100), np.float32), sample_rate=16000).signature()


def test_reports_show_only_cells_of_the_code_installed_now(tmp_path, audio_dir, monkeypatch):
    from bench.reports.frame import summary_frame

    ws = tmp_path / "ws"
    old = bench.run(codecs=["gain"], tasks=[f"files:{audio_dir}"], metrics=["l1"], out=ws, jobs=1)
    old_value = old.to_frame().query("codec == 'gain'").value.iloc[0]
    monkeypatch.setattr(fakes.Gain, "gain", 0.5, raising=False)
    monkeypatch.setattr(fakes.Gain, "code_version", "2")  # a fixed bug: the codec's outputs may move
    stale = summary_frame(ResultStore(ws, readonly=True))
    assert stale.query("codec == 'gain'").empty and stale.attrs["stale"] == 1  # the old cell is not shown
    new = bench.run(codecs=["gain"], tasks=[f"files:{audio_dir}"], metrics=["l1"], out=ws, jobs=1)
    assert new.codec_work == 5  # a new code version never reuses old audio
    frame = summary_frame(ResultStore(ws, readonly=True))
    rows = frame.query("codec == 'gain'")
    assert len(rows) == 1 and rows.codec_version.iloc[0] == "2" and rows.value.iloc[0] == pytest.approx(old_value)
    monkeypatch.setattr(fakes.L1, "code_version", "7")  # and a metric's
    assert summary_frame(ResultStore(ws, readonly=True)).query("codec == 'gain'").empty
    scored = fakes.CALLS["l1"]
    again = bench.run(codecs=["gain"], tasks=[f"files:{audio_dir}"], metrics=["l1"], out=ws, jobs=1)
    assert again.codec_work == 0 and fakes.CALLS["l1"] - scored == 5  # the audio is current; the metric reruns
    rows = summary_frame(ResultStore(ws, readonly=True)).query("codec == 'gain'")
    assert len(rows) == 1 and rows.metric_version.iloc[0] == "7" and rows.n.iloc[0] == 5


def test_cells_carry_a_portable_manifest_of_their_items(tmp_path, audio_dir):
    import json

    copy = tmp_path / "elsewhere" / "clips"
    shutil.copytree(audio_dir, copy)  # another path, other mtimes, the same files
    for p in copy.iterdir():
        os.utime(p, (1, 1))
    manifests = []
    for i, folder in enumerate([audio_dir, copy]):
        res = bench.run(codecs="gain", tasks=f"files:{folder}", metrics="l1", out=tmp_path / f"ws{i}", jobs=1)
        cell = res.store.cells().query("codec == 'gain'").iloc[0]
        manifests.append(json.loads(cell.extra)["manifest"])
    assert manifests[0] == manifests[1] and len(manifests[0]) == 64
    (copy / "transcripts.tsv").write_text("good0\tanother text\n")
    res = bench.run(codecs="gain", tasks=f"files:{copy}", metrics="l1", out=tmp_path / "ws2", jobs=1)
    assert json.loads(res.store.cells().query("codec == 'gain'").extra.iloc[0])["manifest"] != manifests[0]


def test_one_task_twice_in_a_run_is_refused(tmp_path, audio_dir):
    with pytest.raises(ValueError, match="named twice"):
        bench.run(codecs="gain", tasks=[f"files:{audio_dir}", f"files:{audio_dir}/"], metrics="l1", out=tmp_path / "ws")


def test_files_renamed_into_place_get_the_umask_mode_not_0600(tmp_path):
    import os
    import stat

    from bench import fsutil
    from bench.reports import atomic

    old = os.umask(0o022)
    fsutil._umask.cache_clear()  # read once per process: read it again under this umask
    try:
        report = atomic.write_text(tmp_path / "report.md", "x")
        cache = tmp_path / "ws" / "cache" / "a.npz"
        ResultStore.save_output(cache, np.zeros((1, 16), np.float32), None, 16000, 1.0)
    finally:
        os.umask(old)
        fsutil._umask.cache_clear()
    for path in (report, cache):  # what a colleague or a web server reading bench-out/ needs
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, (path, oct(path.stat().st_mode))
