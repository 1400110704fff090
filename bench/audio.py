"""Audio I/O and conversions: the one place where sample rates and channel layouts change.

Arrays here are numpy float32 `[C, T]` (channels first). Loading uses soundfile, with PyAV as the
fallback for formats libsndfile cannot read (e.g. m4a); resampling uses soxr (VHQ).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".opus", ".m4a", ".aiff", ".aif", ".au")

SILENCE_PEAK = 1e-4  # peak absolute amplitude below which a signal counts as silent (-80 dBFS)


class AudioError(ValueError):
    """An item's audio is unusable (unreadable, empty, silent, NaN, too short, wrong layout)."""


def load(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a file -> (float32 `[C, T]`, sample_rate). Raises AudioError naming the file."""
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
        return np.ascontiguousarray(data.T), int(sr)
    except Exception as sf_err:  # noqa: BLE001 - try PyAV before giving up
        try:
            return _load_av(path)
        except Exception:  # noqa: BLE001
            raise AudioError(f"{path}: cannot decode audio ({sf_err}); is the file complete and an audio format?") from None


def _load_av(path: Path) -> tuple[np.ndarray, int]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        frames = [f.to_ndarray() for f in container.decode(stream)]
        sr = stream.rate
    if not frames:
        raise AudioError(f"{path}: no audio frames")
    planar = [f if f.ndim == 2 and f.shape[0] == stream.channels else f.reshape(-1, stream.channels).T for f in frames]
    data = np.concatenate(planar, axis=1)
    if np.issubdtype(data.dtype, np.integer):
        data = data.astype(np.float32) / float(np.iinfo(data.dtype).max)
    return data.astype(np.float32), int(sr)


def save(path: str | Path, audio: np.ndarray, sample_rate: int, subtype: str | None = None) -> None:
    """Write float32 `[C, T]` (or `[T]`) to a file; the format follows the extension."""
    import soundfile as sf

    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None]
    sf.write(str(path), audio.T, sample_rate, subtype=subtype)


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """`[C, T]` at sr_in -> `[C, T']` at sr_out with soxr (very high quality)."""
    if sr_in == sr_out:
        return audio
    import soxr

    out = soxr.resample(np.ascontiguousarray(audio.T), sr_in, sr_out, quality="VHQ")
    return np.ascontiguousarray(out.T, dtype=np.float32)


def to_channels(audio: np.ndarray, channels: int) -> np.ndarray:
    """Mix down to mono (mean) or copy mono up to `channels`. Other layouts are an error."""
    have = audio.shape[0]
    if have == channels:
        return audio
    if channels == 1:
        return audio.mean(axis=0, keepdims=True)
    if have == 1:
        return np.repeat(audio, channels, axis=0)
    raise AudioError(f"cannot convert {have} channels to {channels}; give mono or {channels}-channel audio")


def fit_length(audio: np.ndarray, length: int) -> np.ndarray:
    """Trim or zero-pad the time axis of `[C, T]` to `length` samples."""
    t = audio.shape[-1]
    if t == length:
        return audio
    if t > length:
        return audio[..., :length]
    pad = np.zeros(audio.shape[:-1] + (length - t,), dtype=audio.dtype)
    return np.concatenate([audio, pad], axis=-1)


def check(audio: np.ndarray, sample_rate: int, min_seconds: float = 0.0, name: str = "audio") -> None:
    """Raise AudioError if `audio` `[C, T]` is empty, non-finite, silent or shorter than min_seconds."""
    if audio.size == 0 or audio.shape[-1] == 0:
        raise AudioError(f"{name}: empty (0 samples)")
    if not np.all(np.isfinite(audio)):
        raise AudioError(f"{name}: contains NaN or Inf samples")
    peak = float(np.max(np.abs(audio)))
    if peak < SILENCE_PEAK:
        raise AudioError(f"{name}: silent (peak {20 * math.log10(max(peak, 1e-12)):.0f} dBFS)")
    seconds = audio.shape[-1] / sample_rate
    if seconds < min_seconds:
        raise AudioError(f"{name}: too short ({seconds:.3f} s < {min_seconds:g} s)")
