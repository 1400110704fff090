"""The command line as a user drives it: run, re-run, bad input, random official-layout weights."""

from __future__ import annotations

import pytest

from bench.cli import main


def test_run_then_rerun_does_no_codec_work(audio_dir, tmp_path, capsys):
    args = ["run", "--codec", "opus", "--bitrate", "6", "--codec", "codec2", "--bitrate", "1.2",
            "--task", f"files:{audio_dir}", "--metric", "mel", "--out", str(tmp_path / "ws"), "--jobs", "1"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "10 item(s) ran through a codec" in first and "report:" in first
    assert "| opus:kbps=6 |" in first and "| codec2:mode=1200 |" in first
    assert (tmp_path / "ws" / "report" / "index.html").exists()
    assert main(args) == 0
    assert "0 item(s) ran through a codec" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["run", "--codec", "opsu"], "Did you mean 'opus'"),
    (["run", "--codec", "codec2:mode=999"], "700C"),
    (["run", "--codec", "opus", "--task", "demo-speach"], "Did you mean 'demo-speech'"),
    (["run", "--codec", "opus", "--metric", "wre"], "Did you mean 'wer'"),
    (["run", "--codec", "encodec", "--weights", "/nonexistent/dir"], "bench weights fetch encodec"),
    (["run", "--task", "files:/nonexistent/dir", "--codec", "opus"], "no such folder"),
    (["run", "--codec", "opus", "--device", "gpu0"], "not a torch device"),
    pytest.param(["run", "--codec", "semanticodec:tiny", "--device", "cuda:99"], "cuda:99",
                 id="cuda-missing-or-out-of-range"),
])
def test_bad_input_gets_one_clear_line_and_exit_2(args, message, tmp_path, capsys):
    assert main(args + ["--out", str(tmp_path / "ws")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bench: error:") and message in err


def test_bitrate_must_follow_a_codec(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--bitrate", "6"])
    assert exc.value.code == 2 and "--bitrate must follow a --codec" in capsys.readouterr().err


def test_random_official_layout_weights_run_end_to_end(audio_dir, tmp_path, capsys):
    dest = tmp_path / "encodec_weights"
    assert main(["weights", "random", "encodec", "--dest", str(dest)]) == 0
    assert list(dest.glob("*.th")), "the original .th layout is written"
    args = ["run", "--codec", "encodec", "--bitrate", "1.5", "--weights", str(dest), "--task", f"files:{audio_dir}",
            "--metric", "mel", "--out", str(tmp_path / "ws"), "--limit", "4", "--no-report"]  # 2 bad + 2 good
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "bandwidth=1.5" in out and "| 1.5 |" in out  # measured: 2 codebooks x 75 frames/s x 10 bits
    assert "[random weights]" in out  # the marker left by `bench weights random` labels every row


# -- one line, exit 2, never a traceback ------------------------------------------------------------------

def _cli(args: list[str], capsys) -> tuple[int, str, str]:
    """main(args) -> (exit code, stdout, stderr); argparse's exits count as return codes."""
    try:
        code = main(args)
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _failures(ws) -> list[dict]:
    from bench.store import ResultStore

    store = ResultStore(ws, readonly=True)
    try:
        return list(store.failures())
    finally:
        store.close()


def _tiny_workspace(tmp_path, capsys):
    """A finished run of identity over two short clips (no report), for the workspace tests."""
    import numpy as np
    import soundfile as sf

    clips = tmp_path / "tiny"
    clips.mkdir()
    for i in range(2):
        sf.write(clips / f"c{i}.wav", 0.1 * np.sin(np.arange(4000) * (0.05 + 0.01 * i)).astype(np.float32), 8000)
    ws = tmp_path / "ws"
    code, _, err = _cli(["run", "--codec", "identity", "--task", f"files:{clips}", "--metric", "mel", "--out", str(ws),
                         "--jobs", "1", "--no-report"], capsys)
    assert code == 0, err
    return clips, ws


@pytest.mark.parametrize("args", [
    ["--codec", "opus", "--bitrate", "nan"],
    ["--codec", "opus", "--bitrate", "-6"],
    ["--codec", "opus", "--bitrate", "0"],
    ["--codec", "opus", "--bitrate", "6,inf"],
    ["--codec", "opus:bitrate=nan"],
    ["--codec", "opus:bitrate=-6"],
])
def test_nan_or_negative_bitrate_is_refused(args, tmp_path, capsys):
    code, _, err = _cli(["run", *args, "--out", str(tmp_path / "ws")], capsys)
    line = _one_error_line(err)
    assert code == 2 and "error: --bitrate must be a positive number of kbps, got " in line
    assert line.split("got ")[1].split()[0] in ("nan", "-6", "0", "inf")
    assert not (tmp_path / "ws").exists()  # refused before any work


def test_out_naming_a_file_is_one_line(tmp_path, capsys):
    target = tmp_path / "results.txt"
    target.write_text("not a workspace")
    code, _, err = _cli(["run", "--codec", "identity", "--task", "demo-speech", "--out", str(target)], capsys)
    assert code == 2 and "is a file, not a folder" in _one_error_line(err)


def test_out_naming_a_read_only_folder_is_one_line(tmp_path, capsys, monkeypatch):
    import os

    ro = tmp_path / "archive"
    ro.mkdir()
    real_access = os.access
    # what a folder without write permission answers (tests may run as root, which writes anywhere)
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if os.fspath(p) == os.fspath(ro) and mode & os.W_OK
                        else real_access(p, mode, **kw))
    code, _, err = _cli(["run", "--codec", "identity", "--task", "demo-speech", "--out", str(ro)], capsys)
    assert code == 2 and "not writable" in _one_error_line(err)


def test_a_store_error_is_one_line(tmp_path, capsys, monkeypatch):
    import bench.store

    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "results.sqlite").write_bytes(b"")

    def refuse(self, *args, **kwargs):
        raise bench.store.StoreError("the workspace cannot be used; do this instead")

    monkeypatch.setattr(bench.store.ResultStore, "__init__", refuse)
    for command in (["report"], ["export"]):
        code, _, err = _cli([*command, "--out", str(tmp_path / "ws")], capsys)
        assert code == 2 and _one_error_line(err) == "bench: error: the workspace cannot be used; do this instead"


def test_truncated_results_database_is_one_line_that_says_how_to_recover(tmp_path, capsys):
    clips, ws = _tiny_workspace(tmp_path, capsys)
    db = ws / "results.sqlite"
    db.write_bytes(db.read_bytes()[:200])
    for args in (["report", "--out", str(ws)], ["export", "--out", str(ws)],
                 ["run", "--codec", "identity", "--task", f"files:{clips}", "--metric", "mel", "--out", str(ws),
                  "--jobs", "1", "--no-report"]):
        code, _, err = _cli(args, capsys)
        assert code == 2 and "move it away" in _one_error_line(err), args


def test_workspace_of_a_newer_schema_is_one_line(tmp_path, capsys):
    import sqlite3

    clips, ws = _tiny_workspace(tmp_path, capsys)
    with sqlite3.connect(ws / "results.sqlite") as db:
        db.execute("UPDATE meta SET value='999' WHERE key='schema_version'")
    for args in (["report", "--out", str(ws)],
                 ["run", "--codec", "identity", "--task", f"files:{clips}", "--out", str(ws), "--no-report"]):
        code, _, err = _cli(args, capsys)
        assert code == 2 and "newer bench" in _one_error_line(err), args


def test_report_and_export_open_the_store_read_only(tmp_path, capsys, monkeypatch):
    import bench.store

    _, ws = _tiny_workspace(tmp_path, capsys)
    opened = []
    real_init = bench.store.ResultStore.__init__

    def spy(self, root="bench-out", readonly=False):
        opened.append(readonly)
        real_init(self, root, readonly=readonly)

    monkeypatch.setattr(bench.store.ResultStore, "__init__", spy)
    dest = tmp_path / "elsewhere"
    code, out, err = _cli(["report", "--out", str(ws), "--dest", str(dest)], capsys)
    assert code == 0, err
    assert (dest / "index.html").exists() and not (ws / "report").exists()
    code, out, err = _cli(["export", "--out", str(ws)], capsys)
    assert code == 0, err
    assert opened == [True, True]


def test_report_into_a_read_only_place_says_dest(tmp_path, capsys, monkeypatch):
    import os

    _, ws = _tiny_workspace(tmp_path, capsys)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if os.fspath(p) == os.fspath(ws) and mode & os.W_OK
                        else real_access(p, mode, **kw))
    code, _, err = _cli(["report", "--out", str(ws)], capsys)
    assert code == 2 and "--dest DIR" in _one_error_line(err)


class _NotATensor:
    pass


def test_a_rejected_weights_pickle_is_one_line_without_torch_advice(tmp_path, capsys, audio_dir):
    import torch

    evil = tmp_path / "model.th"  # an original-layout name, but holding an arbitrary object
    torch.save({"model": _NotATensor()}, evil)
    code, _, err = _cli(["run", "--codec", "encodec", "--bitrate", "1.5", "--weights", str(evil), "--task",
                         f"files:{audio_dir}", "--out", str(tmp_path / "ws"), "--no-report"], capsys)
    line = _one_error_line(err)
    assert code == 2 and "not a checkpoint in the official layout" in line
    assert "weights_only" not in err


def test_an_unreadable_file_is_a_failure_row_that_says_permission_denied(tmp_path, capsys, monkeypatch):
    import os

    clips, ws = _tiny_workspace(tmp_path, capsys)
    locked = clips / "c1.wav"
    real_open = os.open

    def deny(p, flags, *args, **kwargs):  # a file without read permission (tests may run as root)
        if os.fspath(p) == os.fspath(locked):
            raise PermissionError(13, "Permission denied", os.fspath(p))
        return real_open(p, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)
    code, out, err = _cli(["run", "--codec", "identity", "--task", f"files:{clips}", "--metric", "stft", "--out",
                           str(tmp_path / "ws2"), "--jobs", "1", "--no-report"], capsys)
    assert code == 0 and "1 failure(s) recorded" in out
    (error,) = [f["error"] for f in _failures(tmp_path / "ws2")]
    assert "c1.wav: permission denied" in error and "chmod a+r" in error and "System error" not in error


def test_a_float_file_of_absurd_samples_is_one_failure_row(tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    clips = tmp_path / "clips"
    clips.mkdir()
    sf.write(clips / "ok.wav", 0.1 * np.sin(np.arange(8000) * 0.05).astype(np.float32), 8000)
    sf.write(clips / "loud.wav", 1e6 * np.sin(np.arange(8000) * 0.05).astype(np.float32), 8000, subtype="FLOAT")
    code, out, err = _cli(["run", "--codec", "identity", "--task", f"files:{clips}", "--metric", "mel", "--out",
                           str(tmp_path / "ws"), "--jobs", "1", "--no-report"], capsys)
    assert code == 0 and "1 failure(s) recorded" in out
    (error,) = [f["error"] for f in _failures(tmp_path / "ws")]
    assert error == "item loud: peak 1.0e+06: a float file must hold samples in [-1, 1]; normalise it"


def test_max_seconds_is_checked_and_passed_to_the_runner(tmp_path, capsys, monkeypatch):
    import bench.runner

    code, _, err = _cli(["run", "--codec", "identity", "--max-seconds", "0", "--out", str(tmp_path / "ws")], capsys)
    assert code == 2 and "--max-seconds: must be a positive number of seconds, got 0" in _one_error_line(err)
    seen = {}

    def fake_run(**kwargs):
        seen.update(kwargs)
        raise ValueError("stop here")

    monkeypatch.setattr(bench.runner, "run", fake_run)
    code, _, err = _cli(["run", "--codec", "identity", "--task", "demo-speech", "--max-seconds", "1.5", "--out",
                         str(tmp_path / "ws")], capsys)
    assert code == 2 and seen["max_seconds"] == 1.5
    _cli(["run", "--codec", "identity", "--task", "demo-speech", "--out", str(tmp_path / "ws")], capsys)
    assert seen["max_seconds"] is None  # the runner's default applies (bench.audio.DEFAULT_MAX_SECONDS)


def test_items_longer_than_max_seconds_are_failure_rows_that_say_what_to_do(tmp_path, capsys):
    clips, _ = _tiny_workspace(tmp_path, capsys)  # two clips of 0.5 s
    code, out, err = _cli(["run", "--codec", "identity", "--task", f"files:{clips}", "--metric", "mel", "--out",
                           str(tmp_path / "ws2"), "--jobs", "1", "--no-report", "--max-seconds", "0.3"], capsys)
    assert code == 0 and "2 failure(s) recorded" in out
    errors = [f["error"] for f in _failures(tmp_path / "ws2")]
    assert len(errors) == 2 and all("is 0.5 s long; bench scores items up to 0.3 s: split it" in e and
                                    "raise the limit with --max-seconds" in e for e in errors), errors


def test_weights_fetch_of_unpinned_files_refuses_in_one_line(tmp_path, capsys, monkeypatch):
    import huggingface_hub

    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "home"))

    def no_network(*args, **kwargs):
        raise AssertionError("an unpinned fetch must not download anything")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_network)
    code, _, err = _cli(["weights", "fetch", "semanticodec", "--variant", "tokenrate_50"], capsys)
    line = _one_error_line(err)
    assert code == 2 and "no pinned checksum for haoheliu/SemantiCodec" in line
    assert "rerun with --trust-unpinned to download revision main and record its digests in" in line


# -- interrupts: Ctrl-C and SIGTERM take one path ------------------------------------------------------------

def test_interrupt_prints_how_many_items_are_stored(tmp_path, capsys, monkeypatch):
    import bench.runner

    def interrupted_run(progress=None, **kwargs):
        bar = progress(10, "items")
        for _ in range(3):
            bar.update(1)
        raise KeyboardInterrupt

    monkeypatch.setattr(bench.runner, "run", interrupted_run)
    code, _, err = _cli(["run", "--codec", "identity", "--task", "demo-speech", "--out", str(tmp_path / "ws")], capsys)
    assert code == 130
    assert err.strip().splitlines()[-1] == ("bench: interrupted: 3 items finished are stored; run the same command "
                                            "again to resume")


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_a_signalled_run_stops_cleanly_and_keeps_what_it_finished(signame, tmp_path):
    import re
    import signal
    import subprocess
    import sys
    import time

    import numpy as np
    import soundfile as sf

    from bench.store import ResultStore

    clips = tmp_path / "clips"
    clips.mkdir()
    for i in range(40):  # several seconds of work: the signal lands mid-run
        sf.write(clips / f"c{i:03d}.wav", 0.1 * np.sin(np.arange(1600) * (0.02 + 1e-4 * i)).astype(np.float32), 8000)
    cmd = [sys.executable, "-m", "bench.cli", "run", "--codec", "identity", "--task", f"files:{clips}", "--metric",
           "mel", "--out", str(tmp_path / "ws"), "--jobs", "1", "--no-report"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cache = tmp_path / "ws" / "cache"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:  # into the items: decoded outputs appear
        if cache.is_dir() and sum(1 for p in cache.rglob("*") if p.is_file()) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(getattr(signal, signame))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err
    match = re.fullmatch(r"bench: interrupted: (\d+) items? finished (?:is|are) stored; run the same command again "
                         r"to resume", err.strip().splitlines()[-1])
    assert match, err
    store = ResultStore(tmp_path / "ws", readonly=True)  # what it says is stored is there, readable
    try:
        coded = store.item_counts(f"files:{clips}")
    finally:
        store.close()
    # two outputs on disk mean the first item was recorded (jobs=1 takes items in turn)
    assert 1 <= int(match.group(1)) <= len(coded) < 40


def test_an_unknown_metric_option_gets_one_line_naming_the_metric_the_option_and_its_options(tmp_path, capsys):
    # once a TypeError traceback ("PESQ.__init__() got an unexpected keyword argument 'foo'"), where a codec's
    # unknown option got one line
    import bench

    with pytest.raises(ValueError, match=r"metric 'pesq' has no option 'foo'; accepted options: band\.$"):
        bench.load_metric("pesq:foo=1")
    with pytest.raises(ValueError, match=r"metric 'stoi' has no option 'bnd'; accepted options: extended\.$"):
        bench.load_metric("stoi", bnd="nb")
    with pytest.raises(ValueError, match=r"metric 'warpq' has no option 'x'; accepted options: \(none\)\.$"):
        bench.load_metric("warpq:x=2")
    clips = tmp_path / "clips"
    clips.mkdir()
    import numpy as np
    import soundfile as sf

    sf.write(clips / "a.wav", 0.1 * np.sin(np.arange(16000) * 0.05).astype(np.float32), 16000)
    code, _, err = _cli(["run", "--codec", "identity", "--task", f"files:{clips}", "--metric", "pesq:foo=1",
                         "--out", str(tmp_path / "ws"), "--jobs", "1", "--no-report"], capsys)
    assert code == 2
    line = _one_error_line(err)
    assert line.startswith("bench: error:") and "metric 'pesq' has no option 'foo'; accepted options: band." in line
