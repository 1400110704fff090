from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

# -- CI: no unexpected skips ------------------------------------------------------------------------------
#
# Every dependency in pyproject.toml is required, so its tests import it and fail when it is missing. The only
# skips left are for what a user's machine may lack (Chromium for the listening-page test, a PyTorch build
# without oneDNN). CI has all of them, so under BENCH_CI=1 (set by .ci/run) a skip whose reason is not listed
# below fails the session and is printed: a broken install can never pass green.
#
# Each entry: (the skip reason, exactly as the test gives it, why CI may skip it). Considered and not listed:
# Chromium (.ci/run installs it), the SemantiCodec key dump (committed in tests/data/reference), oneDNN (the
# PyPI torch wheels CI installs have it, and those code paths are what SemantiCodec runs on a CPU).
ALLOWED_SKIPS: tuple[tuple[str, str], ...] = ()

_SKIPPED: list[tuple[str, str]] = []  # (node id, reason) of every skip in this session


def _record_skip(report) -> None:
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    _SKIPPED.append((report.nodeid, reason.removeprefix("Skipped: ")))


def pytest_sessionstart(session):
    _SKIPPED.clear()


def pytest_runtest_logreport(report):
    _record_skip(report)


def pytest_collectreport(report):  # a whole module skipped at import
    _record_skip(report)


def unexpected_skips() -> list[tuple[str, str]]:
    """(node id, reason) of every skip so far whose reason is not in ALLOWED_SKIPS."""
    allowed = {reason for reason, _why in ALLOWED_SKIPS}
    return [(node, reason) for node, reason in _SKIPPED if reason not in allowed]


def _ci() -> bool:
    return os.environ.get("BENCH_CI") == "1"


def pytest_sessionfinish(session, exitstatus):
    if _ci() and unexpected_skips() and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    bad = unexpected_skips() if _ci() else []
    if bad:
        terminalreporter.section("unexpected skips (BENCH_CI=1)", red=True, bold=True)
        for node, reason in bad:
            terminalreporter.line(f"SKIPPED {node}: {reason}")
        terminalreporter.line(f"{len(bad)} skipped test(s) that CI must run: install what they need, or add the "
                              "reason to ALLOWED_SKIPS in tests/conftest.py with why CI may skip it")


def tone(seconds: float, sr: int, freq: float = 440.0, amp: float = 0.5, seed: int = 0) -> np.ndarray:
    """A harmonic tone with a little noise, float32 [T]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = sum(amp / k * np.sin(2 * np.pi * freq * k * t) for k in range(1, 5))
    return (x + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture
def audio_dir(tmp_path: Path) -> Path:
    """A folder of good and bad files, as a user's files:PATH task would look."""
    d = tmp_path / "clips"
    d.mkdir()
    for i, (sr, freq) in enumerate([(16000, 220), (22050, 330), (44100, 440), (16000, 550)]):
        sf.write(d / f"good{i}.wav", tone(0.6, sr, freq, seed=i), sr)
    sf.write(d / "stereo.flac", np.stack([tone(0.5, 48000, 300), tone(0.5, 48000, 600)], axis=1), 48000)
    (d / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")
    sf.write(d / "silent.wav", np.zeros(8000, np.float32), 16000)
    sf.write(d / "short.wav", tone(0.02, 16000), 16000)
    bad = tone(0.5, 16000)
    bad[100] = np.nan
    sf.write(d / "nan.wav", bad, 16000, subtype="FLOAT")
    sf.write(d / "empty.wav", np.zeros((0,), np.float32), 16000)
    (d / "transcripts.tsv").write_text("good0\thello world\ngood1.wav\tsecond clip\n")
    return d
