"""Spectral distances (bench/metrics/spectral.py) against descript-audiotools, a numpy restatement and analytic answers.

- descript-audiotools itself: its MultiScaleSTFTLoss / MelSpectrogramLoss numbers on committed inputs, made in a
  separate environment by tests/data/reference/make_spectral.py (see the README there); nothing here ran bench.
- The numpy restatement below frames reflect-padded signals by hand, windows them with scipy's periodic Hann
  and uses numpy.fft.rfft and librosa's mel filterbank: nothing is shared with the torch implementation.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import librosa
import numpy as np
import pytest
import scipy.signal

from bench.metrics import METRICS, load_metric
from bench.metrics.base import MetricError
from bench.metrics.spectral import (
    MEL,
    MEL_DAC,
    STFT,
    hann_window,
    mel_distance,
    mel_distance_dac,
    slaney_mel_filterbank,
    spectral_terms,
    stft_distance,
)

SR = 16000
EPS = 1e-5
CONFIGS = {"stft": STFT, "mel": MEL, "mel-dac": MEL_DAC}
FUNCS = {"stft": stft_distance, "mel": mel_distance, "mel-dac": mel_distance_dac}


# -- independent numpy restatement --------------------------------------------------------------


def np_magnitude(x: np.ndarray, w: int) -> np.ndarray:
    """x [T] -> |STFT| [w//2+1, frames]: reflect pad w//2, frame at hop w//4, periodic Hann, rfft."""
    hop = w // 4
    padded = np.pad(x, w // 2, mode="reflect")
    n_frames = 1 + (len(padded) - w) // hop
    frames = np.stack([padded[i * hop: i * hop + w] for i in range(n_frames)])
    win = scipy.signal.get_window("hann", w)
    return np.abs(np.fft.rfft(frames * win, axis=-1)).T


def np_librosa_mel(sr: int, w: int, n_mels: int) -> np.ndarray:
    return librosa.filters.mel(sr=sr, n_fft=w, n_mels=n_mels, dtype=np.float64)


def np_terms(ref: np.ndarray, rec: np.ndarray, sr: int, cfg) -> list[tuple[float, float]]:
    """ref, rec [C, T] -> per resolution (log term, mag term); means over channels, bins and frames."""
    out = []
    for i, w in enumerate(cfg.window_lengths):
        a = np.stack([np_magnitude(c, w) for c in ref])
        b = np.stack([np_magnitude(c, w) for c in rec])
        if cfg.n_mels is not None:
            fb = np_librosa_mel(sr, w, cfg.n_mels[i])
            a, b = fb @ a, fb @ b
        la = np.log10(np.maximum(a, EPS) ** cfg.pow)
        lb = np.log10(np.maximum(b, EPS) ** cfg.pow)
        out.append((float(np.mean(np.abs(la - lb))), float(np.mean(np.abs(a - b)))))
    return out


def np_distance(ref, rec, sr, cfg) -> float:
    return sum(cfg.log_weight * lg + cfg.mag_weight * mg for lg, mg in np_terms(ref, rec, sr, cfg))


def signal_pair(seed: int = 0, channels: int = 1, n: int = 8000, noise: float = 0.02):
    """A speech-like-ish test pair: harmonic tone plus noise, and a noisy copy."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    ref = np.stack([0.3 * np.sin(2 * np.pi * (220 + 50 * c) * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
                    + 0.05 * rng.standard_normal(n) for c in range(channels)])
    rec = ref + noise * rng.standard_normal(ref.shape)
    return ref.astype(np.float32), rec.astype(np.float32)


# -- building blocks ----------------------------------------------------------------------------


@pytest.mark.parametrize("w", [32, 512, 2048])
def test_window_is_scipy_periodic_hann(w):
    np.testing.assert_allclose(hann_window(w), scipy.signal.get_window("hann", w), atol=1e-15)


@pytest.mark.parametrize("sr", [16000, 22050, 44100, 48000])
@pytest.mark.filterwarnings("ignore:Empty filters detected")  # 48 kHz, 32/64-sample windows: one empty filter
def test_slaney_filterbank_matches_librosa(sr):
    for cfg in (MEL, MEL_DAC):
        for w, m in zip(cfg.window_lengths, cfg.n_mels):
            ours = slaney_mel_filterbank(sr, w, m)
            assert ours.shape == (m, w // 2 + 1)
            np.testing.assert_allclose(ours, librosa.filters.mel(sr=sr, n_fft=w, n_mels=m, dtype=np.float64),
                                       rtol=1e-10, atol=1e-14)
    # fmin/fmax other than the defaults: a band crossing the 1 kHz linear/log break
    ref = librosa.filters.mel(sr=sr, n_fft=256, n_mels=40, fmin=300.0, fmax=4000.0, dtype=np.float64)
    np.testing.assert_allclose(slaney_mel_filterbank(sr, 256, 40, 300.0, 4000.0), ref, rtol=1e-10, atol=1e-14)


# -- formulas against the numpy restatement ------------------------------------------------------


@pytest.mark.parametrize("name", ["stft", "mel", "mel-dac"])
def test_matches_numpy_restatement(name):
    ref, rec = signal_pair(seed=1, channels=2, n=6000)
    cfg = CONFIGS[name]
    expected = np_terms(ref.astype(np.float64), rec.astype(np.float64), SR, cfg)
    got = spectral_terms(ref, rec, SR, cfg)
    assert [g["window"] for g in got] == list(cfg.window_lengths)
    for g, (lg, mg) in zip(got, expected):
        assert g["log"] == pytest.approx(lg, rel=1e-7, abs=1e-10)
        if cfg.mag_weight:
            assert g["mag"] == pytest.approx(mg, rel=1e-7, abs=1e-10)
    total = FUNCS[name](ref, rec, SR)
    assert total == pytest.approx(np_distance(ref.astype(np.float64), rec.astype(np.float64), SR, cfg), rel=1e-7)


def test_random_signals_match_numpy_at_other_rate():
    rng = np.random.default_rng(7)
    ref = rng.uniform(-0.5, 0.5, (1, 5000))
    rec = rng.uniform(-0.5, 0.5, (1, 5000))
    for cfg, fn in ((MEL, mel_distance), (MEL_DAC, mel_distance_dac)):
        assert fn(ref, rec, 44100) == pytest.approx(np_distance(ref, rec, 44100, cfg), rel=1e-7)


# -- known answers -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["stft", "mel", "mel-dac"])
def test_identical_is_exactly_zero(name):
    ref, _ = signal_pair(seed=2)
    assert FUNCS[name](ref, ref.copy(), SR) == 0.0
    assert load_metric(name).score(ref, ref.copy(), SR) == {name: 0.0}


@pytest.mark.parametrize("a", [0.5, 2.0, 0.25])
@pytest.mark.parametrize("name", ["stft", "mel", "mel-dac"])
def test_scaling_gives_analytic_terms(name, a):
    cfg = CONFIGS[name]
    ref, _ = signal_pair(seed=3)
    ref = 4.0 * ref.astype(np.float64)  # loud enough that DAC's 32-sample mel bands stay above the clamp
    terms = spectral_terms(ref, a * ref, SR, cfg)
    for i, (w, t) in enumerate(zip(cfg.window_lengths, terms)):
        mag = np_magnitude(ref[0], w)
        if cfg.n_mels is not None:
            mag = np_librosa_mel(SR, w, cfg.n_mels[i]) @ mag
        assert mag.min() * min(a, 1) > EPS  # nothing clamps, so the log term is exact
        assert t["log"] == pytest.approx(cfg.pow * abs(math.log10(a)), rel=1e-9)
        if cfg.mag_weight:
            assert t["mag"] == pytest.approx(abs(a - 1) * mag.mean(), rel=1e-9)
    if name == "mel-dac":  # 7 resolutions, pow 1, no linear term
        assert FUNCS[name](ref, a * ref, SR) == pytest.approx(7 * abs(math.log10(a)), rel=1e-9)


def test_silence_against_signal_follows_the_clamp():
    ref, _ = signal_pair(seed=4)
    ref = ref.astype(np.float64)
    silence = np.zeros_like(ref)
    for i, t in enumerate(spectral_terms(silence, ref, SR, STFT)):
        mag = np_magnitude(ref[0], STFT.window_lengths[i])
        # silence clamps to eps everywhere: log10(eps^2) = -10
        assert t["log"] == pytest.approx(np.mean(np.abs(2 * np.log10(np.maximum(mag, EPS)) + 10)), rel=1e-9)
        assert t["mag"] == pytest.approx(mag.mean(), rel=1e-9)
    # a signal far below the clamp is indistinguishable from silence in the log term
    tiny = 1e-9 * ref
    for t in spectral_terms(silence, tiny, SR, STFT):
        assert t["log"] == 0.0
        assert 0.0 < t["mag"] < 1e-6
    assert mel_distance_dac(silence, tiny, SR) == 0.0
    assert stft_distance(silence, silence, SR) == 0.0


@pytest.mark.parametrize("name", ["stft", "mel", "mel-dac"])
def test_louder_error_gives_larger_distance(name):
    values = []
    for noise in (0.001, 0.01, 0.1):
        ref, rec = signal_pair(seed=5, noise=noise)
        values.append(FUNCS[name](ref, rec, SR))
    assert 0 < values[0] < values[1] < values[2]


@pytest.mark.parametrize("name", ["stft", "mel", "mel-dac"])
def test_stereo_and_batch_average_like_audiotools(name):
    ref, rec = signal_pair(seed=6, channels=2, n=4000)
    fn = FUNCS[name]
    per_channel = [fn(ref[c: c + 1], rec[c: c + 1], SR) for c in range(2)]
    assert per_channel[0] != pytest.approx(per_channel[1], rel=1e-3)  # the average is a real test
    assert fn(ref, rec, SR) == pytest.approx(np.mean(per_channel), rel=1e-10)
    # [B, C, T]: mean over items too (torch L1Loss over the whole batch)
    ref2, rec2 = signal_pair(seed=8, channels=2, n=4000)
    batch = fn(np.stack([ref, ref2]), np.stack([rec, rec2]), SR)
    assert batch == pytest.approx((fn(ref, rec, SR) + fn(ref2, rec2, SR)) / 2, rel=1e-10)


# -- descript-audiotools on committed inputs (tests/data/reference/, made by make_spectral.py there) ------------

REFERENCE = Path(__file__).parent / "data" / "reference"
AUDIOTOOLS = json.loads((REFERENCE / "spectral_audiotools.json").read_text())
INPUTS = np.load(REFERENCE / "spectral_inputs.npz")
# audiotools works in float32 (AudioSignal casts its audio, librosa's mel bank is float32); bench in float64.
REL = 1e-5
# In the silent gap most bins sit on the 1e-5 clamp, where float32 rounding of the STFT moves log10 terms: bench
# differs from audiotools by 2.0e-5 (stft total) there, and bench's own formula run in float32 gave audiotools'
# value to 1e-8, so the difference is audiotools' precision, not a formula difference.
REL_AT_CLAMP = {"silent_gap_16k": 5e-5}


@pytest.mark.parametrize("name", ["stft", "mel", "mel-dac"])
@pytest.mark.parametrize("case", sorted(AUDIOTOOLS["cases"]))
def test_matches_audiotools(case, name):
    entry = AUDIOTOOLS["cases"][case]
    ref, rec, sr = INPUTS[f"{case}_ref"], INPUTS[f"{case}_rec"], entry["sample_rate"]
    assert list(ref.shape) == entry["shape"] and ref.dtype == np.float32
    rel = REL_AT_CLAMP.get(case, REL)
    expected = entry[name]
    assert FUNCS[name](ref, rec, sr) == pytest.approx(expected["total"], rel=rel)
    cfg = CONFIGS[name]
    terms = spectral_terms(ref, rec, sr, cfg)
    assert [(t["window"], t["n_mels"]) for t in terms] == [(w["window"], w["n_mels"]) for w in expected["per_window"]]
    for got, want in zip(terms, expected["per_window"]):
        assert got["log"] == pytest.approx(want["log"], rel=rel)
        if cfg.mag_weight:
            assert got["mag"] == pytest.approx(want["mag"], rel=rel)
    if ref.shape[0] == 1:  # the metric class on one item [C, T] at its own rate gives the same number
        metric = load_metric(f"{name}:sample_rate={sr}")
        assert metric.score(ref[0], rec[0], sr)[name] == pytest.approx(expected["total"], rel=rel)


def test_audiotools_reference_is_what_the_readme_says():
    """The committed numbers name the versions that made them and cover every preset on every input."""
    assert AUDIOTOOLS["versions"]["descript-audiotools"] and AUDIOTOOLS["versions"]["torch"]
    assert sorted(INPUTS.files) == sorted(f"{c}_{s}" for c in AUDIOTOOLS["cases"] for s in ("ref", "rec"))
    assert len(AUDIOTOOLS["cases"]) >= 6
    for entry in AUDIOTOOLS["cases"].values():
        assert len(entry["mel-dac"]["per_window"]) == 7 and all(w["mag"] > 0 for w in entry["mel"]["per_window"])
    assert "make_spectral.py" in (REFERENCE / "README.md").read_text()


# -- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["stft", "mel", "mel-dac"])
def test_bad_input_raises_metric_error(name):
    ref, rec = signal_pair(seed=9)
    fn, metric = FUNCS[name], load_metric(name)
    with pytest.raises(MetricError, match="differ in shape"):
        fn(ref, rec[:, :-1], SR)
    with pytest.raises(MetricError, match="differ in shape"):
        metric.score(ref, rec[:, :-1], SR)
    with pytest.raises(MetricError, match="differ in shape"):
        metric.score(ref, rec[:, :-1], 48000)  # checked before resampling too
    bad = rec.copy()
    bad[0, 100] = np.nan
    with pytest.raises(MetricError, match="NaN"):
        fn(ref, bad, SR)
    with pytest.raises(MetricError, match="NaN"):
        metric.score(bad, ref, 22050)
    bad[0, 100] = np.inf
    with pytest.raises(MetricError, match="NaN or Inf"):
        metric.score(ref, bad, SR)
    with pytest.raises(MetricError, match="too short"):
        fn(ref[:, :1000], rec[:, :1000], SR)


# -- metric classes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["stft", "mel", "mel-dac"])
def test_metric_meta_and_identity(name):
    metric = load_metric(name)
    entry = METRICS.entry(name)
    assert metric.meta.name == name
    assert metric.meta.sample_rate == entry.meta["sample_rate"] == 16000
    assert metric.meta.higher_is_better is False
    assert metric.meta.definition and metric.meta.unit
    assert metric.identity() == f"{name}:sample_rate=16000"
    other = load_metric(f"{name}:sample_rate=44100")
    assert other.meta.sample_rate == 44100 and other.rate_for(16000) == 44100
    assert other.identity() == f"{name}:sample_rate=44100"
    assert load_metric(name, sample_rate=22050).identity() == f"{name}:sample_rate=22050"
    with pytest.raises(ValueError, match="sample_rate"):
        load_metric(f"{name}:window=512")
    with pytest.raises(ValueError, match="positive"):
        load_metric(name, sample_rate=-1)


def test_score_resamples_to_the_metric_rate():
    from bench.audio import resample

    ref, rec = signal_pair(seed=10, n=12000)  # at 16 kHz; pretend it arrives at 48 kHz
    ref48, rec48 = resample(ref, SR, 48000), resample(rec, SR, 48000)
    metric = load_metric("mel")
    got = metric.score(ref48, rec48, 48000)["mel"]
    assert got == pytest.approx(mel_distance(resample(ref48, 48000, SR), resample(rec48, 48000, SR), SR), rel=1e-12)
    assert got != pytest.approx(mel_distance(ref48, rec48, 48000), rel=1e-3)  # the rate matters
    assert load_metric("mel:sample_rate=48000").score(ref48, rec48, 48000)["mel"] == pytest.approx(
        mel_distance(ref48, rec48, 48000), rel=1e-12)


def test_score_accepts_torch_tensors():
    import torch

    ref, rec = signal_pair(seed=11)
    metric = load_metric("stft")
    got = metric.score(torch.from_numpy(ref), torch.from_numpy(rec), SR)["stft"]
    assert got == pytest.approx(stft_distance(ref, rec, SR), rel=1e-12)
    assert metric.score(torch.from_numpy(ref), torch.from_numpy(rec), 8000)["stft"] > 0
