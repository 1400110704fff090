"""Packet-loss channels between a codec's encoder and its decoder (`--channel loss=P[,burst=B,...]`).

    spec = ChannelSpec.parse("loss=0.1,burst=2,seed=0,packet_ms=20,conceal=repeat")
    codec = apply_channel(bench.load_codec("opus", bitrate=6), spec)   # ChannelCodec, or the codec itself at loss 0
    rec = codec.decode(codec.encode(wav))                               # wav [B, C, T] -> [B, C, T]

Options (`key=value`, comma-separated):
- `loss` P in [0, 1): the long-run share of packets lost. `loss=0` is no channel: `apply_channel` returns the
  plain codec (same fingerprint, same cached outputs).
- `burst` B: mean length of a run of lost packets, in packets (B >= 1 and B >= P / (1 - P)). Omitted: losses
  are independent (Bernoulli), whose mean run length is 1 / (1 - P).
- `seed` S (integer >= 0, default 0); `packet_ms` M (default 20): the audio each packet carries.
- `conceal`: what the receiver puts in place of a lost packet (default `auto`: `plc` for Opus, `repeat` for
  every other codec).

Loss model: a two-state Gilbert-Elliott chain over packets, in the "simple Gilbert" reduction of the
four-parameter form (p = P(good -> bad), r = P(bad -> good), k = delivery probability in the good state,
h = delivery probability in the bad state) with k = 1 and h = 0: every packet sent in the bad state is lost,
none in the good one. Then the loss rate is the bad state's stationary share p / (p + r) and a loss run lasts
Geometric(r) packets, mean 1 / r. Solving for the user's P and B: r = 1 / B and p = P r / (1 - P). Without
`burst`, r = 1 - P and p = P: the chain forgets its state and losses are independent. The first packet's state
is drawn from the stationary distribution, so every packet is lost with probability P.

Seeding: item i's pattern comes from numpy's PCG64 seeded with (seed, 64 bits of the sha256 of the item's
sent bitstream: its bytes, or its codes), so it is the same on every run, alone or in a batch, and differs
between items (and between codecs, whose bitstreams differ; the statistics are the same).

Packets: a packet carries whole codec frames, round(packet_ms / frame duration) of them (at least one), so the
packet duration is the nearest whole number of frames (Encodec's 13.3 ms frames: 2 per 20 ms packet = 26.7 ms;
Mimi's 80 ms frames: one per packet; Opus 20 ms, MP3 at 16 kHz 36 ms, Codec 2 1200 40 ms frames). Frames:
token codecs, one column of codes `[K, N]` (all K codebooks of one time step); Opus, one 20 ms packet; MP3, one
MPEG audio frame (from PyAV's parser); Codec 2, one frame's bits (frames are packed end to end).

Concealment (`conceal`):
- `repeat`: the last frame received is sent to the decoder again (token codecs: its codes in every codebook;
  MP3 / Codec 2 / Opus: its bytes or bits; an MP3 frame repeated points its bit reservoir at the wrong bytes,
  as in a receiver that does this). Before any frame has arrived: code 0 (token codecs), a frame that codes
  silence (MP3, Codec 2: the codec's own encoding of zeros), silence (Opus).
- `zero` (token codecs only): code 0 in every codebook.
- `plc` (Opus only): libopus's packet loss concealment (see `Opus.decode_packets`).
- `silence`: the decoder is run as with the default concealment (so its state carries on) and the output
  samples the lost frames decode to are then set to zero: frame j covers
  [j x frame duration - decoder delay, (j+1) x frame duration - decoder delay) of the output (Opus: its 312-sample
  pre-skip at 48 kHz; MP3: LAME's 1105 samples; Codec 2: its analysis delay; token codecs: none).
Codec-specific concealment: Opus's PLC. None of the token codecs here (Encodec, DAC, SemantiCodec) has one of its
own (their decoders take whatever codes they are given), so they offer `repeat` and `zero`.

Identity: a channel is part of the result identity. `ChannelCodec.fingerprint()` hashes the inner codec's
fingerprint, the channel's full canonical spec (every option, concealment resolved) and CHANNEL_VERSION; the
label reads `opus:kbps=6 [loss=0.1,burst=2]`; `meta.channel` (stored with the codec) holds the options, the
inner codec's label and fingerprint, and the frames per packet. Measured bitrates stay those of the bitstream
sent (the encoder does not know about the channel). `code_version` is the inner codec's, so the report judges
the rows' staleness by the inner codec's class; a change to this module that can move outputs bumps
CHANNEL_VERSION instead (it enters the fingerprint).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from bench.codecs.base import Codec, CodecError, CodecMeta, Encoded

log = logging.getLogger(__name__)

CHANNEL_VERSION = "1"
CONCEALMENTS = ("auto", "repeat", "zero", "plc", "silence")
_KEYS = ("loss", "burst", "seed", "packet_ms", "conceal")
_CLASSIC = ("opus", "mp3", "codec2")


class ChannelError(CodecError):
    """A channel spec that cannot be used; the message says what to write instead."""


# -- the spec -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelSpec:
    """A packet-loss channel: loss rate, mean burst length (None: independent losses), seed, packet duration
    and concealment. `ChannelSpec.parse("loss=0.1,burst=2")`; `str(spec)` is its canonical form."""

    loss: float
    burst: float | None = None
    seed: int = 0
    packet_ms: float = 20.0
    conceal: str = "auto"

    def __post_init__(self) -> None:
        if isinstance(self.loss, bool) or not isinstance(self.loss, (int, float)) or not 0 <= self.loss < 1:
            raise ChannelError(f"channel: loss must be a rate in [0, 1) (e.g. loss=0.1 for 10 %), got {self.loss!r}")
        if self.burst is not None:
            if isinstance(self.burst, bool) or not isinstance(self.burst, (int, float)) or not math.isfinite(
                    self.burst) or self.burst < 1:
                raise ChannelError(f"channel: burst is the mean number of packets lost in a row, >= 1; got {self.burst!r}")
            if self.loss > 0 and self.loss / (self.burst * (1 - self.loss)) > 1 + 1e-12:
                least = self.loss / (1 - self.loss)
                raise ChannelError(f"channel: at loss={self.loss:g} bursts average at least {least:.3g} packets "
                                   f"(P / (1 - P)); give burst >= {least:.3g} or a lower loss")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ChannelError(f"channel: seed must be a whole number >= 0, got {self.seed!r}")
        if not isinstance(self.packet_ms, (int, float)) or not math.isfinite(self.packet_ms) or self.packet_ms <= 0:
            raise ChannelError(f"channel: packet_ms must be a positive duration in ms, got {self.packet_ms!r}")
        if self.conceal not in CONCEALMENTS:
            raise ChannelError(f"channel: conceal={self.conceal!r} is not one of {', '.join(CONCEALMENTS)}")

    @classmethod
    def parse(cls, text: "str | ChannelSpec | dict") -> "ChannelSpec":
        """`loss=P[,burst=B,seed=S,packet_ms=M,conceal=C]` (or a ChannelSpec, or a dict of those keys)."""
        if isinstance(text, ChannelSpec):
            return text
        if isinstance(text, dict):
            values = dict(text)
        else:
            values = {}
            for part in str(text).split(","):
                part = part.strip()
                if not part:
                    continue
                key, eq, value = part.partition("=")
                key = key.strip()
                if not eq:
                    raise ChannelError(f"channel: {part!r} is not key=value; write e.g. loss=0.1,burst=2")
                values[key] = value.strip()
        unknown = [k for k in values if k not in _KEYS]
        if unknown:
            raise ChannelError(f"channel: unknown option {unknown[0]!r}; options: {', '.join(_KEYS)} "
                               "(e.g. loss=0.1,burst=2,seed=0,packet_ms=20,conceal=repeat)")
        if "loss" not in values:
            raise ChannelError("channel: give the loss rate, e.g. loss=0.1")
        out: dict[str, Any] = {}
        for key, value in values.items():
            try:
                if key in ("loss", "packet_ms"):
                    out[key] = float(value)
                elif key == "burst":
                    out[key] = None if value in (None, "", "none", "independent") else float(value)
                elif key == "seed":
                    number = float(value)
                    if not number.is_integer():
                        raise ValueError
                    out[key] = int(number)
                else:
                    out[key] = str(value)
            except (TypeError, ValueError):
                raise ChannelError(f"channel: {key}={value!r} is not a number") from None
        return cls(**out)

    @property
    def lossless(self) -> bool:
        return self.loss == 0

    def transitions(self) -> tuple[float, float]:
        """(p, r): P(good -> bad) and P(bad -> good) per packet of the simple Gilbert chain with this loss rate
        and mean burst length (independent losses: p = P, r = 1 - P)."""
        if self.burst is None:
            return self.loss, 1.0 - self.loss
        r = 1.0 / self.burst
        return min(1.0, self.loss * r / (1.0 - self.loss)), r

    def mean_burst(self) -> float:
        """Mean number of packets lost in a row."""
        return 1.0 / self.transitions()[1] if self.loss > 0 else 0.0

    def resolved(self, kind: str) -> "ChannelSpec":
        """This spec with `conceal=auto` made concrete for a codec kind ("opus", "mp3", "codec2", "tokens")."""
        conceal = self.conceal
        if conceal == "auto":
            conceal = "plc" if kind == "opus" else "repeat"
        allowed = {"opus": ("plc", "repeat", "silence"), "mp3": ("repeat", "silence"),
                   "codec2": ("repeat", "silence"), "tokens": ("repeat", "zero", "silence")}[kind]
        if conceal not in allowed:
            what = {"opus": "Opus", "mp3": "MP3", "codec2": "Codec 2", "tokens": "a token codec"}[kind]
            raise ChannelError(f"channel: conceal={conceal} does not apply to {what}; use one of {', '.join(allowed)}")
        return dataclasses.replace(self, conceal=conceal)

    def __str__(self) -> str:
        """Canonical form: every option, in a fixed order (what enters the fingerprint)."""
        burst = "independent" if self.burst is None else f"{self.burst:g}"
        return (f"loss={self.loss:g},burst={burst},seed={self.seed},packet_ms={self.packet_ms:g},"
                f"conceal={self.conceal}")

    def label(self) -> str:
        """Short form for tables: the loss rate, then the options that differ from their defaults."""
        parts = [f"loss={self.loss:g}"]
        if self.burst is not None:
            parts.append(f"burst={self.burst:g}")
        if self.seed:
            parts.append(f"seed={self.seed}")
        if self.packet_ms != 20.0:
            parts.append(f"packet_ms={self.packet_ms:g}")
        if self.conceal != "auto":
            parts.append(f"conceal={self.conceal}")
        return ",".join(parts)


# -- the loss process ---------------------------------------------------------------------------------


def gilbert_elliott(n: int, loss: float, burst: float | None, rng: np.random.Generator) -> np.ndarray:
    """bool `[n]`: True where a packet is lost, from the simple Gilbert chain (module docstring)."""
    spec = ChannelSpec(loss=loss, burst=burst)
    out = np.zeros(int(n), dtype=bool)
    if n <= 0 or loss == 0:
        return out
    p, r = spec.transitions()
    u = rng.random(int(n))
    bad = bool(rng.random() < loss)  # the stationary share of the bad state
    for i in range(int(n)):
        out[i] = bad
        bad = (u[i] >= r) if bad else (u[i] < p)
    return out


def item_rng(seed: int, key: bytes) -> np.random.Generator:
    """The generator of one item's pattern: PCG64 seeded with (seed, 64 bits of sha256(key))."""
    digest = int.from_bytes(hashlib.sha256(key).digest()[:8], "little")
    return np.random.Generator(np.random.PCG64([int(seed), digest]))


def lost_frames(spec: ChannelSpec, n_frames: int, frames_per_packet: int, key: bytes) -> np.ndarray:
    """bool `[n_frames]`: the frames carried by lost packets, for one item whose bitstream is `key`."""
    n_packets = -(-int(n_frames) // frames_per_packet)
    packets = gilbert_elliott(n_packets, spec.loss, spec.burst, item_rng(spec.seed, key))
    return np.repeat(packets, frames_per_packet)[: int(n_frames)]


def conceal_sequence(frames: list, lost: np.ndarray, mode: str, filler: Any = None) -> list:
    """Frames as the decoder receives them: lost ones replaced by None (`plc`), or by the last frame received
    (`repeat`, `silence`; `filler` before any has arrived)."""
    out, last = [], None
    for frame, gone in zip(frames, lost):
        if not gone:
            last = frame
            out.append(frame)
        elif mode == "plc":
            out.append(None)
        else:
            out.append(last if last is not None else filler)
    return out


def conceal_codes(codes: np.ndarray, lost: np.ndarray, mode: str) -> np.ndarray:
    """Token codes `[K, N]` with the frames marked in `lost` `[N]` concealed: `repeat`/`silence` copy the last
    frame received (code 0 before any), `zero` writes code 0."""
    out = np.array(codes, copy=True)
    lost = np.asarray(lost, dtype=bool)
    if not lost.any():
        return out
    if mode == "zero":
        out[:, lost] = 0
        return out
    idx = np.where(~lost, np.arange(lost.size), -1)
    last = np.maximum.accumulate(idx)  # index of the last received frame at or before each position
    fill = lost & (last >= 0)
    out[:, fill] = codes[:, last[fill]]
    out[:, lost & (last < 0)] = 0
    return out


def frames_per_packet(packet_ms: float, frame_seconds: float) -> int:
    """Whole codec frames in one packet: round(packet duration / frame duration), at least one."""
    return max(1, int(math.floor(packet_ms / 1000.0 / frame_seconds + 0.5)))


# -- frame access per classic codec -------------------------------------------------------------------


def _codec2_bits(codec) -> tuple[int, int]:
    state = codec._state()
    return state.bits_per_frame(), state.samples_per_frame()


class _Frames:
    """How one classic codec's bitstream splits into frames, and back."""

    kind: ClassVar[str] = ""

    def split(self, codec, enc: Encoded, i: int) -> list:
        raise NotImplementedError

    def join(self, codec, frames: list) -> bytes:
        return b"".join(frames)

    def frame_seconds(self, codec) -> float:
        raise NotImplementedError

    def delay_seconds(self, codec, enc: Encoded) -> float:
        return 0.0

    def silent_frame(self, codec) -> Any:
        return None


class _OpusFrames(_Frames):
    kind = "opus"

    def split(self, codec, enc, i):
        return codec.packets(enc, i)

    def frame_seconds(self, codec):
        from bench.codecs.classic.opus import OPUS_FRAME_MS

        return OPUS_FRAME_MS / 1000.0

    def delay_seconds(self, codec, enc):
        return codec.pre_skip / 48000.0


class _MP3Frames(_Frames):
    kind = "mp3"

    def split(self, codec, enc, i):
        from bench.codecs.classic.common import _import_av, _payload_of

        data = _payload_of(enc)[i]
        ctx = _import_av().CodecContext.create("mp3float", "r")
        frames = [bytes(p) for p in ctx.parse(data) + ctx.parse(None)]
        if sum(len(f) for f in frames) != len(data):
            raise CodecError("mp3: the bitstream does not split into whole MPEG frames; cannot apply the channel")
        return frames

    def frame_seconds(self, codec):
        return (1152 if codec.sample_rate >= 32000 else 576) / codec.sample_rate  # MPEG-1 / MPEG-2 and 2.5

    def delay_seconds(self, codec, enc):
        from bench.codecs.classic.mp3 import MP3_DELAY

        return int(enc.extra.get("delay", MP3_DELAY)) / codec.sample_rate

    def silent_frame(self, codec):
        return _mp3_silent_frame(codec.kbps, codec.sample_rate)


class _Codec2Frames(_Frames):
    kind = "codec2"

    def split(self, codec, enc, i):
        from bench.codecs.classic.common import _payload_of

        bits, _ = _codec2_bits(codec)
        stream = np.unpackbits(np.frombuffer(_payload_of(enc)[i], np.uint8))
        n = stream.size // bits
        return [stream[j * bits:(j + 1) * bits] for j in range(n)]

    def join(self, codec, frames):
        return np.packbits(np.concatenate(frames)).tobytes() if frames else b""

    def frame_seconds(self, codec):
        return _codec2_bits(codec)[1] / codec.SAMPLE_RATE

    def delay_seconds(self, codec, enc):
        return codec.delay / codec.SAMPLE_RATE

    def silent_frame(self, codec):
        return _codec2_silent_frame(codec.mode)


@functools.lru_cache(maxsize=16)
def _mp3_silent_frame(kbps: int, sample_rate: int) -> bytes:
    """An MPEG audio frame of digital silence from LAME at these settings (a middle one: no start-up effects)."""
    import torch

    from bench.codecs.classic.mp3 import MP3

    codec = MP3(kbps=kbps, sample_rate=sample_rate)
    enc = codec.encode(torch.zeros(1, 1, sample_rate // 2))
    frames = _MP3Frames().split(codec, enc, 0)
    return frames[len(frames) // 2]


@functools.lru_cache(maxsize=16)
def _codec2_silent_frame(mode: str) -> np.ndarray:
    """The bits of one Codec 2 frame coding silence (the third frame of a fresh encoder fed zeros)."""
    from bench.codecs.classic.codec2 import Codec2

    state = Codec2(mode)._state()
    spf, bits = state.samples_per_frame(), state.bits_per_frame()
    frame = b""
    for _ in range(3):
        frame = state.encode(np.zeros(spf, np.int16))
    return np.unpackbits(np.frombuffer(frame, np.uint8))[:bits]


_FRAMES = {"opus": _OpusFrames(), "mp3": _MP3Frames(), "codec2": _Codec2Frames()}


# -- the wrapper codec ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelMeta(CodecMeta):
    """The inner codec's meta plus `channel`: the channel's options, inner label and fingerprint."""

    channel: dict = field(default_factory=dict)


def _kind(codec) -> str:
    if codec.name in _CLASSIC:
        return codec.name
    if codec.meta.codebook_sizes or codec.meta.frame_rate and codec.name != "identity":
        return "tokens"
    raise ChannelError(f"channel: codec {codec.name!r} has no packets or token frames to lose; packet loss "
                       "applies to opus, mp3, codec2 and token codecs")


class ChannelCodec(Codec):
    """`inner` seen through a packet-loss channel: encodes with it, loses frames of the bitstream (seeded
    Gilbert-Elliott), conceals them, decodes with it. Shapes and rates are the inner codec's."""

    code_version = "1"  # per instance the inner codec's (see the module docstring); CHANNEL_VERSION is this one's

    def __init__(self, inner: Codec, spec: "str | ChannelSpec"):
        if isinstance(inner, ChannelCodec):
            raise ChannelError("channel: this codec already has a channel; give one --channel per run")
        self.inner = inner
        self.kind = _kind(inner)
        self.spec = ChannelSpec.parse(spec).resolved(self.kind)
        self.asked = ChannelSpec.parse(spec)
        self.name = inner.name
        self.code_version = inner.code_version
        self.batch_items = inner.batch_items
        self.mixes_channels = inner.mixes_channels
        self.clip_input = inner.clip_input
        self.options = {**inner.options, "channel": str(self.spec)}
        self._meta: ChannelMeta | None = None  # built on first use (after `to(device)`: it names the fingerprint)
        if self.kind == "tokens":
            if not inner.meta.frame_rate:
                raise ChannelError(f"channel: codec {inner.name!r} declares no frame rate; cannot packetise its codes")
            self.frame_seconds = 1.0 / float(inner.meta.frame_rate)
        else:
            self.frame_seconds = _FRAMES[self.kind].frame_seconds(inner)
        self.frames_per_packet = frames_per_packet(self.spec.packet_ms, self.frame_seconds)
        effective = 1000 * self.frames_per_packet * self.frame_seconds
        if abs(effective - self.spec.packet_ms) > 1e-6:
            log.info("%s: %g ms packets carry %d frame(s) of %.4g ms: %.4g ms each", inner.label, self.spec.packet_ms,
                     self.frames_per_packet, 1000 * self.frame_seconds, effective)

    # -- description ------------------------------------------------------------------------------

    @property
    def meta(self) -> ChannelMeta:  # type: ignore[override]
        if self._meta is None:
            self._meta = self._build_meta()
        return self._meta

    def _build_meta(self) -> ChannelMeta:
        base = self.inner.meta
        channel = {"loss": self.spec.loss, "burst": self.spec.burst, "mean_burst": self.spec.mean_burst(),
                   "seed": self.spec.seed, "packet_ms": self.spec.packet_ms, "conceal": self.spec.conceal,
                   "spec": str(self.spec), "label": self.asked.label(),
                   "frames_per_packet": self.frames_per_packet,
                   "effective_packet_ms": 1000 * self.frames_per_packet * self.frame_seconds,
                   "inner_label": self.inner.label, "inner_fingerprint": self.inner.fingerprint(),
                   "version": CHANNEL_VERSION}
        return ChannelMeta(**{f.name: getattr(base, f.name) for f in dataclasses.fields(CodecMeta)}, channel=channel)

    @property
    def label(self) -> str:
        return f"{self.inner.label} [{self.asked.label()}]"  # no "|": labels go into markdown tables

    @property
    def nominal_kbps(self) -> float | None:
        kbps = getattr(self.inner, "nominal_kbps", None)
        if kbps is None:
            kbps = self.inner.options.get("bitrate") or self.inner.options.get("kbps")
        return None if kbps is None else float(kbps)

    def weights_digest(self) -> str:
        return self.inner.weights_digest()

    def runtime(self) -> dict[str, Any]:
        return self.inner.runtime()

    def fingerprint(self) -> str:
        blob = json.dumps({"inner": self.inner.fingerprint(), "channel": str(self.spec), "version": CHANNEL_VERSION},
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def version_info(self) -> dict[str, Any]:
        return {**self.inner.version_info(), "channel": str(self.spec), "channel_version": CHANNEL_VERSION}

    def to(self, device: str) -> "ChannelCodec":
        self.inner.to(device)
        self._meta = None
        return self

    # -- the work ---------------------------------------------------------------------------------

    def encode(self, wav, **kwargs) -> Encoded:
        """The inner codec's encode (the channel acts between encoder and decoder)."""
        return self.inner.encode(wav, **kwargs)

    def embed(self, wav):
        return self.inner.embed(wav)

    def embed_items(self, wavs):
        return self.inner.embed_items(wavs)

    def frames(self, enc: Encoded) -> list[list]:
        """Classic codecs: each item's frames as sent (bytes; Codec 2: bit arrays)."""
        return [_FRAMES[self.kind].split(self.inner, enc, i) for i in range(len(self._payloads(enc)))]

    def lost(self, enc: Encoded, frames: list[list] | None = None) -> list[np.ndarray]:
        """Per item, bool `[n_frames]`: the frames this channel loses (the same on every call)."""
        if self.kind == "tokens":
            out = []
            for i in range(enc.codes.shape[0]):
                codes = self._item_codes(enc, i)
                out.append(lost_frames(self.spec, codes.shape[-1], self.frames_per_packet, codes.tobytes()))
            return out
        frames = self.frames(enc) if frames is None else frames
        return [lost_frames(self.spec, len(f), self.frames_per_packet, data)
                for f, data in zip(frames, self._payloads(enc))]

    def decode(self, enc: Encoded):
        """Encoded (as sent) -> float32 `[B, C, T]` at the inner codec's rate, decoded from what arrived."""
        if self.spec.lossless:
            return self.inner.decode(enc)
        if self.kind == "tokens":
            losses = self.lost(enc)
            rec = self._decode_tokens(enc, losses)
        else:
            frames = self.frames(enc)
            losses = self.lost(enc, frames)
            rec = self._decode_frames(enc, frames, losses)
        if self.spec.conceal == "silence":
            delay = 0.0 if self.kind == "tokens" else _FRAMES[self.kind].delay_seconds(self.inner, enc)
            rec = self._mute(rec, losses, delay)
        return rec

    def _item_codes(self, enc: Encoded, i: int) -> np.ndarray:
        codes = enc.item_codes(i)[0]
        return np.ascontiguousarray(codes.detach().cpu().numpy() if hasattr(codes, "detach") else codes, np.int64)

    def _decode_tokens(self, enc: Encoded, losses: list[np.ndarray]):
        import torch

        mode = "repeat" if self.spec.conceal == "silence" else self.spec.conceal
        codes = enc.codes.detach().cpu().clone() if hasattr(enc.codes, "detach") else torch.as_tensor(enc.codes)
        for i, lost in enumerate(losses):
            own = self._item_codes(enc, i)
            codes[i, :, : own.shape[-1]] = torch.from_numpy(conceal_codes(own, lost, mode))
        return self.inner.decode(dataclasses.replace(enc, codes=codes))

    @staticmethod
    def _payloads(enc: Encoded) -> list[bytes]:
        from bench.codecs.classic.common import _payload_of

        return _payload_of(enc)

    def _decode_frames(self, enc: Encoded, frames: list[list], losses: list[np.ndarray]):
        from bench.codecs.classic.common import _codes_from_payload

        frames_of = _FRAMES[self.kind]
        mode = self.spec.conceal
        if mode == "silence":  # the decoder runs as with the default concealment, then the output is muted
            mode = "plc" if self.kind == "opus" else "repeat"
        filler = frames_of.silent_frame(self.inner) if any(lost.any() for lost in losses) else None
        received = [conceal_sequence(f, lost, mode, filler) for f, lost in zip(frames, losses)]
        if self.kind == "opus":  # None = lost: libopus conceals it (or silence before the first packet)
            return self.inner.decode_packets(received, enc.lengths)
        payload = [frames_of.join(self.inner, frames) for frames in received]
        sent = Encoded(codes=_codes_from_payload(payload), bitrate=enc.bitrate, lengths=list(enc.lengths),
                       sample_rate=enc.sample_rate, payload=payload, extra=dict(enc.extra), frames=enc.frames,
                       item_bitrates=enc.item_bitrates)
        return self.inner.decode(sent)

    def _mute(self, rec, losses: list[np.ndarray], delay_s: float):
        """Zero the output samples of the lost frames (module docstring: `silence`)."""
        sr = self.inner.meta.sample_rate or 1
        rec = rec.clone()
        t = rec.shape[-1]
        for i, lost in enumerate(losses):
            for j in np.flatnonzero(lost):
                a = int(round((j * self.frame_seconds - delay_s) * sr))
                b = int(round(((j + 1) * self.frame_seconds - delay_s) * sr))
                a, b = max(0, a), min(t, b)
                if b > a:
                    rec[i, :, a:b] = 0
        return rec


def apply_channel(codec: Codec, spec: "str | ChannelSpec | None") -> Codec:
    """`codec` behind the channel `spec`; the codec itself when there is no channel or it loses nothing."""
    if spec is None or spec == "":
        return codec
    parsed = ChannelSpec.parse(spec)
    if parsed.lossless:
        return codec
    return ChannelCodec(codec, parsed)
