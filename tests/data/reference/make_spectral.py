"""Reference spectral distances from descript-audiotools, for tests/test_metrics_spectral.py.

Runs in its own environment (audiotools needs torchaudio, which bench never installs) and does not import
bench. It writes two files beside itself:

- spectral_inputs.npz: the input pairs, float32 `[B, C, T]` arrays `<case>_ref` and `<case>_rec`, made here
  from fixed seeds with numpy (and scipy for the low-pass case);
- spectral_audiotools.json: for every case, what audiotools' public loss classes return on those inputs:
  the total of each preset (`stft`, `mel`, `mel-dac`) and, per window, the log term alone
  (log_weight=1, mag_weight=0) and the magnitude term alone (log_weight=0, mag_weight=1).

Presets, as bench/metrics/spectral.py states it follows them:
- stft:    audiotools.metrics.spectral.MultiScaleSTFTLoss() with its defaults;
- mel:     audiotools.metrics.spectral.MelSpectrogramLoss() with its defaults;
- mel-dac: MelSpectrogramLoss with DAC's conf/base.yml values (n_mels 5..320 on windows 32..2048,
           mel_fmin 0, mel_fmax None, pow 1.0, clamp_eps 1e-5, mag_weight 0.0, log_weight 1.0).

See README.md here for the command that made the committed files.
"""

from __future__ import annotations

import json
import platform
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import scipy.signal
import torch
from audiotools import AudioSignal
from audiotools.metrics.spectral import MelSpectrogramLoss, MultiScaleSTFTLoss

HERE = Path(__file__).resolve().parent
INPUTS = HERE / "spectral_inputs.npz"
OUTPUT = HERE / "spectral_audiotools.json"

DAC_WINDOWS = [32, 64, 128, 256, 512, 1024, 2048]
DAC_MELS = [5, 10, 20, 40, 80, 160, 320]


def _harmonic(t: np.ndarray, f0: float, partials: int = 4) -> np.ndarray:
    return sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, partials + 1))


def make_cases() -> dict[str, tuple[int, np.ndarray, np.ndarray]]:
    """name -> (sample_rate, ref [B, C, T], rec [B, C, T]), float32, from fixed seeds."""
    cases = {}

    rng = np.random.default_rng(1)  # mono tone with a syllable-rate envelope; rec adds white noise
    sr, n = 16000, 8000
    t = np.arange(n) / sr
    ref = 0.3 * _harmonic(t, 220.0) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t)) + 0.05 * rng.standard_normal(n)
    rec = ref + 0.02 * rng.standard_normal(n)
    cases["tone_noise_16k"] = (sr, ref[None, None], rec[None, None])

    rng = np.random.default_rng(2)  # stereo: two different tones; rec is an 8th-order 2 kHz low-pass
    sr, n = 16000, 6000
    t = np.arange(n) / sr
    ref = np.stack([0.4 * _harmonic(t, 180.0, 8), 0.25 * _harmonic(t, 310.0, 6)]) + 0.03 * rng.standard_normal((2, n))
    rec = scipy.signal.sosfiltfilt(scipy.signal.butter(8, 2000, fs=sr, output="sos"), ref, axis=-1)
    cases["stereo_lowpass_16k"] = (sr, ref[None], rec[None])

    rng = np.random.default_rng(3)  # a batch of two uniform-noise items; rec: gain change plus noise
    sr, n = 16000, 5000
    ref = rng.uniform(-0.5, 0.5, (2, 1, n))
    rec = np.array([0.8, 1.3])[:, None, None] * ref + 0.05 * rng.standard_normal((2, 1, n))
    cases["batch_noise_16k"] = (sr, ref, rec)

    rng = np.random.default_rng(4)  # 44.1 kHz chord; rec quantised to 6 bits (the mel bank depends on the rate)
    sr, n = 44100, 8820
    t = np.arange(n) / sr
    ref = 0.2 * (_harmonic(t, 261.63) + _harmonic(t, 329.63) + _harmonic(t, 392.0)) + 0.01 * rng.standard_normal(n)
    rec = np.round(ref * 32) / 32
    cases["chord_quantised_44k"] = (sr, ref[None, None], rec[None, None])

    rng = np.random.default_rng(5)  # a silent gap in the middle: magnitudes there sit on the clamp
    sr, n = 16000, 6000
    t = np.arange(n) / sr
    ref = 0.5 * _harmonic(t, 440.0) * (np.abs(t - t.mean()) > 0.08)
    rec = 0.9 * ref + 1e-4 * rng.standard_normal(n)
    cases["silent_gap_16k"] = (sr, ref[None, None], rec[None, None])

    rng = np.random.default_rng(6)  # 48 kHz loud sweep; rec hard-clipped at 0.5
    sr, n = 48000, 4800
    t = np.arange(n) / sr
    ref = 0.9 * np.sin(2 * np.pi * (200 * t + 4000 * t**2)) + 0.02 * rng.standard_normal(n)
    rec = np.clip(ref, -0.5, 0.5)
    cases["sweep_clipped_48k"] = (sr, ref[None, None], rec[None, None])

    return {k: (sr, a.astype(np.float32), b.astype(np.float32)) for k, (sr, a, b) in cases.items()}


def presets() -> dict[str, dict]:
    """name -> (loss class, keyword arguments of the full preset, per-window keyword arguments)."""
    return {
        "stft": dict(cls=MultiScaleSTFTLoss, full={}, windows=[2048, 512], mels=None, pow=2.0),
        "mel": dict(cls=MelSpectrogramLoss, full={}, windows=[2048, 512], mels=[150, 80], pow=2.0),
        "mel-dac": dict(cls=MelSpectrogramLoss,
                        full=dict(n_mels=DAC_MELS, window_lengths=DAC_WINDOWS, mel_fmin=[0.0] * 7,
                                  mel_fmax=[None] * 7, pow=1.0, clamp_eps=1e-5, mag_weight=0.0, log_weight=1.0),
                        windows=DAC_WINDOWS, mels=DAC_MELS, pow=1.0),
    }


def _loss(loss, sr: int, ref: np.ndarray, rec: np.ndarray) -> float:
    # audiotools: forward(x=estimate, y=reference); fresh signals each call (they cache their STFT)
    x = AudioSignal(torch.from_numpy(rec.copy()), sr)
    y = AudioSignal(torch.from_numpy(ref.copy()), sr)
    with torch.no_grad():
        return float(loss(x, y))


def main() -> None:
    torch.set_num_threads(1)
    cases = make_cases()
    np.savez_compressed(INPUTS, **{f"{k}_{side}": arr for k, (_, ref, rec) in cases.items()
                                   for side, arr in (("ref", ref), ("rec", rec))})
    results = {}
    for name, (sr, ref, rec) in cases.items():
        entry = {"sample_rate": sr, "shape": list(ref.shape)}
        for preset, spec in presets().items():
            cls = spec["cls"]
            total = _loss(cls(**spec["full"]), sr, ref, rec)
            per_window = []
            for i, w in enumerate(spec["windows"]):
                kw = dict(window_lengths=[w], pow=spec["pow"], clamp_eps=1e-5)
                if spec["mels"] is not None:
                    kw.update(n_mels=[spec["mels"][i]], mel_fmin=[0.0], mel_fmax=[None])
                log_term = _loss(cls(**kw, log_weight=1.0, mag_weight=0.0), sr, ref, rec)
                mag_term = _loss(cls(**kw, log_weight=0.0, mag_weight=1.0), sr, ref, rec)
                per_window.append({"window": w, "n_mels": spec["mels"][i] if spec["mels"] else 0,
                                   "log": log_term, "mag": mag_term})
            entry[preset] = {"total": total, "per_window": per_window}
        results[name] = entry
        print(f"{name:22s} sr={sr:5d} stft={entry['stft']['total']:.6f} mel={entry['mel']['total']:.6f} "
              f"mel-dac={entry['mel-dac']['total']:.6f}")
    out = {
        "about": "descript-audiotools spectral losses on spectral_inputs.npz; made by make_spectral.py",
        "generator": "tests/data/reference/make_spectral.py",
        "versions": {"descript-audiotools": version("descript-audiotools"), "torch": torch.__version__,
                     "torchaudio": version("torchaudio"), "numpy": np.__version__, "scipy": scipy.__version__,
                     "librosa": version("librosa"), "python": platform.python_version()},
        "precision": "float32 (AudioSignal casts its audio to float32; the mel bank is librosa's float32)",
        "presets": {k: {"class": v["cls"].__name__, "arguments": {a: b for a, b in v["full"].items()}}
                    for k, v in presets().items()},
        "cases": results,
    }
    OUTPUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {INPUTS.name} and {OUTPUT.name} ({sys.executable})")


if __name__ == "__main__":
    main()
