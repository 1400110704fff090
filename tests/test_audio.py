"""bench.audio: integer PCM scaled, time-first layouts refused, absurd peaks and over-long items refused,
and an unreadable file named with its reason (never libsndfile's "System error.")."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf
import torch

from bench import audio as au


def test_int16_is_scaled_by_1_over_32768():
    pcm = np.array([[-32768, 0, 16384, 32767]], dtype=np.int16)
    x = au.as_float32(pcm)
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x, [[-1.0, 0.0, 0.5, 32767 / 32768]])
    np.testing.assert_array_equal(au.as_float32(torch.from_numpy(pcm)), x)  # a tensor the same way
    np.testing.assert_array_equal(au.as_float32(np.array([0, 128, 255], np.uint8)), [-1.0, 0.0, 127 / 128])
    assert au.as_float32(np.array([2 ** 30], np.int32))[0] == 0.5
    with pytest.raises(au.AudioError, match="complex"):
        au.as_float32(torch.zeros(4, dtype=torch.complex64))


def test_to_channels_scales_integer_pcm_before_mixing():
    pcm = np.array([[16384, -16384, 8192], [16384, 16384, 8192]], dtype=np.int16)
    mono = au.to_channels(pcm, 1)
    assert mono.dtype == np.float32
    np.testing.assert_allclose(mono, [[0.5, 0.0, 0.25]])


def test_to_channels_refuses_a_time_first_array():
    stereo_tc = np.zeros((48000, 2), dtype=np.float32)  # [T, C]: 48000 "channels" of 2 samples
    with pytest.raises(au.AudioError, match=r"looks like \[T, C\].*audio\.T"):
        au.to_channels(stereo_tc, 1)
    assert au.to_channels(stereo_tc.T, 1).shape == (1, 48000)
    assert au.to_channels(np.zeros(100, np.float32), 2).shape == (2, 100)  # mono [T] is one channel


def test_check_refuses_absurd_peaks_with_what_to_do():
    x = np.full((1, 16000), 1e6, dtype=np.float32)
    with pytest.raises(au.AudioError) as err:
        au.check(x, 16000, name="item loud")
    assert str(err.value) == "item loud: peak 1.0e+06: a float file must hold samples in [-1, 1]; normalise it"
    au.check(np.full((1, 16000), 3.0, dtype=np.float32), 16000)  # loud but plausible: kept (codecs clip it)


def test_check_refuses_integer_samples_and_time_first_arrays():
    with pytest.raises(au.AudioError, match="int16 samples.*1/32768"):
        au.check(np.full((1, 16000), 1000, dtype=np.int16), 16000)
    with pytest.raises(au.AudioError, match=r"looks like \[T, C\]"):
        au.check(np.full((16000, 2), 0.1, dtype=np.float32), 16000)
    with pytest.raises(au.AudioError, match=r"expected audio \[C, T\]"):
        au.check(np.full((1, 2, 16000), 0.1, dtype=np.float32), 16000)


def test_check_enforces_max_seconds():
    x = np.full((2, 8000 * 3), 0.1, dtype=np.float32)
    au.check(x, 8000, max_seconds=3)
    with pytest.raises(au.AudioError) as err:
        au.check(x, 8000, max_seconds=2.5, name="item long")
    assert str(err.value) == ("item long is 3 s long; bench scores items up to 2.5 s: split it (dataset tasks "
                              "segment long files) or raise the limit with --max-seconds")
    assert au.DEFAULT_MAX_SECONDS == 600


def test_load_refuses_a_long_file_from_its_header(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, np.full(8000 * 3, 0.1, dtype=np.float32), 8000)
    assert au.duration(path) == 3.0
    with pytest.raises(au.AudioError, match="long.wav is 3 s long; bench scores items up to 2 s"):
        au.load(path, max_seconds=2)
    audio, sr = au.load(path, max_seconds=3)
    assert audio.shape == (1, 24000) and sr == 8000


def test_a_float_file_of_huge_samples_loads_as_it_is_and_fails_the_check(tmp_path):
    path = tmp_path / "loud.wav"
    sf.write(path, np.full(8000, 1e6, dtype=np.float32), 8000, subtype="FLOAT")
    audio, sr = au.load(path)
    with pytest.raises(au.AudioError, match="peak 1.0e"):
        au.check(audio, sr)


def test_an_unreadable_file_says_permission_denied(tmp_path, monkeypatch):
    path = tmp_path / "locked.wav"
    sf.write(path, np.full(800, 0.1, dtype=np.float32), 8000)
    real_open = os.open

    def deny(p, flags, *args, **kwargs):  # what a file without read permission gives (tests may run as root)
        if os.fspath(p) == os.fspath(path):
            raise PermissionError(13, "Permission denied", os.fspath(p))
        return real_open(p, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)
    with pytest.raises(au.AudioError) as err:
        au.load(path)
    assert "permission denied" in str(err.value) and "chmod a+r" in str(err.value)
    assert "System error" not in str(err.value)


def _tones(freqs: tuple[float, ...], sr: int, n: int) -> np.ndarray:
    t = np.arange(n) / sr
    return sum(0.4 * np.sin(2 * np.pi * f * t + 0.3 + k) for k, f in enumerate(freqs))


def test_resample_gives_the_band_limited_signal_sampled_at_the_new_rate():
    """Known answers from sampling theory, not from soxr: the metrics' and the runner's expected values elsewhere
    are computed through au.resample itself, so this is what tells a good resampler from a poor one there."""
    # down 48 -> 16 kHz: tones below the new Nyquist (7 kHz is 87.5 % of it) are the same tones sampled at 16 kHz;
    # a tone above it is removed (a plain x[::3] would alias 10 kHz to 6 kHz at full amplitude)
    x = np.stack([_tones((1000.0, 7000.0), 48000, 48000), _tones((10000.0,), 48000, 48000)]).astype(np.float32)
    y = au.resample(x, 48000, 16000)
    assert y.shape == (2, 16000) and y.dtype == np.float32
    inner = slice(200, -200)  # the filter's start-up and run-out at the edges (about 6 ms)
    np.testing.assert_allclose(y[0, inner], _tones((1000.0, 7000.0), 16000, 16000)[inner], rtol=0, atol=1e-5)
    assert np.abs(y[1, inner]).max() < 1e-5
    # up 16 -> 48 kHz: the same tones sampled at 48 kHz (nothing new appears between the samples)
    up = au.resample(_tones((1000.0, 5000.0), 16000, 16000)[None].astype(np.float32), 16000, 48000)
    assert up.shape == (1, 48000)
    np.testing.assert_allclose(up[0, 600:-600], _tones((1000.0, 5000.0), 48000, 48000)[600:-600], rtol=0, atol=1e-5)
    # lengths: the input's duration at the new rate, rounded; the same rate is the input itself
    assert au.resample(np.zeros((1, 1000), np.float32), 48000, 16000).shape == (1, 333)
    assert au.resample(np.zeros((1, 1001), np.float32), 48000, 16000).shape == (1, 334)
    assert au.resample(np.zeros((2, 1000), np.float32), 44100, 48000).shape == (2, 1088)
    assert au.resample(x, 48000, 48000) is x


def test_fit_length_trims_the_end_and_pads_zeros_after_and_mono_copies_up():
    # known answers: the runner's expected values elsewhere go through fit_length and to_channels themselves
    x = np.array([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]], dtype=np.float32)
    np.testing.assert_array_equal(au.fit_length(x, 3), [[1, 2, 3], [5, 6, 7]])
    padded = au.fit_length(x, 6)
    np.testing.assert_array_equal(padded, [[1, 2, 3, 4, 0, 0], [5, 6, 7, 8, 0, 0]])
    assert padded.dtype == np.float32 and au.fit_length(x, 4) is x
    np.testing.assert_array_equal(au.to_channels(np.array([0.25, -0.5], np.float32), 2), [[0.25, -0.5], [0.25, -0.5]])
