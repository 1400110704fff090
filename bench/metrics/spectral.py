"""Spectral distances: multi-resolution STFT distance and mel distances.

The definitions are those of descript-audiotools (`MultiScaleSTFTLoss`, `MelSpectrogramLoss`), which DAC
uses for training and evaluation, re-stated here in plain torch because audiotools itself needs
torchaudio. Per resolution (window length `w`):

- periodic Hann window of `w` samples, hop `w // 4`, `torch.stft(center=True)` with reflect padding
  (audiotools' `match_stride=False`: no other padding, no frames dropped), magnitude `|X|`;
- mel variants: `M = |X|` projected on librosa's Slaney mel filterbank (htk=False, norm="slaney",
  fmin 0, fmax sample_rate / 2), i.e. the filterbank is applied to the magnitude, not the power;
- `log term  = mean | log10(clamp(S_ref, eps) ** p) - log10(clamp(S_rec, eps) ** p) |` (clamp, then power);
- `mag term  = mean | S_ref - S_rec |`;
- distance = sum over resolutions of `log_weight * log term + mag_weight * mag term`.

The means run over every element of `[B, C, F, frames]` (torch's L1Loss with reduction "mean"), so a
stereo item scores the mean of its two channels' distances. Everything is computed in float64.

Presets (`SpectralConfig`): `STFT` (windows 2048/512), `MEL` (150/80 mels on 2048/512, p=2) and `MEL_DAC`
(DAC conf/base.yml: 5..320 mels on windows 32..2048, p=1, no linear term). The numbers depend on the
sample rate they are computed at (the STFT window is in samples): the metric classes resample to their
`sample_rate` option (default 16 kHz) and that rate is part of the metric's identity.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from bench.audio import resample
from bench.metrics.base import Metric, MetricError, MetricMeta, as_numpy, check_pair

log = logging.getLogger(__name__)

DEFAULT_SAMPLE_RATE = 16000
CLAMP_EPS = 1e-5


@dataclass(frozen=True)
class SpectralConfig:
    """One audiotools loss configuration. `n_mels=None` means the linear STFT magnitude (no mel)."""

    window_lengths: tuple[int, ...]
    n_mels: tuple[int, ...] | None = None
    pow: float = 2.0
    log_weight: float = 1.0
    mag_weight: float = 1.0
    clamp_eps: float = CLAMP_EPS
    mel_fmin: float = 0.0
    mel_fmax: float | None = None  # None: sample_rate / 2

    def __post_init__(self) -> None:
        if self.n_mels is not None and len(self.n_mels) != len(self.window_lengths):
            raise ValueError(f"n_mels {self.n_mels} and window_lengths {self.window_lengths} differ in length")


# audiotools MultiScaleSTFTLoss() defaults.
STFT = SpectralConfig(window_lengths=(2048, 512))
# audiotools MelSpectrogramLoss() defaults.
MEL = SpectralConfig(window_lengths=(2048, 512), n_mels=(150, 80))
# DAC conf/base.yml MelSpectrogramLoss (what DAC reports as "mel distance").
MEL_DAC = SpectralConfig(
    window_lengths=(32, 64, 128, 256, 512, 1024, 2048),
    n_mels=(5, 10, 20, 40, 80, 160, 320),
    pow=1.0,
    mag_weight=0.0,
)


# -- building blocks ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def hann_window(length: int) -> np.ndarray:
    """Periodic Hann window `[length]` (scipy.signal.get_window("hann", length), float64)."""
    n = np.arange(length, dtype=np.float64)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / length)
    window.setflags(write=False)
    return window


def _hz_to_mel_slaney(hz: np.ndarray) -> np.ndarray:
    # Slaney's Auditory Toolbox scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above.
    hz = np.asarray(hz, dtype=np.float64)
    f_sp = 200.0 / 3.0
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    return np.where(hz >= min_log_hz, min_log_mel + np.log(np.maximum(hz, min_log_hz) / min_log_hz) / logstep,
                    hz / f_sp)


def _mel_to_hz_slaney(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    f_sp = 200.0 / 3.0
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), mel * f_sp)


@functools.lru_cache(maxsize=64)
def slaney_mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0,
                          fmax: float | None = None) -> np.ndarray:
    """Slaney-style mel filterbank `[n_mels, n_fft // 2 + 1]` (float64), as librosa.filters.mel with its
    defaults (htk=False, norm="slaney"): triangles between mel-spaced edges, each scaled by
    2 / (bandwidth in Hz) so every filter has about the same area. Filters too narrow to catch an FFT
    bin stay all-zero (librosa warns about them; audiotools uses them as they are)."""
    if fmax is None:
        fmax = sample_rate / 2.0
    fft_hz = np.arange(n_fft // 2 + 1, dtype=np.float64) * sample_rate / n_fft
    edges_hz = _mel_to_hz_slaney(np.linspace(_hz_to_mel_slaney(fmin), _hz_to_mel_slaney(fmax), n_mels + 2))
    widths = np.diff(edges_hz)
    dist = edges_hz[:, None] - fft_hz[None, :]  # [n_mels + 2, bins]
    rising = -dist[:-2] / widths[:-1, None]
    falling = dist[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]
    weights.setflags(write=False)
    return weights


def _to_tensor(x, name: str):
    """numpy/torch `[T]`, `[C, T]` or `[B, C, T]` -> float64 torch `[B * C, T]` (device kept)."""
    import torch

    t = x.detach() if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))
    if t.ndim not in (1, 2, 3):
        raise MetricError(f"{name} must be [T], [C, T] or [B, C, T]; got shape {tuple(t.shape)}")
    if not t.is_floating_point():
        raise MetricError(f"{name} must be float audio in [-1, 1]; got dtype {t.dtype} (convert it first)")
    return t.to(torch.float64)


def _prepare(ref, rec, config: SpectralConfig, name: str):
    """Validate a pair and flatten batch and channels: -> (ref `[N, T]`, rec `[N, T]`)."""
    import torch

    r = _to_tensor(ref, "reference")
    d = _to_tensor(rec, "reconstruction")
    if r.shape != d.shape:
        raise MetricError(f"{name}: reference {tuple(r.shape)} and reconstruction {tuple(d.shape)} differ in "
                          "shape; align them first (the runner trims/pads to the reference)")
    for label, t in (("reference", r), ("reconstruction", d)):
        if not bool(torch.isfinite(t).all()):
            raise MetricError(f"{name}: {label} contains NaN or Inf samples")
    length = r.shape[-1]
    # torch.stft(center=True) reflect-pads w // 2 on each side, which needs more samples than that.
    need = max(config.window_lengths) // 2 + 1
    if length < need:
        raise MetricError(f"{name}: {length} samples is too short; the {max(config.window_lengths)}-sample "
                          f"window needs at least {need} samples")
    if d.device != r.device:
        d = d.to(r.device)
    return r.reshape(-1, length), d.reshape(-1, length)


def _magnitude(x, window_length: int):
    """`[N, T]` -> STFT magnitude `[N, window_length // 2 + 1, frames]`."""
    import torch

    window = torch.from_numpy(hann_window(window_length).copy()).to(x.device)
    spec = torch.stft(x, n_fft=window_length, hop_length=window_length // 4, window=window, center=True,
                      pad_mode="reflect", return_complex=True)
    return spec.abs()


def _check_rate(sample_rate) -> int:
    try:
        ok = not isinstance(sample_rate, bool) and float(sample_rate).is_integer() and float(sample_rate) > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise MetricError(f"sample_rate must be a positive whole number of Hz; got {sample_rate!r}")
    return int(sample_rate)


# -- pure functions -------------------------------------------------------------------------------


def spectral_terms(ref, rec, sample_rate: int, config: SpectralConfig, name: str = "spectral") -> list[dict[str, float]]:
    """Per-resolution terms of a spectral distance, unweighted.

    ref, rec: `[C, T]`, `[B, C, T]` or `[T]` (numpy or torch) at `sample_rate` Hz, same shape.
    Returns one dict per resolution: window, hop, n_mels (0 for linear), log (mean L1 of the log10
    terms) and mag (mean L1 of the magnitudes; 0.0 and not computed when config.mag_weight == 0).
    No resampling happens here: the numbers are those of the audio at `sample_rate`.
    """
    import torch

    sample_rate = _check_rate(sample_rate)
    r, d = _prepare(ref, rec, config, name)
    eps, p = config.clamp_eps, config.pow
    out = []
    with torch.no_grad():
        for i, w in enumerate(config.window_lengths):
            sr_, sd_ = _magnitude(r, w), _magnitude(d, w)
            n_mels = 0
            if config.n_mels is not None:
                n_mels = config.n_mels[i]
                fb = torch.from_numpy(slaney_mel_filterbank(sample_rate, w, n_mels, config.mel_fmin,
                                                            config.mel_fmax).copy()).to(r.device)
                sr_ = torch.einsum("mf,nft->nmt", fb, sr_)
                sd_ = torch.einsum("mf,nft->nmt", fb, sd_)
            # clamp before the power: the floor is eps ** p, as in audiotools
            log_term = (sr_.clamp(min=eps).pow(p).log10() - sd_.clamp(min=eps).pow(p).log10()).abs().mean()
            mag_term = (sr_ - sd_).abs().mean() if config.mag_weight != 0 else torch.zeros((), dtype=r.dtype)
            out.append({"window": w, "hop": w // 4, "n_mels": n_mels, "log": float(log_term),
                        "mag": float(mag_term)})
    return out


def spectral_distance(ref, rec, sample_rate: int, config: SpectralConfig, name: str = "spectral") -> float:
    """Sum over resolutions of `log_weight * log + mag_weight * mag` (see `spectral_terms`)."""
    terms = spectral_terms(ref, rec, sample_rate, config, name)
    return float(sum(config.log_weight * t["log"] + config.mag_weight * t["mag"] for t in terms))


def stft_distance(ref, rec, sample_rate: int) -> float:
    """audiotools MultiScaleSTFTLoss (windows 2048/512, log10 power + linear magnitude, summed).

    ref, rec: `[C, T]` or `[B, C, T]` at `sample_rate` (which the STFT itself ignores: windows are in
    samples). Returns a float >= 0; 0 for identical inputs; lower is better."""
    return spectral_distance(ref, rec, sample_rate, STFT, "stft")


def mel_distance(ref, rec, sample_rate: int) -> float:
    """audiotools MelSpectrogramLoss defaults (150/80 Slaney mels on 2048/512 windows, pow 2, log + linear).

    ref, rec: `[C, T]` or `[B, C, T]` at `sample_rate` Hz (sets the mel filterbank)."""
    return spectral_distance(ref, rec, sample_rate, MEL, "mel")


def mel_distance_dac(ref, rec, sample_rate: int) -> float:
    """DAC conf/base.yml mel distance (5..320 mels on windows 32..2048, pow 1, log term only).

    ref, rec: `[C, T]` or `[B, C, T]` at `sample_rate` Hz."""
    return spectral_distance(ref, rec, sample_rate, MEL_DAC, "mel-dac")


# -- metric classes -------------------------------------------------------------------------------


class _SpectralMetric(Metric):
    """Thin wrapper: resamples to the `sample_rate` option, then calls the pure function."""

    config: ClassVar[SpectralConfig]
    definition: ClassVar[str]
    unit: ClassVar[str] = "log10-L1"

    def __init__(self, sample_rate: int = DEFAULT_SAMPLE_RATE, **unknown: Any):
        if unknown:
            raise ValueError(f"metric {self.name!r} has no option(s) {', '.join(sorted(unknown))}; "
                             f"its only option is sample_rate (Hz, default {DEFAULT_SAMPLE_RATE}), "
                             f"e.g. '{self.name}:sample_rate=44100'")
        try:
            rate = _check_rate(sample_rate)
        except MetricError:
            raise ValueError(f"metric {self.name!r}: sample_rate must be a positive whole number of Hz, "
                             f"got {sample_rate!r}") from None
        # The rate is always in the options so that it shows in identity() (it changes the numbers).
        super().__init__(sample_rate=rate)
        self.meta = MetricMeta(
            name=self.name,
            sample_rate=rate,
            higher_is_better=False,
            unit=self.unit,
            definition=f"{self.definition}; computed at {rate} Hz",
        )

    def score(self, ref, rec, sample_rate: int, item=None) -> dict[str, float]:
        """ref, rec: float `[C, T]` (numpy or torch) at `sample_rate` Hz -> {name: distance} computed at
        `self.meta.sample_rate` (resampled here with soxr when the rates differ)."""
        sample_rate = _check_rate(sample_rate)
        target = self.meta.sample_rate
        if sample_rate != target:
            r, d = as_numpy(ref), as_numpy(rec)
            check_pair(r, d, self.name)
            if not (np.isfinite(r).all() and np.isfinite(d).all()):
                raise MetricError(f"{self.name}: input contains NaN or Inf samples")
            log.debug("%s: resampling %d Hz -> %d Hz", self.name, sample_rate, target)
            ref, rec = resample(r, sample_rate, target), resample(d, sample_rate, target)
        return {self.name: spectral_distance(ref, rec, target, self.config, self.name)}


class STFTDistance(_SpectralMetric):
    name = "stft"
    code_version = "1"
    config = STFT
    definition = ("descript-audiotools MultiScaleSTFTLoss defaults: windows 2048/512 (periodic Hann, hop w/4, "
                  "centred, reflect pad); sum over windows of mean|log10(max(|X|,1e-5)^2) - log10(max(|Y|,1e-5)^2)|"
                  " + mean||X| - |Y||")


class MelDistance(_SpectralMetric):
    name = "mel"
    code_version = "1"
    config = MEL
    definition = ("descript-audiotools MelSpectrogramLoss defaults: 150/80 Slaney mels (librosa, fmin 0, fmax sr/2) "
                  "of the STFT magnitude on windows 2048/512 (periodic Hann, hop w/4, centred, reflect pad); sum "
                  "over windows of mean|log10(max(M,1e-5)^2) - log10(max(N,1e-5)^2)| + mean|M - N|")


class MelDistanceDAC(_SpectralMetric):
    name = "mel-dac"
    code_version = "1"
    config = MEL_DAC
    definition = ("DAC conf/base.yml MelSpectrogramLoss: 5/10/20/40/80/160/320 Slaney mels on windows "
                  "32/64/128/256/512/1024/2048 (periodic Hann, hop w/4, centred, reflect pad); sum over windows "
                  "of mean|log10(max(M,1e-5)) - log10(max(N,1e-5))| (pow 1, no linear term)")
