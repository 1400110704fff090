"""`codec2`: Codec 2 through pycodec2, frames packed end to end, analysis delay removed."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from bench.codecs.base import CodecError, CodecMeta, Encoded, OperatingPoint
from bench.codecs.classic.common import (
    _Classic, _check_decode_rate, _codes_from_payload, _measured_bitrate, _payload_of, _prepare,
    _stack,
)

log = logging.getLogger(__name__)


# -- Codec 2 ----------------------------------------------------------------------------------------

CODEC2_MODES = ("3200", "2400", "1600", "1400", "1300", "1200", "700C")
# Samples between an input event and its decoded counterpart at 8 kHz: the analysis window is
# centred 160 samples behind the newest input and synthesis overlap-adds one 80-sample frame later;
# 700C's parameter interpolation adds another 80. Measured as the lag of the energy envelopes'
# cross-correlation on gated speech-like signals (medians 159-170 and 239); Codec 2 does not keep
# waveform phase, so alignment is good to about +/-1 ms, not to the sample.
CODEC2_DELAY = {"700C": 240}
CODEC2_DEFAULT_DELAY = 160


def _codec2_mode(mode: Any) -> str:
    text = str(mode).strip().upper()
    if text in ("700", "700C"):
        return "700C"
    if text.endswith(".0"):
        text = text[:-2]
    if text not in CODEC2_MODES:
        raise CodecError(f"codec 'codec2': mode={mode!r} is not supported; allowed: {', '.join(CODEC2_MODES)} (bit/s)")
    return text


class Codec2(_Classic):
    """Codec 2 low-bitrate speech vocoder through pycodec2, 8 kHz mono.

    Option `mode`: 3200, 2400, 1600, 1400, 1300, 1200 or "700C" (bit/s; 700 means 700C); default 3200.
    Audio `[B, C, T]` at 8 kHz in, mono `[B, 1, T]` at 8 kHz out. The encoder sees the input plus
    enough zeros to flush its delay, rounded up to whole frames (20 or 40 ms); the frames' bits are
    packed end to end (so 700C counts 28 bits, not 4 bytes, per 40 ms frame) and the bitrate is
    8 x packed bytes / input seconds. Decoding drops the codec's delay (CODEC2_DELAY) and trims.
    Encoding is deterministic; decoding is not quite: libcodec2 draws unvoiced phases from a
    process-wide random generator, so two decodes of the same codes differ slightly (~1 dB LSD).
    """

    name = "codec2"
    code_version = "1"
    licence = "LGPL-2.1 (libcodec2)"
    SAMPLE_RATE = 8000

    def __init__(self, mode: int | str = 3200):
        self.mode = _codec2_mode(mode)
        self.options = {"mode": self.mode if self.mode == "700C" else int(self.mode)}
        self.meta = CodecMeta(
            name="codec2", sample_rate=self.SAMPLE_RATE, channels=1,
            operating_points=tuple(sorted(p.kbps for p in self.operating_points())), frame_rate=None,
            needs_weights=False, licence=self.licence, paper="Rowe 1997; codec2 (github.com/drowe67/codec2)",
        )

    @classmethod
    def operating_points(cls) -> list[OperatingPoint]:
        points = []
        for m in CODEC2_MODES:
            bps = 700 if m == "700C" else int(m)
            points.append(OperatingPoint(bps / 1000.0, {"mode": m if m == "700C" else bps}, f"codec2 {m}"))
        return points

    def _state(self):
        try:
            import pycodec2
        except ImportError as err:  # pragma: no cover - pycodec2 is a core dependency
            raise CodecError("Codec 2 needs pycodec2: pip install 'pycodec2>=4.1'") from err
        return pycodec2.Codec2(700 if self.mode == "700C" else int(self.mode))

    @property
    def delay(self) -> int:
        return CODEC2_DELAY.get(self.mode, CODEC2_DEFAULT_DELAY)

    def encode(self, wav, sample_rate: int | None = None, lengths: list[int] | None = None) -> Encoded:
        """wav float32 `[B, C, T]` at 8 kHz (or `sample_rate`) -> Encoded, codes `[B, 1, N]` packed bytes."""
        x = _prepare(self, wav, self.SAMPLE_RATE, 1, sample_rate, lengths)
        payload = []
        for item in x:
            state = self._state()
            spf, bits = state.samples_per_frame(), state.bits_per_frame()
            pcm = np.clip(np.round(item[0] * 32767.0), -32768, 32767).astype(np.int16)
            total = -(-(pcm.size + self.delay) // spf) * spf
            pcm = np.concatenate([pcm, np.zeros(total - pcm.size, np.int16)])
            frames = [state.encode(np.ascontiguousarray(pcm[i : i + spf])) for i in range(0, total, spf)]
            # Codec 2 fills each frame MSB first and pads to whole bytes; keep only the real bits.
            unpacked = np.unpackbits(np.frombuffer(b"".join(frames), np.uint8).reshape(len(frames), -1), axis=1)
            payload.append(np.packbits(unpacked[:, :bits].reshape(-1)).tobytes())
        lengths = [item.shape[-1] for item in x]
        return Encoded(
            codes=_codes_from_payload(payload), bitrate=_measured_bitrate(payload, lengths, self.SAMPLE_RATE),
            lengths=lengths, sample_rate=self.SAMPLE_RATE, payload=payload,
        )

    def decode(self, enc: Encoded):
        """Encoded -> float32 `[B, 1, T]` at 8 kHz, delay removed, as long as the input."""
        _check_decode_rate(enc, self.SAMPLE_RATE, self.name)
        items = []
        for data in _payload_of(enc):
            state = self._state()
            bits, nbytes = state.bits_per_frame(), state.bytes_per_frame()
            stream = np.unpackbits(np.frombuffer(data, np.uint8))
            n = stream.size // bits
            framed = np.zeros((n, nbytes * 8), np.uint8)
            framed[:, :bits] = stream[: n * bits].reshape(n, bits)
            packed = np.packbits(framed, axis=1)
            pcm = [state.decode(packed[i].tobytes()) for i in range(n)]
            y = np.concatenate(pcm).astype(np.float32) / 32768.0 if pcm else np.zeros(0, np.float32)
            items.append(y[None, self.delay :])
        return _stack(items, enc.lengths)
