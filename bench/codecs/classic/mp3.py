"""`mp3`: MP3 through PyAV/libmp3lame, CBR, the encoder + decoder delay removed."""

from __future__ import annotations

import logging
from fractions import Fraction
from typing import Any

from bench.codecs.base import CodecError, CodecMeta, Encoded, OperatingPoint
from bench.codecs.classic.common import (
    _Classic, _check_decode_rate, _codes_from_payload, _encode_frames, _frames_to_mono, _import_av,
    _measured_bitrate, _number, _payload_of, _prepare, _stack,
)

log = logging.getLogger(__name__)


# -- MP3 --------------------------------------------------------------------------------------------

# CBR bitrates (kbps) each MPEG version allows; the version follows the sample rate.
MP3_TABLES = {
    "MPEG-1": ((32000, 44100, 48000), (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)),
    "MPEG-2": ((16000, 22050, 24000), (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)),
    "MPEG-2.5": ((8000, 11025, 12000), (8, 16, 24, 32, 40, 48, 56, 64)),
}
MP3_RATES = tuple(sorted(r for rates, _ in MP3_TABLES.values() for r in rates))
# Operating points: kbps -> sample rate (8 kbps needs MPEG-2.5 at 8 kHz to sound like anything).
MP3_POINTS = {8: 8000, 16: 16000, 24: 16000, 32: 24000, 64: 24000}
# LAME's encoder delay (576) + the MP3 decoder's delay (528 + 1): what libmp3lame reports as
# initial_padding (first packet pts = -1105); measured as the cross-correlation lag of the raw decode.
MP3_DELAY = 1105


def _mp3_allowed(sample_rate: int) -> tuple[int, ...]:
    for rates, kbps in MP3_TABLES.values():
        if sample_rate in rates:
            return kbps
    return ()


class MP3(_Classic):
    """MP3 through PyAV's libmp3lame (CBR), mono.

    Options: `kbps` and `sample_rate`; operating points 8 kbps at 8 kHz (MPEG-2.5), 16 and 24 kbps at
    16 kHz, 32 and 64 kbps at 24 kHz (MPEG-2), each carrying its sample rate in its options. Default
    16 kbps at 16 kHz. `kbps` without `sample_rate` takes the operating point's rate, else the lowest
    rate whose MPEG version allows that bitrate. meta.sample_rate follows the option.
    Audio `[B, C, T]` at sample_rate in, mono `[B, 1, T]` at sample_rate out. Alignment: the raw frames
    decode with LAME's 1105-sample delay in front, which is dropped. Bitrate: MP3 frame bytes
    (headers included, they are part of the stream; no ID3/Xing tag), including the flush frames.
    """

    name = "mp3"
    code_version = "1"
    licence = "LGPL-2.0 (LAME)"

    def __init__(self, kbps: float = 16, sample_rate: int | None = None):
        kbps = _number(kbps, self.name, "kbps")
        if not float(kbps).is_integer():
            raise CodecError(f"codec 'mp3': kbps must be a whole number from the MPEG tables, got {kbps:g}")
        kbps = int(kbps)
        if sample_rate is None:
            sample_rate = MP3_POINTS.get(kbps) or next(
                (r for r in (16000, 24000, 8000, 32000, 44100, 48000) if kbps in _mp3_allowed(r)), None
            )
            if sample_rate is None:
                raise CodecError(
                    f"codec 'mp3': no MPEG sample rate allows {kbps} kbps; operating points: "
                    f"{', '.join(f'{k} kbps at {r} Hz' for k, r in MP3_POINTS.items())}"
                )
        sample_rate = int(_number(sample_rate, self.name, "sample_rate"))
        self._check_choice(self.name, "sample_rate", sample_rate, MP3_RATES)
        allowed = _mp3_allowed(sample_rate)
        if kbps not in allowed:
            raise CodecError(
                f"codec 'mp3': {kbps} kbps is not a CBR bitrate at {sample_rate} Hz; allowed there: "
                f"{', '.join(map(str, allowed))} kbps"
            )
        self.kbps, self.sample_rate = kbps, sample_rate
        self.options = {"kbps": kbps, "sample_rate": sample_rate}
        self.meta = CodecMeta(
            name="mp3", sample_rate=sample_rate, channels=1, operating_points=tuple(MP3_POINTS),
            frame_rate=None, needs_weights=False, licence=self.licence, paper="ISO/IEC 11172-3, 13818-3",
        )

    @classmethod
    def operating_points(cls) -> list[OperatingPoint]:
        return [
            OperatingPoint(float(k), {"kbps": k, "sample_rate": r}, f"mp3 {k} kbps ({r / 1000:g} kHz)")
            for k, r in MP3_POINTS.items()
        ]

    @classmethod
    def nearest_operating_point(cls, kbps: float, options: dict[str, Any] | None = None) -> OperatingPoint:
        """Nearest operating point; with an explicit valid `sample_rate`, the nearest CBR rate at that rate."""
        rate = (options or {}).get("sample_rate")
        allowed = _mp3_allowed(int(rate)) if isinstance(rate, (int, float)) else ()
        if not allowed:
            return super().nearest_operating_point(kbps)
        best = min(allowed, key=lambda k: (abs(k - kbps), k))
        label = f"mp3 {best} kbps ({rate / 1000:g} kHz)"
        return OperatingPoint(float(best), {"kbps": best, "sample_rate": int(rate)}, label)

    def encode(self, wav, sample_rate: int | None = None, lengths: list[int] | None = None) -> Encoded:
        """wav float32 `[B, C, T]` at meta.sample_rate (or `sample_rate`) -> Encoded, codes `[B, 1, N]` bytes."""
        av = _import_av()
        x = _prepare(self, wav, self.sample_rate, 1, sample_rate, lengths)
        payload, delays = [], []
        for item in x:
            ctx = av.CodecContext.create("libmp3lame", "w")
            ctx.sample_rate = self.sample_rate
            ctx.layout = "mono"
            ctx.format = "fltp"
            ctx.bit_rate = self.kbps * 1000
            ctx.time_base = Fraction(1, self.sample_rate)
            ctx.open()
            packets = _encode_frames(ctx, item[0], "fltp")
            if packets and packets[0].pts is not None:
                delays.append(-int(packets[0].pts))
            payload.append(b"".join(bytes(p) for p in packets))
        if any(d != MP3_DELAY for d in delays):
            log.warning("mp3: libmp3lame reports a delay of %s samples, not %d; using the reported one",
                        sorted(set(delays)), MP3_DELAY)
        lengths = [item.shape[-1] for item in x]
        return Encoded(
            codes=_codes_from_payload(payload), bitrate=_measured_bitrate(payload, lengths, self.sample_rate),
            lengths=lengths, sample_rate=self.sample_rate, payload=payload,
            extra={"delay": delays[0] if delays else MP3_DELAY},
        )

    def decode(self, enc: Encoded):
        """Encoded -> float32 `[B, 1, T]` at meta.sample_rate, aligned with and as long as the input."""
        av = _import_av()
        _check_decode_rate(enc, self.sample_rate, self.name)
        delay = int(enc.extra.get("delay", MP3_DELAY))
        items = []
        for data in _payload_of(enc):
            ctx = av.CodecContext.create("mp3float", "r")
            # Raw frames carry no timestamps, so the decoder drops nothing: the delay is removed below.
            packets = ctx.parse(data) + ctx.parse(None)
            frames = []
            for packet in packets:
                frames.extend(ctx.decode(packet))
            frames.extend(ctx.decode(None))
            y = _frames_to_mono(frames)
            if frames and frames[0].sample_rate != self.sample_rate:
                raise CodecError(
                    f"codec 'mp3': stream decodes at {frames[0].sample_rate} Hz, expected {self.sample_rate}; "
                    "decode with the codec (and options) that encoded it"
                )
            items.append(y[None, delay:])
        return _stack(items, enc.lengths)
