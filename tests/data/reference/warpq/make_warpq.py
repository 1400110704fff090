"""Reference WARP-Q scores from the authors' package `warpq`, for tests/test_metrics_generative.py.

Runs in its own environment (warpq cannot run beside bench's NumPy 2, see README.md here) and does not import
bench. It writes two files beside itself:

- warpq_inputs.npz: int16 PCM arrays at 16 kHz (`ref_<name>` references, `deg_<case>` degraded signals; a
  case's JSON entry names its two arrays; divide by 32768 for the float signal), made here from fixed seeds
  with numpy and scipy, and from one clip of the shipped demo corpus
  (bench/data/demo/speech/harvard-01-01-flite-slt.flac, read with soundfile);
- warpq_package.json: what `warpq.core.warpqMetric(n_jobs=1).evaluate(ref, deg, arr_sr=16000)` returns on
  them (the package's defaults): its rounded raw and normalised scores, patch count and per-patch alignment
  costs, and the same evaluation with the package's rounding switched off (its module-level `round` replaced
  by the identity), plus the number of samples its VAD (`pyvad.vad`) keeps of each signal.
"""

from __future__ import annotations

import json
import platform
import sys
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
import scipy.signal
import soundfile as sf

import warpq.core
from pyvad import vad
from warpq.core import warpqMetric

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[3]
INPUTS = HERE / "warpq_inputs.npz"
OUTPUT = HERE / "warpq_package.json"
SR = 16000
DEMO_CLIP = REPO / "bench" / "data" / "demo" / "speech" / "harvard-01-01-flite-slt.flac"


def pcm16(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, -1.0, 32767 / 32768) * 32768).astype(np.int16)


def synthetic_speech(seed: int, seconds: float = 1.6) -> np.ndarray:
    """Voiced 'syllables' (gliding harmonic, formant-like emphasis) separated by short low-level pauses."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * seconds)) / SR
    f0 = 120 + 25 * np.sin(2 * np.pi * 0.9 * t) + 10 * np.sin(2 * np.pi * 2.3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    x = sum(np.sin(k * phase) * np.exp(-((k * 120 - 700) / 900) ** 2) for k in range(1, 40))
    syllables = np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None) ** 0.5
    syllables *= (t % 0.8) < 0.6  # a 0.2 s pause every 0.8 s
    x = x * syllables + 0.002 * rng.standard_normal(t.size)
    return 0.4 * x / np.abs(x).max()


def make_cases() -> tuple[dict[str, np.ndarray], dict[str, tuple[str, np.ndarray]]]:
    """(references: name -> int16 `[T]`, cases: name -> (reference name, degraded int16 `[T]`)), 16 kHz."""
    rng = np.random.default_rng(0)
    speech, sr = sf.read(str(DEMO_CLIP), dtype="float32")
    assert sr == SR and speech.ndim == 1
    synth = synthetic_speech(1)
    lowpass = scipy.signal.butter(8, 2000, fs=SR, output="sos")
    noise = rng.standard_normal(speech.size)
    snr15 = speech + noise * np.sqrt(np.mean(speech**2) / np.mean(noise**2) / 10 ** 1.5)
    refs = {"speech": speech, "synth": synth}
    cases = {
        "speech_identity": ("speech", speech),
        "speech_noise_15db": ("speech", snr15),
        "speech_lowpass_2k": ("speech", scipy.signal.sosfiltfilt(lowpass, speech)),
        "speech_faster_4pct": ("speech", scipy.signal.resample_poly(speech, 25, 26)),
        "speech_quantised_4bit": ("speech", np.round(speech * 8) / 8),
        "speech_truncated": ("speech", speech[: int(0.7 * speech.size)]),
        "synth_noise": ("synth", synth + 0.01 * rng.standard_normal(synth.size)),
        "synth_delayed": ("synth", np.concatenate([np.zeros(int(0.25 * SR)), synth])[: synth.size]),
        "too_short": ("speech", speech[: int(0.3 * SR)]),
    }
    return ({k: pcm16(v) for k, v in refs.items()},
            {k: (r, pcm16(d)) for k, (r, d) in cases.items()})


def evaluate(metric: warpqMetric, ref: np.ndarray, deg: np.ndarray) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the too-short case warns and returns NaN
        out = metric.evaluate(ref, deg, arr_sr=SR)
    if not np.isfinite(out["raw_warpq_score"]):
        return {"raw": None, "normalized": None, "patches": 0, "costs": []}
    return {"raw": float(out["raw_warpq_score"]), "normalized": float(out["normalized_warpq_score"]),
            "patches": int(out["total_patch_count"]), "costs": [float(c) for c in out["alignment_costs"]]}


def main() -> None:
    refs, cases = make_cases()
    arrays = {f"ref_{k}": v for k, v in refs.items()}
    arrays.update({f"deg_{k}": d for k, (r, d) in cases.items() if not np.array_equal(d, refs[r])})
    np.savez_compressed(INPUTS, **arrays)
    metric = warpqMetric(n_jobs=1)
    results = {}
    for name, (ref_name, deg16) in cases.items():
        ref16 = refs[ref_name]
        ref = ref16.astype(np.float64) / 32768
        deg = deg16.astype(np.float64) / 32768
        rounded = evaluate(metric, ref, deg)
        warpq.core.round = lambda value, digits=None: value  # the module's `round` shadows the builtin
        try:
            exact = evaluate(metric, ref, deg)
        finally:
            del warpq.core.round
        results[name] = {"ref": ref_name, "deg": f"deg_{name}" if f"deg_{name}" in arrays else f"ref_{ref_name}",
                         "rounded": rounded, "unrounded": exact,
                         "vad_kept": [int(np.sum(vad(ref, SR, hop_length=30) == 1)),
                                      int(np.sum(vad(deg, SR, hop_length=30) == 1))]}
        print(name, rounded["raw"], exact["raw"], results[name]["vad_kept"])
    env = {"python": platform.python_version(), "platform": sys.platform}
    for dist in ("warpq", "pyvad", "webrtcvad", "librosa", "numpy", "scipy", "numba", "soundfile", "setuptools"):
        env[dist] = version(dist)
    OUTPUT.write_text(json.dumps({"version": 1, "environment": env, "sample_rate": SR,
                                  "call": "warpq.core.warpqMetric(n_jobs=1).evaluate(ref, deg, arr_sr=16000)",
                                  "cases": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
