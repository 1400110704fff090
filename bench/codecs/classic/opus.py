"""`opus`: Opus (RFC 6716) through PyAV/libopus, CBR, 20 ms packets, pre-skip removed."""

from __future__ import annotations

import functools
import logging
import math
from fractions import Fraction
from typing import Sequence

from bench.codecs.base import CodecError, CodecMeta, Encoded, OperatingPoint
from bench.codecs.classic.common import (
    _Classic, _check_decode_rate, _codes_from_payload, _encode_frames, _frames_to_mono, _import_av,
    _measured_bitrate, _number, _payload_of, _prepare, _stack, _tidy,
)

log = logging.getLogger(__name__)


# -- Opus -------------------------------------------------------------------------------------------

OPUS_KBPS = (6, 8, 12, 16, 24, 32, 64)
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
OPUS_APPLICATIONS = ("audio", "voip", "lowdelay")
OPUS_FRAME_MS = 20  # libopus default packet duration; meta.frame_rate = 50 packets/s


@functools.lru_cache(maxsize=64)
def _opus_header(sample_rate: int, kbps: float, application: str) -> bytes:
    """The OpusHead (RFC 7845) libopus writes for these settings: it carries the pre-skip (delay)."""
    return bytes(_opus_encoder(sample_rate, kbps, application).extradata)


def _opus_encoder(sample_rate: int, kbps: float, application: str, fec_loss: float = 0):
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
    if fec_loss:  # in-band FEC, tuned for this expected loss percentage (OPUS_SET_PACKET_LOSS_PERC)
        ctx.options = {**ctx.options, "fec": "1", "packet_loss": str(int(round(fec_loss)))}
    ctx.open()
    return ctx




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
    `fec=True`: the encoder adds in-band forward error correction (LBRR, a coarse copy of each frame in the
    next packet) for an expected loss of `fec_loss` percent (default 10); it costs bits of the same CBR
    budget, and libopus adds it only in SILK/hybrid modes at rates that can afford it (measured here, 20 ms
    CBR with fec_loss=20: no FEC data at 6-16 kbps, most packets at 24 kbps). A packet-loss channel then
    recovers a lost packet from the next one when that one arrives (`decode_packets`).
    """

    name = "opus"
    code_version = "1"
    licence = "BSD-3-Clause (libopus)"

    def __init__(self, kbps: float = 6, sample_rate: int = 48000, application: str = "audio", fec: bool = False,
                 fec_loss: float = 10):
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
        self.fec = fec if isinstance(fec, bool) else str(fec).strip().lower() in ("1", "true", "yes", "on")
        fec_loss = _number(fec_loss, self.name, "fec_loss")
        if not 0 < fec_loss <= 100:
            raise CodecError(f"codec 'opus': fec_loss is the expected packet loss in percent, 1..100; got {fec_loss:g}")
        self.fec_loss = fec_loss if self.fec else 0
        self.options = {"kbps": _tidy(kbps)}
        if sample_rate != 48000:
            self.options["sample_rate"] = sample_rate
        if application != "audio":
            self.options["application"] = application
        if self.fec:
            self.options.update(fec=True, fec_loss=_tidy(fec_loss))
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

    def encode(self, wav, sample_rate: int | None = None, lengths: list[int] | None = None) -> Encoded:
        """wav float32 `[B, C, T]` at meta.sample_rate (or `sample_rate`) -> Encoded, codes `[B, 1, N]` bytes."""
        x = _prepare(self, wav, self.sample_rate, 1, sample_rate, lengths)
        payload, sizes = [], []
        for item in x:
            ctx = _opus_encoder(self.sample_rate, self.kbps, self.application, self.fec_loss)
            packets = _encode_frames(ctx, item[0], "flt")
            sizes.append([p.size for p in packets])
            payload.append(b"".join(bytes(p) for p in packets))
        lengths = [item.shape[-1] for item in x]
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
        _check_decode_rate(enc, self.sample_rate, self.name)
        all_sizes = enc.extra.get("packet_sizes")
        items = [self._split(data, all_sizes[i] if all_sizes else None) for i, data in enumerate(_payload_of(enc))]
        return self.decode_packets(items, enc.lengths)

    def packets(self, enc: Encoded, i: int) -> list[bytes]:
        """Item i's 20 ms packets, in order."""
        sizes = enc.extra.get("packet_sizes")
        return self._split(_payload_of(enc)[i], sizes[i] if sizes else None)

    @property
    def pre_skip(self) -> int:
        """Samples at 48 kHz the decoder drops at the start (OpusHead pre-skip, RFC 7845 section 5.1)."""
        header = _opus_header(self.sample_rate, self.kbps, self.application)
        return int.from_bytes(header[10:12], "little")

    def decode_packets(self, items: Sequence[Sequence[bytes | None]], lengths: Sequence[int]):
        """Per item its packets in order, None for one lost on the way -> float32 `[B, 1, T]` at meta.sample_rate.

        A lost packet is concealed by libopus's own packet loss concealment (PLC). FFmpeg's decode API has no
        "packet lost" call (an empty packet means end of stream), so the decoder is given a packet holding only
        the TOC byte of the last packet received, as frame-count code 0 (one frame of 0 bytes): libopus treats a
        frame payload of 0 or 1 bytes as lost (opus_decode_frame) and extrapolates one frame duration (20 ms).
        Packets lost before any has arrived decode to silence (there is nothing to extrapolate from), 20 ms
        each, so the packets after them keep their place in time. No packet lost: the plain decode.
        A stream encoded with `fec=True` recovers a lost packet whose next packet arrived from that packet's
        FEC data; that needs libopus's decode_fec, which FFmpeg does not expose, so such items are decoded by
        libopus directly (bench/codecs/classic/libopus.py; its plain decode equals PyAV's sample for sample).
        """
        import numpy as np

        from bench.audio import resample

        av = _import_av()
        header = _opus_header(self.sample_rate, self.kbps, self.application)
        out = []
        for packets in items:
            if self.fec and any(p is None for p in packets):
                out.append(resample(self._decode_fec(packets)[None], 48000, self.sample_rate))
                continue
            ctx = av.CodecContext.create("libopus", "r")
            ctx.extradata = header  # carries the pre-skip, which the decoder then drops
            ctx.open()
            frames, leading, last = [], 0, None
            for packet in packets:
                if packet is None:
                    if last is None:
                        leading += 1
                        continue
                    packet = bytes([last[0] & 0xFC])  # TOC only, code 0: a 0-byte frame = lost (PLC)
                else:
                    last = packet
                frames.extend(ctx.decode(av.Packet(packet)))
            frames.extend(ctx.decode(None))
            y = _frames_to_mono(frames)
            rate = frames[0].sample_rate if frames else 48000
            if leading:  # silence in their place; the pre-skip then falls on it, as it would on the packets
                y = np.concatenate([np.zeros(leading * rate * OPUS_FRAME_MS // 1000, np.float32), y])
            out.append(resample(y[None], rate, self.sample_rate))
        return _stack(out, lengths)

    def _decode_fec(self, packets: Sequence[bytes | None]):
        """One item's packets (None = lost) -> mono float32 `[T]` at 48 kHz through libopus: a lost packet is
        decoded from the next packet's FEC data when that one arrived, else concealed (PLC); silence before the
        first packet; the pre-skip dropped as FFmpeg drops it."""
        import numpy as np

        from bench.codecs.classic.libopus import Decoder

        dec = Decoder()
        n = Decoder.RATE * OPUS_FRAME_MS // 1000
        parts, started = [], False
        for j, packet in enumerate(packets):
            following = packets[j + 1] if j + 1 < len(packets) else None
            if packet is not None:
                parts.append(dec.decode(packet, n))
                started = True
            elif following is not None:
                parts.append(dec.decode(following, n, fec=True))
                started = True
            elif started:
                parts.append(dec.decode(None, n))
            else:
                parts.append(np.zeros(n, np.int16))
        dec.close()
        y = np.concatenate(parts).astype(np.float32) / 32768.0 if parts else np.zeros(0, np.float32)
        return y[self.pre_skip:]
