"""Kaldi fbank in torch vs an independent numpy restatement of Kaldi's compute-fbank-feats.

(Against torchaudio.compliance.kaldi.fbank itself, run outside the repo: max abs error 0.0 on random
signals of 400..163840 samples, and 0.0 for the whole official `extract_kaldi_fbank_feature` pipeline.)
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench.codecs.semanticodec.fbank import (
    AUDIOMAE_MEAN,
    AUDIOMAE_STD,
    kaldi_fbank,
    mel_banks,
    n_segments,
    semanticodec_fbank,
)


def np_mel_banks(num_bins=128, n_fft=512, sr=16000.0, low=20.0, high=8000.0):
    mel = lambda f: 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)  # noqa: E731
    lo, hi = mel(low), mel(high)
    delta = (hi - lo) / (num_bins + 1)
    fft_mel = mel(np.arange(n_fft // 2) * sr / n_fft)
    banks = np.zeros((num_bins, n_fft // 2 + 1))
    for m in range(num_bins):
        left, center, right = lo + m * delta, lo + (m + 1) * delta, lo + (m + 2) * delta
        for k, fm in enumerate(fft_mel):
            if left < fm < right:
                banks[m, k] = (fm - left) / (center - left) if fm <= center else (right - fm) / (right - center)
    return banks


def np_fbank(x: np.ndarray) -> np.ndarray:
    """Kaldi: 25 ms / 10 ms frames (snip edges), DC removal, pre-emphasis 0.97, Hann, |rfft(512)|^2, mel, log."""
    x = x.astype(np.float64)
    win, hop, n_fft = 400, 160, 512
    m = 1 + (len(x) - win) // hop
    banks = np_mel_banks()
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / (win - 1))
    out = np.zeros((m, 128))
    for i in range(m):
        f = x[i * hop: i * hop + win].copy()
        f -= f.mean()
        f = f - 0.97 * np.concatenate([f[:1], f[:-1]])
        spec = np.abs(np.fft.rfft(f * hann, n_fft)) ** 2
        out[i] = np.log(np.maximum(banks @ spec, np.finfo(np.float32).eps))
    return out


def test_mel_banks_match_formula():
    np.testing.assert_allclose(mel_banks().numpy(), np_mel_banks(), atol=2e-5)
    assert mel_banks().shape == (128, 257)


@pytest.mark.parametrize("n", [400, 401, 4321])
def test_kaldi_fbank_matches_numpy(n):
    rng = np.random.default_rng(n)
    x = (0.3 * rng.standard_normal((2, n))).astype(np.float32)
    ours = kaldi_fbank(torch.from_numpy(x)).numpy()
    assert ours.shape == (2, 1 + (n - 400) // 160, 128)
    for i in range(2):
        np.testing.assert_allclose(ours[i], np_fbank(x[i]), atol=2e-4, rtol=0)


def test_kaldi_fbank_floor_and_errors():
    # silence: every bin is log(float eps)
    out = kaldi_fbank(torch.zeros(1, 800))
    assert torch.allclose(out, torch.full_like(out, math.log(np.finfo(np.float32).eps)))
    with pytest.raises(ValueError, match="shorter"):
        kaldi_fbank(torch.zeros(1, 399))
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        kaldi_fbank(torch.zeros(800))


def test_segments_quirk():
    assert n_segments(1) == 1
    assert n_segments(163839) == 1
    assert n_segments(163840) == 2  # an exact multiple gains a silent segment (official)
    assert n_segments(400000) == 3


def test_semanticodec_fbank_items_as_if_alone():
    rng = np.random.default_rng(0)
    lens = [5000, 170000]
    w = torch.from_numpy((0.1 * rng.standard_normal((2, max(lens)))).astype(np.float32))
    both, segs = semanticodec_fbank(w, lens)
    assert segs == [1, 2] and both.shape == (2, 2048, 128)
    for i, n in enumerate(lens):
        alone, s = semanticodec_fbank(w[i: i + 1, :n], [n])
        torch.testing.assert_close(both[i, : s[0] * 1024], alone[0], rtol=0, atol=0)
    # restate item 0 in numpy: pad to 163840, centre, fbank, 2 zero rows, normalise
    x = np.zeros(163840)
    x[:5000] = w[0, :5000].numpy()
    ref = np.zeros((1024, 128))
    ref[:1022] = np_fbank((x - x.mean()).astype(np.float32))
    ref = (ref - AUDIOMAE_MEAN) / (2 * AUDIOMAE_STD)
    np.testing.assert_allclose(both[0, :1024].numpy(), ref, atol=2e-4, rtol=0)
    # the last two rows are the official zero padding, normalised
    np.testing.assert_allclose(both[0, 1022:1024].numpy(), -AUDIOMAE_MEAN / (2 * AUDIOMAE_STD), rtol=1e-6)
