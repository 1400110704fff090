"""WARP-Q: speech quality of generative codecs as the cost of aligning the coded speech to the reference.

Definition (Jassim, Skoglund, Chinen, Hines: "WARP-Q: Quality prediction for generative neural speech codecs",
ICASSP 2021, and "Speech quality assessment with WARP-Q: from similarity to subsequence dynamic time warp
cost", IET Signal Processing 2022), with the parameters of the authors' package `warpq` 1.5.2 (Apache-2.0)
at its defaults, all at 16 kHz:

1. voice activity: WebRTC's VAD (aggressiveness 0) on 30 ms frames of the 16-bit signal, each decision
   widened to its neighbours (a 3-frame moving sum > 0); only active samples are kept, of the reference and of
   the coded signal separately;
2. MFCC: 13 coefficients (librosa: 32 ms window, 4 ms hop, n_fft 1024, fmax 5 kHz, lifter 3);
3. local cepstral mean and variance normalisation over a sliding window of 0.836 s (201 frames, symmetric
   padding at the edges; float32 as in the package);
4. the coded signal's MFCC cut into patches of 0.4 s (92 frames) every 0.2 s (42 frames); each patch aligned
   to the whole reference by subsequence DTW (librosa: Euclidean local cost, steps (1,0), (0,3), (1,3) with
   unit weights, band radius 0.25), its cost = the accumulated cost at the best end frame / patch length;
5. WARP-Q = the median of the patch costs. LOWER is better (0 for identical speech; the authors' normalised
   score maps it to 1 - cost / 3.5, clamped to [0, 1], higher better: reported as `warpq_norm`).

Why not the package itself: `warpq` 1.5.2 installs beside our stack but cannot run in it. Its VAD dependency
`pyvad` (0.1.3; 0.2.0 pins numpy<2 and librosa<0.10) and its own `cmvnw` call `np.lib.pad`, which NumPy 2.0
removed (AttributeError on every call), and `webrtcvad` 2.0.10 imports `pkg_resources`, which setuptools 81
removed. So the definition is restated here on librosa (features, DTW) and `webrtcvad-wheels` (the same
WebRTC VAD module, maintained, no pkg_resources), and tests/test_metrics_generative.py compares it with the
package's own numbers computed in an environment where it runs (tests/data/reference/warpq/). Unlike the
package, scores are not rounded to 3 decimals.

Inputs are mixed to mono, resampled to 16 kHz and clipped to [-1, 1] (the VAD reads 16-bit samples; a float
sample beyond full scale is what a 16-bit file would clip). Speech shorter than one patch (0.4 s) after VAD,
in either signal, has no score (MetricError; the package returns NaN there).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np

from bench.metrics.base import Metric, MetricError, MetricMeta, as_numpy, check_pair, package_version

log = logging.getLogger(__name__)

RATE = 16000
FRAME_S, HOP_S = 0.032, 0.004  # MFCC window and hop
N_MFCC, FMAX, LIFTER = 13, 5000.0, 3
PATCH_S, PATCH_HOP_S = 0.4, 0.2
CMVN_S = 0.836
SIGMA = ((1, 0), (0, 3), (1, 3))  # DTW steps (rows = patch frames, columns = reference frames)
BAND_RAD = 0.25
VAD_HOP_MS, VAD_MODE = 30, 0
MAX_SCORE = 3.5  # the authors' normalisation constant
VAD_HINT = "pip install 'webrtcvad-wheels>=2.0.14'"


def _frames(seconds: float) -> int:
    """librosa.time_to_frames at the MFCC settings (the package's own conversion: centred frames)."""
    import librosa

    win = int(librosa.time_to_samples(FRAME_S, sr=RATE))
    hop = int(librosa.time_to_samples(HOP_S, sr=RATE))
    return int(librosa.time_to_frames(seconds, sr=RATE, hop_length=hop, n_fft=2 * win))


def vad_mask(x: np.ndarray, sample_rate: int = RATE, hop_ms: int = VAD_HOP_MS, mode: int = VAD_MODE) -> np.ndarray:
    """Boolean `[T]`: which samples of mono `x` (float in [-1, 1]) lie in frames WebRTC's VAD calls speech,
    each frame's decision widened to its two neighbours; the last partial frame is zero-padded."""
    try:
        import webrtcvad
    except ImportError:
        raise MetricError(f"warpq needs WebRTC's voice activity detector: {VAD_HINT}") from None
    pcm = (np.asarray(x, dtype=np.float32) * 2.0**15).astype(np.int16)
    hop = sample_rate * hop_ms // 1000
    n = pcm.size // hop + 1
    frames = np.pad(pcm, (0, n * hop - pcm.size)).reshape(n, hop)
    vad = webrtcvad.Vad(mode)
    speech = np.array([vad.is_speech(f.tobytes(), sample_rate) for f in frames], dtype=np.float64)
    active = np.convolve(speech, np.ones(3) / 3, mode="same") > 0
    return np.repeat(active, hop)[:pcm.size]


def mfcc(x: np.ndarray) -> np.ndarray:
    """`[N_MFCC, frames]` MFCC of mono `x` at 16 kHz (librosa, the package's settings)."""
    import librosa

    win = int(librosa.time_to_samples(FRAME_S, sr=RATE))
    hop = int(librosa.time_to_samples(HOP_S, sr=RATE))
    return librosa.feature.mfcc(y=x, sr=RATE, n_mfcc=N_MFCC, fmax=FMAX, n_fft=2 * win, win_length=win,
                                hop_length=hop, lifter=LIFTER)


def local_cmvn(features: np.ndarray, window: int) -> np.ndarray:
    """Sliding-window cepstral mean and variance normalisation of `[frames, coeffs]` (window odd, symmetric
    padding), float32 like the package: (x - local mean) / (local std of the mean-removed values + 2^-30)."""
    from numpy.lib.stride_tricks import sliding_window_view

    if window % 2 != 1:
        raise ValueError(f"CMVN window must be odd, not {window}")
    pad = (window - 1) // 2

    def local(values: np.ndarray, stat) -> np.ndarray:
        padded = np.pad(values, ((pad, pad), (0, 0)), mode="symmetric")
        return stat(sliding_window_view(padded, window, axis=0), axis=-1)  # [frames, coeffs]

    centred = (features - local(features, np.mean)).astype(np.float32)
    return (centred / (local(centred, np.std) + 2.0**-30)).astype(np.float32)


def patch_costs(ref_mfcc: np.ndarray, deg_mfcc: np.ndarray) -> list[float]:
    """Subsequence-DTW cost of each patch of `deg_mfcc` `[coeffs, frames]` against all of `ref_mfcc`."""
    import librosa

    cols, step = _frames(PATCH_S), _frames(PATCH_HOP_S)
    costs = []
    for start in range(0, deg_mfcc.shape[1] - cols + 1, step):
        patch = deg_mfcc[:, start:start + cols]
        acc, path = librosa.sequence.dtw(X=patch, Y=ref_mfcc, metric="euclidean",
                                         step_sizes_sigma=np.array(SIGMA), weights_mul=np.ones(len(SIGMA)),
                                         band_rad=BAND_RAD, subseq=True, backtrack=True)
        end = path[0, 1]  # librosa's path runs from the end backwards
        costs.append(float(acc[-1, end] / acc.shape[0]))
    return costs


def warpq_score(ref: np.ndarray, deg: np.ndarray) -> dict[str, float]:
    """WARP-Q of mono float `[T]` signals at 16 kHz in [-1, 1]: {"warpq": median patch cost (lower is better),
    "warpq_norm": the authors' 0..1 score (higher is better), "warpq_patches": patch count}."""
    ref = np.asarray(ref, dtype=np.float64)
    deg = np.asarray(deg, dtype=np.float64)
    kept = []
    for x, what in ((ref, "reference"), (deg, "reconstruction")):
        speech = x[vad_mask(x)]
        if speech.size / RATE < PATCH_S:
            raise MetricError(f"warpq: the {what} holds {speech.size / RATE:.2f} s of speech after voice activity "
                              f"detection, less than one {PATCH_S:g} s patch; WARP-Q has no score for it")
        kept.append(speech)
    window = _frames(CMVN_S)
    window += 1 - window % 2  # odd, as the package makes it
    ref_f, deg_f = (local_cmvn(mfcc(x).T, window).T for x in kept)
    costs = patch_costs(ref_f, deg_f)
    if not costs:
        raise MetricError("warpq: the reconstruction is shorter than one patch after feature extraction")
    raw = float(np.median(costs))
    return {"warpq": raw, "warpq_norm": float(min(1.0, max(0.0, 1.0 - raw / MAX_SCORE))),
            "warpq_patches": float(len(costs))}


class WARPQ(Metric):
    """WARP-Q (lower is better). score(ref, rec `[C, T]`, sample_rate, item) -> {"warpq", "warpq_norm",
    "warpq_patches"}; scored at 16 kHz (resampled here when handed another rate)."""

    name: ClassVar[str] = "warpq"
    code_version: ClassVar[str] = "1"

    def __init__(self):
        super().__init__()
        self.meta = MetricMeta(
            name="warpq", sample_rate=RATE, higher_is_better=False, domains=("speech",), unit="DTW cost",
            definition=("WARP-Q (Jassim et al. 2021) with the warpq 1.5.2 package's defaults: WebRTC VAD, 13 "
                        "MFCC, windowed CMVN, 0.4 s patches aligned by subsequence DTW, median cost; lower is "
                        f"better; librosa {package_version('librosa')}, "
                        f"webrtcvad-wheels {package_version('webrtcvad-wheels')}"))

    def backend(self) -> dict[str, Any]:
        """The packages that compute the features, the alignment and the VAD decisions."""
        return {"librosa": package_version("librosa"), "scipy": package_version("scipy"),
                "webrtcvad-wheels": package_version("webrtcvad-wheels"), "numpy": package_version("numpy")}

    def score(self, ref, rec, sample_rate: int, item=None) -> dict[str, float]:
        from bench import audio as au

        r = as_numpy(ref)
        d = as_numpy(rec)
        check_pair(r, d, self.name)
        r = r.mean(axis=0, keepdims=True)
        d = d.mean(axis=0, keepdims=True)
        if sample_rate != RATE:
            r = au.resample(r.astype(np.float32), sample_rate, RATE)
            d = au.resample(d.astype(np.float32), sample_rate, RATE)
        for x, what in ((r, "reference"), (d, "reconstruction")):
            if not np.all(np.isfinite(x)):
                raise MetricError(f"warpq: the {what} contains NaN or Inf samples")
        return warpq_score(np.clip(r[0], -1.0, 1.0), np.clip(d[0], -1.0, 1.0))
