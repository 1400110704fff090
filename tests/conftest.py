from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


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
