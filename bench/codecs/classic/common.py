"""Helpers shared by the weight-free codecs: batching, payload bytes as codes, measured bitrate."""

from __future__ import annotations

import logging
import math
from typing import Any, ClassVar, Sequence

import numpy as np

from bench.codecs.base import Codec, CodecError, Encoded

log = logging.getLogger(__name__)


# -- shared helpers ---------------------------------------------------------------------------------


def _import_av():
    try:
        import av
    except ImportError as err:  # pragma: no cover - av is a core dependency
        raise CodecError("Opus and MP3 need PyAV: pip install 'av>=12'") from err
    return av


def _as_numpy_batch(codec: Codec, wav: Any) -> np.ndarray:
    """torch/numpy `[B, C, T]` -> float32 numpy `[B, C, T]`, through `codec.check_input` (dtype, layout,
    NaN/Inf and level checks; clipping for codecs with `clip_input`)."""
    return codec.check_input(wav).numpy()


def _prepare(codec: Codec, wav: Any, codec_rate: int, channels: int | None, sample_rate: int | None,
             lengths: Sequence[int] | None = None) -> np.ndarray | list[np.ndarray]:
    """Input `[B, C, T]` at `sample_rate` (default: codec_rate) -> numpy `[B, channels, T']` at codec_rate. With
    `lengths` (where each item of a zero-padded batch ends): a list of each item's own samples `[channels, T'_i]`,
    so that every item is coded as if alone."""
    from bench import audio as au

    x = codec.check_input(wav, None if lengths is None else list(lengths)).numpy()
    if channels is not None and x.shape[1] != channels:
        try:
            x = np.stack([au.to_channels(item, channels) for item in x])
        except au.AudioError as err:
            raise CodecError(f"codec {codec.name!r}: {err}") from err
    items = list(x) if lengths is None else [item[:, : int(n)] for item, n in zip(x, lengths)]
    if sample_rate is not None and int(sample_rate) != codec_rate:
        items = [au.resample(item, int(sample_rate), codec_rate) for item in items]
    if lengths is not None:
        return [np.ascontiguousarray(item, dtype=np.float32) for item in items]
    return np.ascontiguousarray(np.stack(items), dtype=np.float32)


def _codes_from_payload(payload: Sequence[bytes]):
    """Per-item bytes -> int64 `[B, 1, N]`, N the longest item, padded with -1."""
    import torch

    n = max((len(p) for p in payload), default=0)
    codes = torch.full((len(payload), 1, n), -1, dtype=torch.int64)
    for i, p in enumerate(payload):
        if p:
            codes[i, 0, : len(p)] = torch.from_numpy(np.frombuffer(p, dtype=np.uint8).astype(np.int64))
    return codes


def _payload_of(enc: Encoded) -> list[bytes]:
    """The exact bytes per item: `enc.payload` when present, else rebuilt from the codes."""
    if enc.payload is not None:
        return [bytes(p) for p in enc.payload]
    codes = enc.codes.detach().cpu().numpy() if hasattr(enc.codes, "detach") else np.asarray(enc.codes)
    if codes.ndim != 3 or codes.shape[1] != 1:
        raise CodecError(f"expected byte codes [B, 1, N], got shape {tuple(codes.shape)}")
    return [row[row >= 0].astype(np.uint8).tobytes() for row in codes[:, 0]]


def _measured_bitrate(payload: Sequence[bytes], lengths: Sequence[int], sample_rate: int) -> float:
    """Bits per second actually produced over the batch: 8 x total bytes / total input seconds."""
    seconds = sum(lengths) / float(sample_rate)
    return 8.0 * sum(len(p) for p in payload) / seconds if seconds > 0 else float("nan")


def _stack(items: Sequence[np.ndarray], lengths: Sequence[int]):
    """Per-item `[C, T_i]` -> float32 torch `[B, C, max(lengths)]`, each trimmed/zero-padded to its length."""
    import torch

    from bench.audio import fit_length

    t = max(lengths)
    out = np.stack([fit_length(fit_length(np.asarray(a, np.float32), n), t) for a, n in zip(items, lengths)])
    return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32))


def _frames_to_mono(frames) -> np.ndarray:
    """PyAV audio frames (any sample format) -> float32 mono `[T]` in [-1, 1]."""
    if not frames:
        return np.zeros(0, np.float32)
    parts = []
    for f in frames:
        a = f.to_ndarray()
        if not f.format.is_planar:  # packed: [1, T*C]
            a = a.reshape(-1, len(f.layout.channels)).T
        parts.append(a.mean(axis=0) if a.shape[0] > 1 else a[0])
    y = np.concatenate(parts)
    if np.issubdtype(y.dtype, np.integer):  # e.g. libopus decodes to s16
        y = y.astype(np.float32) / float(-np.iinfo(y.dtype).min)
    return y.astype(np.float32)


def _check_decode_rate(enc: Encoded, rate: int, name: str) -> None:
    if int(enc.sample_rate) != int(rate):
        raise CodecError(
            f"codec {name!r} runs at {rate} Hz but this Encoded was made at {enc.sample_rate} Hz; "
            "decode with the codec (and options) that encoded it"
        )


class _Classic(Codec):
    """Common parts of the weight-free codecs. Their encoders take any channel count (mixed to mono) and
    samples in [-1, 1] only: louder input is clipped with a warning, absurd peaks (> 100) refused
    (`Codec.check_input`): LAME aborts the whole process on samples around 1e6 or on NaN."""

    licence: ClassVar[str] = ""
    mixes_channels: ClassVar[bool] = True
    clip_input: ClassVar[bool] = True

    def embed(self, wav):
        raise NotImplementedError(
            f"codec {self.name!r} is a classic signal codec with no learned latent to embed; "
            "the HEAR probe has its own log-mel reference row, so skip the embedding task for it"
        )

    @staticmethod
    def _check_choice(name: str, option: str, value: Any, allowed: Sequence[Any]) -> None:
        if value not in allowed:
            raise CodecError(
                f"codec {name!r}: {option}={value!r} is not supported; allowed: {', '.join(map(str, allowed))}"
            )


def _number(value: Any, name: str, option: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise CodecError(f"codec {name!r}: {option} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise CodecError(f"codec {name!r}: {option} must be finite, got {value!r}")
    return v


def _tidy(v: float) -> int | float:
    """6.0 -> 6 so labels read `opus:kbps=6`."""
    return int(v) if float(v).is_integer() else float(v)

def _encode_frames(ctx, x: np.ndarray, fmt: str) -> list:
    """Feed mono float32 `[T]` to an opened PyAV encoder in frame_size chunks; return all packets."""
    av = _import_av()
    step = ctx.frame_size or 1152
    packets = []
    for start in range(0, x.shape[-1], step):
        chunk = np.ascontiguousarray(x[None, start : start + step], dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(chunk, format=fmt, layout="mono")
        frame.sample_rate = ctx.sample_rate
        frame.pts = start
        frame.time_base = ctx.time_base
        packets.extend(ctx.encode(frame))
    packets.extend(ctx.encode(None))  # flush: the encoder's look-ahead still holds samples
    return packets
