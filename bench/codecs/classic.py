"""Weight-free codecs: identity, Opus and MP3 (through PyAV) and Codec 2 (through pycodec2).

All take float32 `[B, C, T]` at `codec.meta.sample_rate` (or at `sample_rate=` given to `encode`,
resampled here), mix to the codec's channels (mono for Opus, MP3, Codec 2) and return `Encoded`
whose codes are the bitstream's bytes, int64 `[B, 1, N]` padded with -1 (identity: see its class).
`Encoded.bitrate` is measured from the bytes actually produced over the batch: 8 x bytes / seconds
of input. Opus and MP3 count packet payload bytes only (no Ogg/ID3/Xing container overhead); Codec 2
counts its frames' bits packed end to end (no per-frame byte padding).

Decoded audio is time-aligned with the input: each codec's delay (Opus pre-skip, LAME's encoder +
decoder delay, Codec 2's analysis/synthesis delay) is removed, then trimmed/padded to the input length.
"""

from __future__ import annotations

import functools
import logging
import math
from fractions import Fraction
from typing import Any, ClassVar, Sequence

import numpy as np

from bench.codecs.base import Codec, CodecError, CodecMeta, Encoded, OperatingPoint

log = logging.getLogger(__name__)


# -- shared helpers ---------------------------------------------------------------------------------


def _import_av():
    try:
        import av
    except ImportError as err:  # pragma: no cover - av is a core dependency
        raise CodecError("Opus and MP3 need PyAV: pip install 'av>=12'") from err
    return av


def _as_numpy_batch(wav: Any, name: str) -> np.ndarray:
    """torch/numpy `[B, C, T]` -> float32 numpy `[B, C, T]`; a clear error for other shapes."""
    if hasattr(wav, "detach"):
        wav = wav.detach().float().cpu().numpy()
    x = np.asarray(wav, dtype=np.float32)
    if x.ndim != 3 or x.shape[-1] == 0:
        raise CodecError(
            f"codec {name!r}: expected audio [B, C, T] with T > 0, got shape {tuple(x.shape)}; "
            "add batch/channel axes with wav[None] or wav[None, None]"
        )
    return x


def _prepare(wav: Any, name: str, codec_rate: int, channels: int | None, sample_rate: int | None) -> np.ndarray:
    """Input `[B, C, T]` at `sample_rate` (default: codec_rate) -> numpy `[B, channels, T']` at codec_rate."""
    from bench import audio as au

    x = _as_numpy_batch(wav, name)
    if channels is not None and x.shape[1] != channels:
        try:
            x = np.stack([au.to_channels(item, channels) for item in x])
        except au.AudioError as err:
            raise CodecError(f"codec {name!r}: {err}") from err
    if sample_rate is not None and int(sample_rate) != codec_rate:
        x = np.stack([au.resample(item, int(sample_rate), codec_rate) for item in x])
    return np.ascontiguousarray(x, dtype=np.float32)


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
    """Common parts of the weight-free codecs."""

    licence: ClassVar[str] = ""

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

    def encode(self, wav, sample_rate: int | None = None) -> Encoded:
        """wav float32 `[B, C, T]` (at `sample_rate`, else meta.sample_rate) -> Encoded, codes `[B, C, T]`."""
        import torch

        x = _as_numpy_batch(wav, self.name)
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
        return Encoded(codes=bits, bitrate=bitrate, lengths=[x.shape[-1]] * x.shape[0],
                       sample_rate=int(rate or 0), payload=payload)

    def decode(self, enc: Encoded):
        """Encoded -> float32 `[B, C, T]`, the input exactly."""
        import torch

        codes = enc.codes.detach().cpu().numpy()
        x = codes.astype(np.int32).view(np.float32)
        return torch.from_numpy(np.ascontiguousarray(x[..., : max(enc.lengths)]))


# -- Opus -------------------------------------------------------------------------------------------

OPUS_KBPS = (6, 8, 12, 16, 24, 32, 64)
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
OPUS_APPLICATIONS = ("audio", "voip", "lowdelay")
OPUS_FRAME_MS = 20  # libopus default packet duration; meta.frame_rate = 50 packets/s


@functools.lru_cache(maxsize=64)
def _opus_header(sample_rate: int, kbps: float, application: str) -> bytes:
    """The OpusHead (RFC 7845) libopus writes for these settings: it carries the pre-skip (delay)."""
    return bytes(_opus_encoder(sample_rate, kbps, application).extradata)


def _opus_encoder(sample_rate: int, kbps: float, application: str):
    av = _import_av()
    ctx = av.CodecContext.create("libopus", "w")
    ctx.sample_rate = sample_rate
    ctx.layout = "mono"
    ctx.format = "flt"
    ctx.bit_rate = int(round(kbps * 1000))
    ctx.time_base = Fraction(1, sample_rate)
    # Hard CBR: every packet has the nominal size, so the measured rate is the nominal one and
    # packets can be split again from the concatenated bytes without a length table.
    ctx.options = {"vbr": "off", "application": application, "frame_duration": str(OPUS_FRAME_MS)}
    ctx.open()
    return ctx


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


class Opus(_Classic):
    """Opus (RFC 6716) through PyAV's libopus, mono, hard CBR (`vbr=off`), 20 ms packets.

    Options: `kbps` (any rate from 6 to 256; the operating points are 6, 8, 12, 16, 24, 32,
    64), `sample_rate` (8000, 12000, 16000, 24000 or 48000; default 48000), `application` ("audio",
    default, "voip" or "lowdelay"). `bitrate=K` picks the nearest operating point. Default 6 kbps.
    Audio `[B, C, T]` at `sample_rate` in, mono `[B, 1, T]` at `sample_rate` out; the libopus decoder
    always works at 48 kHz, so other rates are resampled back (soxr) after decoding.
    Alignment: the decoder is given the encoder's OpusHead, so it drops the pre-skip itself
    (312 samples at 48 kHz for "audio"); then trimmed/padded to the input length. CELT packets
    (64 kbps here) come out sample-aligned; libopus's SILK/hybrid paths (6-32 kbps) leave up to ~3
    samples (0.06 ms) of offset at 48 kHz, ~1 at 16 kHz: the codec's own behaviour, not corrected.
    Bitrate: packet payload bytes (no Ogg pages, no OpusHead/OpusTags), including the flush packet.
    """

    name = "opus"
    licence = "BSD-3-Clause (libopus)"

    def __init__(self, kbps: float = 6, sample_rate: int = 48000, application: str = "audio"):
        kbps = _number(kbps, self.name, "kbps")
        if not 6 <= kbps <= 256:
            raise CodecError(
                f"codec 'opus': kbps={kbps:g} is outside 6..256 kbps (libopus, mono); "
                f"operating points: {', '.join(map(str, OPUS_KBPS))}"
            )
        sample_rate = int(_number(sample_rate, self.name, "sample_rate"))
        self._check_choice(self.name, "sample_rate", sample_rate, OPUS_RATES)
        self._check_choice(self.name, "application", application, OPUS_APPLICATIONS)
        self.kbps, self.sample_rate, self.application = kbps, sample_rate, application
        self.options = {"kbps": _tidy(kbps)}
        if sample_rate != 48000:
            self.options["sample_rate"] = sample_rate
        if application != "audio":
            self.options["application"] = application
        self.meta = CodecMeta(
            name="opus", sample_rate=sample_rate, channels=1, operating_points=OPUS_KBPS,
            frame_rate=1000.0 / OPUS_FRAME_MS, needs_weights=False, licence=self.licence, paper="RFC 6716",
        )

    @classmethod
    def operating_points(cls) -> list[OperatingPoint]:
        return [OperatingPoint(float(k), {"kbps": k}, f"opus {k} kbps") for k in OPUS_KBPS]

    @property
    def packet_bytes(self) -> int:
        """Bytes per CBR packet: kbps x 20 ms / 8, rounded half up as libopus does (13 kbps -> 33)."""
        return int(math.floor(self.kbps * OPUS_FRAME_MS / 8 + 0.5))

    def encode(self, wav, sample_rate: int | None = None) -> Encoded:
        """wav float32 `[B, C, T]` at meta.sample_rate (or `sample_rate`) -> Encoded, codes `[B, 1, N]` bytes."""
        x = _prepare(wav, self.name, self.sample_rate, 1, sample_rate)
        payload, sizes = [], []
        for item in x:
            ctx = _opus_encoder(self.sample_rate, self.kbps, self.application)
            packets = _encode_frames(ctx, item[0], "flt")
            sizes.append([p.size for p in packets])
            payload.append(b"".join(bytes(p) for p in packets))
        lengths = [x.shape[-1]] * x.shape[0]
        return Encoded(
            codes=_codes_from_payload(payload), bitrate=_measured_bitrate(payload, lengths, self.sample_rate),
            lengths=lengths, sample_rate=self.sample_rate, payload=payload, extra={"packet_sizes": sizes},
        )

    def _split(self, data: bytes, sizes: Sequence[int] | None) -> list[bytes]:
        if sizes is None:  # hard CBR: equal packets
            n = self.packet_bytes
            if n <= 0 or len(data) % n:
                raise CodecError(
                    f"codec 'opus': {len(data)} bytes do not split into {n}-byte CBR packets; "
                    "keep Encoded.extra['packet_sizes'] with the codes"
                )
            sizes = [n] * (len(data) // n)
        out, offset = [], 0
        for s in sizes:
            out.append(data[offset : offset + s])
            offset += s
        return out

    def decode(self, enc: Encoded):
        """Encoded -> float32 `[B, 1, T]` at meta.sample_rate, aligned with and as long as the input."""
        from bench.audio import resample

        av = _import_av()
        _check_decode_rate(enc, self.sample_rate, self.name)
        all_sizes = enc.extra.get("packet_sizes")
        header = _opus_header(self.sample_rate, self.kbps, self.application)
        items = []
        for i, data in enumerate(_payload_of(enc)):
            ctx = av.CodecContext.create("libopus", "r")
            ctx.extradata = header  # carries the pre-skip, which the decoder then drops
            ctx.open()
            frames = []
            for packet in self._split(data, all_sizes[i] if all_sizes else None):
                frames.extend(ctx.decode(av.Packet(packet)))
            frames.extend(ctx.decode(None))
            y = _frames_to_mono(frames)
            rate = frames[0].sample_rate if frames else 48000
            items.append(resample(y[None], rate, self.sample_rate))
        return _stack(items, enc.lengths)


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

    def encode(self, wav, sample_rate: int | None = None) -> Encoded:
        """wav float32 `[B, C, T]` at meta.sample_rate (or `sample_rate`) -> Encoded, codes `[B, 1, N]` bytes."""
        av = _import_av()
        x = _prepare(wav, self.name, self.sample_rate, 1, sample_rate)
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
        lengths = [x.shape[-1]] * x.shape[0]
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

    def encode(self, wav, sample_rate: int | None = None) -> Encoded:
        """wav float32 `[B, C, T]` at 8 kHz (or `sample_rate`) -> Encoded, codes `[B, 1, N]` packed bytes."""
        x = _prepare(wav, self.name, self.SAMPLE_RATE, 1, sample_rate)
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
        lengths = [x.shape[-1]] * x.shape[0]
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
