"""`identity`: passes audio through unchanged (the metrics' ceiling)."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np

from bench.codecs.base import CodecError, CodecMeta, Encoded, OperatingPoint
from bench.codecs.classic.common import (
    _Classic, _number,
)

log = logging.getLogger(__name__)


# -- identity ---------------------------------------------------------------------------------------

class Identity(_Classic):
    """Passes audio through unchanged: the ceiling of every metric.

    meta.sample_rate is None ("any": the runner gives it the item at the item's own rate) unless the
    `sample_rate` option fixes it; channels None (any). `encode(wav, sample_rate=SR)` tells it the
    rate when none was fixed. Codes: the float32 samples' bit patterns as int64 `[B, C, T]` (K = C
    streams, exact and reversible); payload: the float32 little-endian PCM bytes per item.
    Encoded.bitrate = 32 bits x sample rate x channels (float32 PCM), NaN if the rate is unknown.
    """

    name = "identity"
    code_version = "1"
    clip_input = False  # passes anything in [-100, 100] through exactly
    licence = "-"
    _warned: ClassVar[bool] = False

    def __init__(self, sample_rate: int | None = None):
        if sample_rate is not None:
            sample_rate = int(_number(sample_rate, self.name, "sample_rate"))
            if sample_rate <= 0:
                raise CodecError(f"codec 'identity': sample_rate must be a positive rate in Hz, got {sample_rate}")
        self.options = {} if sample_rate is None else {"sample_rate": sample_rate}
        self.meta = CodecMeta(
            name="identity", sample_rate=sample_rate, channels=None, operating_points=(), frame_rate=None,
            needs_weights=False, licence=self.licence,
        )

    @classmethod
    def operating_points(cls) -> list[OperatingPoint]:
        return []

    @classmethod
    def nearest_operating_point(cls, kbps: float, options: dict[str, Any] | None = None) -> OperatingPoint:
        raise CodecError("codec 'identity' has no bitrate to choose: use plain 'identity' (no bitrate=)")

    def encode(self, wav, sample_rate: int | None = None, lengths: list[int] | None = None) -> Encoded:
        """wav float32 `[B, C, T]` (at `sample_rate`, else meta.sample_rate) -> Encoded, codes `[B, C, T]`."""
        import torch

        x = self.check_input(wav, lengths).numpy()  # lengths: a zero-padded batch passes through padding and all
        rate = sample_rate or self.meta.sample_rate
        if rate is None:
            if not Identity._warned:
                log.warning("identity: sample rate unknown, bitrate reported as NaN; pass encode(wav, sample_rate=SR)")
                Identity._warned = True
            bitrate = float("nan")
        else:
            bitrate = 32.0 * float(rate) * x.shape[1]
        bits = torch.from_numpy(np.ascontiguousarray(x).view(np.int32).astype(np.int64))
        payload = [np.ascontiguousarray(item).astype("<f4").tobytes() for item in x]
        return Encoded(codes=bits, bitrate=bitrate, lengths=list(lengths or [x.shape[-1]] * x.shape[0]),
                       sample_rate=int(rate or 0), payload=payload)

    def decode(self, enc: Encoded):
        """Encoded -> float32 `[B, C, T]`, the input exactly."""
        import torch

        codes = enc.codes.detach().cpu().numpy()
        x = codes.astype(np.int32).view(np.float32)
        return torch.from_numpy(np.ascontiguousarray(x[..., : max(enc.lengths)]))
