"""Audio I/O and conversions: the one place where sample rates and channel layouts change.

Arrays here are numpy float32 `[C, T]` (channels first), samples in [-1, 1]. Loading uses soundfile, with
PyAV as the fallback for formats libsndfile cannot read (e.g. m4a); resampling uses soxr (VHQ).

What the helpers refuse, each with one line that says what to do (`AudioError`):
- integer PCM where float samples are expected (`check`); `as_float32` and `to_channels` convert it
  instead, scaling int16 by 1/32768 (int8/int32 likewise by 2**(bits - 1); uint8 is offset binary);
- a time-first `[T, C]` array where `[C, T]` is expected: more than MAX_CHANNELS rows and more rows
  than columns can only be that (the same rule as `Codec.check_input` for `[B, T, C]`);
- peaks above MAX_PEAK, NaN/Inf, empty or silent audio, items shorter than `min_seconds` or longer than
  `max_seconds` (the runner passes `DEFAULT_MAX_SECONDS` unless `--max-seconds` says otherwise).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".opus", ".m4a", ".aiff", ".aif", ".au")

SILENCE_PEAK = 1e-4  # peak absolute amplitude below which a signal counts as silent (-80 dBFS)

# Float audio holds samples in [-1, 1]; loud masters and resampling overshoot stay within a few units.
# A peak above 100 (+40 dBFS) is not loud audio but unscaled PCM (int16 stored as float peaks near 32767)
# or garbage, which LAME answers by aborting the whole process and which makes every distance metric
# meaningless (mel 239721). The same bound as `bench.codecs.base.MAX_PEAK`, so an item is refused the same
# way whether it enters through a task or through `codec.encode`.
MAX_PEAK = 100.0

# More rows than this (and more rows than columns) in a `[C, T]` array: it is `[T, C]`, time first.
MAX_CHANNELS = 64

# The longest item the runner scores unless told otherwise (`bench run --max-seconds`). Measured with
# `/usr/bin/time -v bench run --codec identity --metric mel,stft,sisdr --jobs 1` on 44.1 kHz stereo: a process
# peaks near 0.3 GB + 5.5 MB per second of audio (float64 STFTs of the whole item, resampled copies, the
# decoded output): 1.9 GB for 5 minutes, 3.6 GB for 10 (this limit), 6.8 GB for 20. Longer items are refused
# from the file header (`load(..., max_seconds=)`), before decoding.
DEFAULT_MAX_SECONDS = 600.0


class AudioError(ValueError):
    """An item's audio is unusable (unreadable, empty, silent, NaN, too short or long, wrong layout)."""


def too_long_message(seconds: float, max_seconds: float, name: str = "item") -> str:
    """The failure of an over-long item: how long it is, the limit, and the two ways out."""
    length = f"{seconds:.0f}" if seconds >= 100 else f"{seconds:.3g}"
    return (f"{name} is {length} s long; bench scores items up to {max_seconds:g} s: split it (dataset "
            "tasks segment long files) or raise the limit with --max-seconds")


def _readable(path: Path) -> None:
    """Open the file for reading once, so that the OS's reason (permission, a folder) names the file instead
    of libsndfile's "System error."."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except PermissionError:
        raise AudioError(f"{path}: permission denied; make the file readable (chmod a+r {path}) or move it out "
                         "of the task folder") from None
    except IsADirectoryError:
        raise AudioError(f"{path}: is a folder, not an audio file") from None
    except OSError as err:
        raise AudioError(f"{path}: cannot be opened ({err.strerror or err})") from None
    os.close(fd)


def duration(path: str | Path) -> float | None:
    """Seconds of audio in a file from its header (no decoding), or None when the header does not say."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception:  # noqa: BLE001 - formats libsndfile cannot read: no cheap answer
        return None
    return info.frames / info.samplerate if info.samplerate else None


def load(path: str | Path, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Read a file -> (float32 `[C, T]`, sample_rate). Raises AudioError naming the file.

    max_seconds: refuse a longer file from its header, before decoding it (a 2-hour file would otherwise
    take gigabytes just to be refused).
    """
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    _readable(path)
    if max_seconds is not None:
        seconds = duration(path)
        if seconds is not None and seconds > max_seconds:
            raise AudioError(too_long_message(seconds, max_seconds, str(path)))
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
    return as_float32(np.concatenate(planar, axis=1), str(path)), int(sr)


def as_float32(audio: Any, name: str = "audio") -> np.ndarray:
    """numpy or torch samples (any shape) -> float32 numpy of the same shape, scaled to [-1, 1].

    Float input is cast as it is. Integer PCM is scaled by 1/2**(bits - 1): int16 by 1/32768, int32 by
    1/2**31, int8 by 1/128; unsigned input is offset binary (8-bit WAV): (x - 2**(bits - 1)) / 2**(bits - 1).
    Booleans, complex numbers and objects are an AudioError.
    """
    if hasattr(audio, "detach"):  # a torch tensor
        t = audio.detach().cpu()
        if t.is_complex():
            raise AudioError(f"{name}: complex samples are not audio; pass real float32 samples [C, T]")
        audio = t.float().numpy() if t.is_floating_point() else t.numpy()
    arr = np.asarray(audio)
    kind = arr.dtype.kind
    if kind == "f":
        return arr.astype(np.float32, copy=False)
    if kind in "iu":
        half = float(2 ** (8 * arr.dtype.itemsize - 1))
        x = arr.astype(np.float32)
        if kind == "u":
            x -= half
        x *= 1.0 / half  # a power of two: exact
        return x
    raise AudioError(f"{name}: samples of dtype {arr.dtype} are not audio; pass float32 samples in [-1, 1] "
                     "(or integer PCM, which is scaled)")


def _check_layout(audio: np.ndarray, name: str) -> None:
    """`[C, T]` or an AudioError that says what the array looks like."""
    if audio.ndim != 2:
        raise AudioError(f"{name}: expected audio [C, T] (channels first), got shape {tuple(audio.shape)}")
    c, t = audio.shape
    if c > MAX_CHANNELS and c > t:
        raise AudioError(f"{name}: shape {tuple(audio.shape)} looks like [T, C] ({t} channels of {c} samples); "
                         f"bench expects channels first, [C, T]: pass audio.T")


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
    """`[C, T]` (or mono `[T]`) -> `[channels, T]`: mix down to mono (mean) or copy mono up. Integer PCM is
    scaled to float first (`as_float32`); a time-first `[T, C]` array and other channel counts are an error."""
    if hasattr(audio, "detach") or np.asarray(audio).dtype.kind != "f":
        audio = as_float32(audio)
    if audio.ndim == 1:
        audio = audio[None]
    _check_layout(audio, "audio")
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


def check(audio: np.ndarray, sample_rate: int, min_seconds: float = 0.0, name: str = "audio",
          max_seconds: float | None = None) -> None:
    """Raise AudioError unless `audio` is float `[C, T]` with finite samples, a peak in
    [SILENCE_PEAK, MAX_PEAK] and a length of at least `min_seconds` and at most `max_seconds` (None: no limit)."""
    arr = np.asarray(audio)
    if arr.dtype.kind != "f":
        raise AudioError(f"{name}: {arr.dtype} samples where float samples in [-1, 1] are expected; convert with "
                         "bench.audio.as_float32 (int16 PCM is scaled by 1/32768)")
    _check_layout(arr, name)
    if arr.size == 0 or arr.shape[-1] == 0:
        raise AudioError(f"{name}: empty (0 samples)")
    seconds = arr.shape[-1] / sample_rate
    if max_seconds is not None and seconds > max_seconds:  # before any pass over a huge array
        raise AudioError(too_long_message(seconds, max_seconds, name))
    if not np.all(np.isfinite(arr)):
        raise AudioError(f"{name}: contains NaN or Inf samples")
    peak = float(np.max(np.abs(arr)))
    if peak > MAX_PEAK:
        raise AudioError(f"{name}: peak {peak:.1e}: a float file must hold samples in [-1, 1]; normalise it")
    if peak < SILENCE_PEAK:
        raise AudioError(f"{name}: silent (peak {20 * math.log10(max(peak, 1e-12)):.0f} dBFS)")
    if seconds < min_seconds:
        raise AudioError(f"{name}: too short ({seconds:.3f} s < {min_seconds:g} s)")
