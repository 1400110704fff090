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
