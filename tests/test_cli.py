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
