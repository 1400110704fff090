"""SI-SDR, PESQ, STOI/ESTOI: closed forms, known maxima, degradations, bad input."""

from __future__ import annotations

import math

import numpy as np
import pesq  # noqa: F401  (required dependencies: a missing one is an error, never a skip)
import pystoi  # noqa: F401
import pytest
from scipy.signal import butter, sosfiltfilt

from bench.metrics import METRICS, load_metric
from bench.metrics.base import MetricError
from bench.metrics.signal import ESTOI, PESQ, SISDR, STOI, si_sdr
from bench.tasks.base import Item

SR = 16000


def voice(sr: int = SR, seconds: float = 3.0) -> np.ndarray:
    """A voiced, syllable-modulated harmonic signal `[1, T]` (speech-like enough for PESQ's VAD and STOI)."""
    t = np.arange(int(sr * seconds)) / sr
    phase = 2 * np.pi * np.cumsum(120 + 40 * np.sin(2 * np.pi * 0.5 * t)) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 40))
    x = x * np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None) ** 0.5
    return (0.3 * x / np.abs(x).max()).astype(np.float32)[None]


def lowpass(x: np.ndarray, cutoff: float, sr: int = SR) -> np.ndarray:
    return sosfiltfilt(butter(8, cutoff, fs=sr, output="sos"), x).astype(np.float32)


def noisy(x: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    return (x + sigma * np.random.default_rng(seed).standard_normal(x.shape)).astype(np.float32)


# -- SI-SDR ----------------------------------------------------------------------------------------------


def test_sisdr_closed_form():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal(8000)
    ref -= ref.mean()
    noise = rng.standard_normal(8000)
    noise -= noise.mean()
    noise -= ref * (noise @ ref) / (ref @ ref)  # orthogonal to the reference
    noise *= np.sqrt(0.1 * (ref @ ref) / (noise @ noise))  # power 10 dB below the reference
    for a in (1.0, 0.25, 3.0):
        rec = a * ref + noise
        expected = 10 * np.log10(a**2 * (ref @ ref) / (noise @ noise))
        assert si_sdr(ref, rec) == pytest.approx(expected, abs=1e-9)
    # scale invariance holds exactly for a scaled reconstruction; a DC offset is removed first
    assert si_sdr(ref, 2.0 * ref + 2.0 * noise) == pytest.approx(si_sdr(ref, ref + noise), abs=1e-9)
    assert si_sdr(ref + 0.5, ref + noise - 0.3) == pytest.approx(10.0, abs=1e-9)


def test_sisdr_is_the_same_to_the_last_digit_whatever_the_blas_thread_count():
    # BLAS splits a long dot product by thread: np.dot gave 20.00335116709737 on 1 thread, ...378 on 2
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    ref = rng.standard_normal(480_000)
    rec = ref + 0.1 * rng.standard_normal(480_000)
    values = []
    for threads in (1, 2, 4):
        with threadpool_limits(threads):
            values.append(si_sdr(ref, rec))
    assert values[0] == values[1] == values[2]
    # and it is the correctly rounded formula (math.fsum), computed independently here
    r, d = ref - ref.mean(), rec - rec.mean()
    alpha = math.fsum((d * r).tolist()) / math.fsum((r * r).tolist())
    t, n = alpha * r, d - alpha * r
    eps = np.finfo(np.float64).eps
    assert values[0] == float(10 * np.log10((math.fsum((t * t).tolist()) + eps) / (math.fsum((n * n).tolist()) + eps)))


def test_sisdr_metric_channels_and_errors():
    m = load_metric("sisdr")
    assert m.meta.sample_rate is None and m.meta.higher_is_better and m.meta.unit == "dB"
    x = voice()
    y = noisy(x, 0.05)
    stereo_ref = np.concatenate([x, x])
    stereo_rec = np.concatenate([y, x])
    got = m.score(stereo_ref, stereo_rec, SR)["sisdr"]
    assert got == pytest.approx((si_sdr(x[0], y[0]) + si_sdr(x[0], x[0])) / 2)
    assert m.score(x, x, SR)["sisdr"] > 100  # identity: very large but finite
    with pytest.raises(MetricError, match="silent"):
        m.score(np.zeros_like(x), x, SR)
    with pytest.raises(MetricError, match="differ in shape"):
        m.score(x, x[:, :-10], SR)


# -- PESQ ------------------------------------------------------------------------------------------------


def test_pesq_identity_max_and_degradations():
    x = voice()
    wb = load_metric("pesq")
    assert wb.meta.sample_rate == 16000 and wb.identity() == "pesq"
    ident = wb.score(x, x, SR)["pesq"]
    assert ident == pytest.approx(4.644, abs=0.01)  # the top of the P.862.2 mapping
    low = wb.score(x, lowpass(x, 1000), SR)["pesq"]
    bad = wb.score(x, noisy(x, 0.05), SR)["pesq"]
    assert ident > low > bad >= 1.0
    nb = load_metric("pesq:band=nb")
    assert nb.meta.sample_rate == 8000 and nb.identity() == "pesq:band=nb"
    assert nb.score(x, x, SR)["pesq"] == pytest.approx(4.549, abs=0.01)  # P.862.1 mapping maximum
    assert nb.score(x, noisy(x, 0.05), SR)["pesq"] < 2.5


def test_pesq_bad_input():
    m = PESQ()
    x = voice()
    with pytest.raises(MetricError, match="silent"):
        m.score(x, np.zeros_like(x), SR)
    with pytest.raises(MetricError, match="BufferTooShort"):
        m.score(x[:, :3000], x[:, :3000], SR)
    with pytest.raises(MetricError, match="band must be"):
        PESQ(band="fullband")


# -- STOI / ESTOI ----------------------------------------------------------------------------------------


def test_stoi_estoi():
    x = voice()
    stoi, estoi = load_metric("stoi"), load_metric("estoi")
    assert stoi.key == "stoi" and estoi.key == "estoi" and estoi.identity() == "estoi"
    assert load_metric("stoi:extended=true").key == "estoi"
    for m in (stoi, estoi):
        ident = m.score(x, x, SR)[m.key]
        mild = m.score(x, noisy(x, 0.05), SR)[m.key]
        heavy = m.score(x, noisy(x, 0.2), SR)[m.key]
        assert ident == pytest.approx(1.0, abs=1e-6)
        assert ident > mild > heavy
    # ESTOI punishes a 1 kHz low-pass much more than STOI does
    assert estoi.score(x, lowpass(x, 1000), SR)["estoi"] < stoi.score(x, lowpass(x, 1000), SR)["stoi"] - 0.2


def test_pesq_stoi_estoi_score_other_rates_at_their_own():
    # Handed 48 kHz audio, each resamples to its own rate first: the same numbers as the 16 kHz pair (to the
    # precision of a 16 -> 48 -> 16 kHz round trip). A degraded pair, since identity scores the maximum at any rate
    # (audio passed on at 48 kHz as if it were 16 kHz gives STOI 0.68 instead of 0.85, PESQ 2.98 instead of 3.30).
    from bench import audio as au

    x = voice()
    for m, y, tol in ((load_metric("stoi"), noisy(x, 0.05), 1e-4), (load_metric("estoi"), noisy(x, 0.05), 1e-4),
                      (load_metric("pesq"), lowpass(x, 2000), 0.01), (load_metric("pesq:band=nb"), lowpass(x, 2000),
                                                                       0.01)):
        at16 = m.score(x, y, SR)[m.key]
        assert m.score(au.resample(x, SR, 48000), au.resample(y, SR, 48000), 48000)[m.key] == pytest.approx(
            at16, abs=tol), m.identity()


def test_stoi_estoi_drop_the_references_silent_frames():
    # STOI and ESTOI leave out the frames where the *clean reference* is more than 40 dB below its loudest frame
    # (Taal et al. 2011, sec. II; Jensen & Taal 2016). voice() is exactly zero about half the time: noise put only
    # there falls in dropped frames (all but the frames at the edges of each gap), so it costs little. Handed the
    # other way round, the noisy signal is the "reference", nothing is dropped, and those frames compare noise with
    # silence. So the score says which argument the metric took as the reference (the others above are symmetric
    # enough that a swapped call passes them).
    x = voice()
    gaps = x == 0
    assert 0.4 < gaps.mean() < 0.6
    y = (x + 0.1 * np.random.default_rng(0).standard_normal(x.shape) * gaps).astype(np.float32)
    for m, kept, swapped in ((load_metric("stoi"), 0.8, 0.4), (load_metric("estoi"), 0.6, 0.2)):
        assert m.score(x, y, SR)[m.key] > kept
        assert m.score(y, x, SR)[m.key] < swapped


def test_pesq_stoi_estoi_mix_channels_to_mono():
    # "multichannel input is mixed to mono first": two different channels score as their mean, not as either one
    x = voice()
    ref = np.concatenate([x, lowpass(x, 3000)])
    rec = np.concatenate([noisy(x, 0.005), lowpass(x, 1500)])
    mono_ref, mono_rec = (s.astype(np.float64).mean(axis=0, keepdims=True) for s in (ref, rec))  # bench: float64
    for m in (load_metric("pesq"), load_metric("stoi"), load_metric("estoi")):
        mixed = m.score(mono_ref, mono_rec, SR)[m.key]
        assert m.score(ref, rec, SR)[m.key] == pytest.approx(mixed, abs=1e-9), m.name
        assert min(abs(mixed - m.score(ref[c:c + 1], rec[c:c + 1], SR)[m.key]) for c in (0, 1)) > 1e-4, m.name


def test_stoi_bad_input():
    x = voice()
    with pytest.raises(MetricError, match="silent"):
        STOI().score(np.zeros_like(x), x, SR)
    with pytest.raises(MetricError, match="384 ms"):
        ESTOI().score(x[:, :4000], x[:, :4000], SR)  # 0.25 s: pystoi would return a placeholder 1e-5


# -- registry --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["pesq", "stoi", "estoi", "sisdr"])
def test_registry_metadata_matches_class(name):
    entry = METRICS.entry(name)
    m = load_metric(name)
    assert m.meta.sample_rate == entry.meta["sample_rate"]
    assert m.meta.higher_is_better == entry.meta["higher_is_better"]
    assert tuple(m.meta.domains) == tuple(entry.meta["domains"])
    assert m.name == name


def test_speech_metrics_skip_music():
    music = Item(id="m", domain="music")
    assert "speech" in load_metric("stoi").skip_reason(music)
    assert load_metric("sisdr").skip_reason(music) is None
    assert isinstance(load_metric("sisdr"), SISDR)
