"""Encodec (Défossez et al. 2022) on transformers' `EncodecModel`: 24 kHz mono and 48 kHz stereo.

Shapes: audio float32 `[B, C, T]` at `codec.sample_rate` (C = 1 at 24 kHz, 2 at 48 kHz); codes int64
`[B, K, N]` (K codebooks of 1024 entries, N frames at 75 or 150 frames/s); embeddings `[B, N, 128]`.

Weights: a Hugging Face folder (facebook/encodec_24khz, facebook/encodec_48khz) or the authors' original
`encodec_24khz-d7cc33bc.th` / `encodec_48khz-7e698e3e.th`, mapped to the port's keys here (weight norm is kept
as the port's parametrization: `weight_g` -> `original0`, `weight_v` -> `original1`).

Long audio: the 24 kHz model runs the whole item in one pass up to `chunk_seconds` (30 s); longer items go in
chunks of that length that start on frame boundaries with `CONTEXT_SECONDS` (2 s) of audio either side,
discarded after. The LSTM in the model makes codes depend on all past audio, so chunked codes match an
unchunked pass away from chunk edges up to rare flips, not bit for bit. The 48 kHz model is defined on 1 s
segments (1 % overlap, each with its own scale) and is processed one segment at a time, which is exactly what
the reference does. Peak memory is then one window's activations plus the O(T) input and output audio
(measured on CPU, fp32: about 0.55 GiB for a 30 s window, 0.65 GiB for a 90 s file), so a 10-minute 24 kHz
file needs under 0.75 GiB above the model (~60 MB); at 48 kHz it is one 1 s segment plus the audio buffers
(input, output and the overlap weights: about 0.6 GB for 10 minutes of stereo).
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bench.codecs import weights as W
from bench.codecs.base import CodecError, Encoded, OperatingPoint
from bench.codecs.neural import Rates, plan_chunks
from bench.codecs.released import ReleasedCodec, checkpoints_of

log = logging.getLogger(__name__)


# -- Encodec ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EncodecVariant:
    key: str
    sample_rate: int
    channels: int
    bandwidths: tuple[float, ...]  # kbps
    hop: int = 320
    segment: float | None = None  # seconds per independently coded segment (48 kHz model)
    overlap: float = 0.01

    @property
    def frame_rate(self) -> int:
        return math.ceil(self.sample_rate / self.hop)

    def codebooks(self, bandwidth: float, bits: int = 10) -> int:
        return max(1, int(bandwidth * 1000 // (self.frame_rate * bits)))


ENCODEC_VARIANTS = {
    24000: EncodecVariant("24khz", 24000, 1, (1.5, 3.0, 6.0, 12.0, 24.0)),
    48000: EncodecVariant("48khz", 48000, 2, (3.0, 6.0, 12.0, 24.0), segment=1.0),
}

CONTEXT_SECONDS = 2.0  # audio either side of a 24 kHz chunk: covers the convolutions and lets the LSTM settle
SCALE_BITS = 32  # the 48 kHz model sends one float32 scale per segment


def encodec_config(variant: EncodecVariant, tiny: bool = False, **overrides: Any):
    """The transformers config of a variant; `tiny` narrows every layer (tests), keeping rates and codebooks."""
    from transformers import EncodecConfig

    kw: dict[str, Any] = dict(sampling_rate=variant.sample_rate, audio_channels=variant.channels,
                              target_bandwidths=list(variant.bandwidths), upsampling_ratios=[8, 5, 4, 2])
    if variant.segment:
        kw.update(use_causal_conv=False, norm_type="time_group_norm", normalize=True,
                  chunk_length_s=variant.segment, overlap=variant.overlap)
    if tiny:
        kw.update(num_filters=2, hidden_size=8, codebook_dim=8)
    kw.update(overrides)
    return EncodecConfig(**kw)


# Original (facebookresearch/encodec) key -> port key. The port keeps the original module order, so only
# the wrapper names differ: SConv1d.conv.conv -> EncodecConv1d.conv, SConvTranspose1d.convtr.convtr -> .conv,
# NormConv.norm -> .norm, ResidualVectorQuantization.vq.layers.i._codebook -> quantizer.layers.i.codebook.
_ENCODEC_TO_PORT = [
    (re.compile(r"^quantizer\.vq\.layers\.(\d+)\._codebook\.(\w+)$"), r"quantizer.layers.\1.codebook.\2"),
    (re.compile(r"^(encoder|decoder)\.model\.(\d+)\.convtr\.convtr\.(\w+)$"), r"\1.layers.\2.conv.\3"),
    (re.compile(r"^(encoder|decoder)\.model\.(\d+)\.convtr\.norm\.(\w+)$"), r"\1.layers.\2.norm.\3"),
    (re.compile(r"^(encoder|decoder)\.model\.(\d+)\.((?:block\.\d+|shortcut)\.)?conv\.conv\.(\w+)$"),
     r"\1.layers.\2.\3conv.\4"),
    (re.compile(r"^(encoder|decoder)\.model\.(\d+)\.((?:block\.\d+|shortcut)\.)?conv\.norm\.(\w+)$"),
     r"\1.layers.\2.\3norm.\4"),
    (re.compile(r"^(encoder|decoder)\.model\.(\d+)\.lstm\.(\w+)$"), r"\1.layers.\2.lstm.\3"),
]
_WN_TO_PORT = {"weight_g": "parametrizations.weight.original0", "weight_v": "parametrizations.weight.original1"}


def encodec_original_to_port(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map an original Encodec state dict to `EncodecModel` keys; unknown keys are an error."""
    out, unknown = {}, []
    for key, value in state.items():
        for pattern, template in _ENCODEC_TO_PORT:
            if pattern.match(key):
                new = pattern.sub(template, key)
                head, _, last = new.rpartition(".")
                out[f"{head}.{_WN_TO_PORT.get(last, last)}"] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise CodecError(f"not an Encodec checkpoint: unexpected keys {unknown[:5]}...")
    return out


def encodec_port_to_original(model) -> dict[str, torch.Tensor]:
    """The inverse mapping: an `EncodecModel`'s weights in the original release layout (for tests/exports)."""
    out = {}
    for key, value in model.state_dict().items():
        key = key.replace("parametrizations.weight.original0", "weight_g").replace(
            "parametrizations.weight.original1", "weight_v")
        m = re.match(r"^quantizer\.layers\.(\d+)\.codebook\.(\w+)$", key)
        if m:
            out[f"quantizer.vq.layers.{m[1]}._codebook.{m[2]}"] = value
            continue
        part, _, idx, rest = re.match(r"^(encoder|decoder)(\.layers\.)(\d+)\.(.+)$", key).groups()
        layer = getattr(model, part).layers[int(idx)]
        kind = type(layer).__name__
        if kind == "EncodecConvTranspose1d":
            rest = re.sub(r"^(conv|norm)\.", lambda g: "convtr.convtr." if g[1] == "conv" else "convtr.norm.", rest)
        elif kind in ("EncodecConv1d", "EncodecResnetBlock"):
            rest = re.sub(r"(^|\.)(conv|norm)\.(\w+)$", lambda g: f"{g[1]}conv.{g[2]}.{g[3]}", rest)
        out[f"{part}.model.{idx}.{rest}"] = value
    return out


def _infer_encodec_config(state: dict[str, torch.Tensor], variant: EncodecVariant):
    """Rebuild the config of an original checkpoint from its tensor shapes (the .th files carry none)."""
    first = state.get("encoder.model.0.conv.conv.weight_v", state.get("encoder.model.0.conv.conv.weight"))
    if first is None:
        raise CodecError("not an Encodec checkpoint: no encoder.model.0.conv.conv weight")
    embed = state["quantizer.vq.layers.0._codebook.embed"]
    convtr = sorted((int(k.split(".")[2]), v) for k, v in state.items()
                    if re.match(r"^decoder\.model\.\d+\.convtr\.convtr\.weight(_v)?$", k))
    lstm_layers = len([k for k in state if re.match(r"^encoder\.model\.\d+\.lstm\.weight_ih_l\d+$", k)])
    last = max(int(k.split(".")[2]) for k in state if k.startswith("encoder.model."))
    hidden = state.get(f"encoder.model.{last}.conv.conv.bias")
    if first.shape[1] != variant.channels:
        raise CodecError(f"this Encodec checkpoint takes {first.shape[1]}-channel audio, but the {variant.key} "
                         f"model takes {variant.channels}; pass the matching sample_rate")
    return encodec_config(
        variant, num_filters=int(first.shape[0]), codebook_size=int(embed.shape[0]),
        codebook_dim=int(embed.shape[1]), hidden_size=int(hidden.shape[0]) if hidden is not None else 128,
        num_lstm_layers=max(1, lstm_layers), upsampling_ratios=[int(v.shape[-1]) // 2 for _, v in convtr],
        norm_type="weight_norm" if any(k.endswith("weight_g") for k in state) else "time_group_norm")


def load_encodec_original(path: Path, variant: EncodecVariant):
    """An original `.th` state dict -> `EncodecModel` (strict: every tensor must find its place)."""
    from transformers import EncodecModel

    state = W.load_checkpoint(path)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    model = EncodecModel(_infer_encodec_config(state, variant))
    mapped = encodec_original_to_port(state)
    have = set(model.state_dict())
    for key in [k for k in mapped if k not in have]:  # older ports keep weight norm as weight_g / weight_v
        old = key.replace("parametrizations.weight.original0", "weight_g").replace(
            "parametrizations.weight.original1", "weight_v")
        if old in have:
            mapped[old] = mapped.pop(key)
    missing, unexpected = model.load_state_dict(mapped, strict=False)
    if missing or unexpected:
        raise CodecError(f"{path}: does not fit the Encodec {variant.key} model (missing {missing[:4]}, "
                         f"unexpected {unexpected[:4]})")
    return model


def save_encodec_original(model, folder: str | Path, name: str | None = None) -> Path:
    """Write a model in the original release layout, named like the releases: `encodec_24khz-<sha8>.th`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = "48khz" if model.config.sampling_rate == 48000 else "24khz"
    tmp = folder / f"encodec_{key}.tmp"
    torch.save(encodec_port_to_original(model), tmp)
    final = folder / (name or f"encodec_{key}-{W.sha256_file(tmp)[:8]}.th")
    tmp.replace(final)
    return final


class Encodec(ReleasedCodec):
    """Encodec at one bandwidth. Options: sample_rate (24000 | 48000), bandwidth (kbps), weights=PATH,
    device, pretrained (False: random weights), tiny (narrow random model for tests), chunk_seconds."""

    name = "encodec"
    code_version = "1"
    licence = "MIT"
    paper = "Défossez et al. 2022, High Fidelity Neural Audio Compression, arXiv:2210.13438"
    variants = ENCODEC_VARIANTS
    checkpoints = checkpoints_of("encodec", ENCODEC_VARIANTS)
    default_checkpoint = "24khz"
    weight_suffixes = (".th",)

    def __init__(self, sample_rate: int | str = 24000, bandwidth: float | None = None, weights: str | None = None,
                 device: str = "cpu", pretrained: bool = True, tiny: bool = False, chunk_seconds: float = 30.0,
                 seed: int = 0):
        v = self.variant_for(sample_rate)
        bandwidth = 6.0 if bandwidth is None else float(bandwidth)
        if bandwidth not in v.bandwidths:
            raise CodecError(f"encodec {v.key} has no bandwidth {bandwidth:g} kbps; choose one of "
                             f"{', '.join(f'{b:g}' for b in v.bandwidths)}")
        self.bandwidth = bandwidth
        self.n_codebooks = v.codebooks(bandwidth)
        self.chunk_seconds = float(chunk_seconds)
        shown = {"chunk_seconds": self.chunk_seconds} if chunk_seconds != 30.0 else {}
        self._setup(v.key, {"sample_rate": v.sample_rate, "bandwidth": bandwidth}, weights, device, pretrained, tiny,
                    seed, **shown)

    @classmethod
    def config_for(cls, key: str, tiny: bool = False):
        return encodec_config(cls.variant_for(key), tiny=tiny)

    @classmethod
    def _port_class(cls):
        from transformers import EncodecModel

        return EncodecModel

    @classmethod
    def _random_model(cls, key: str, tiny: bool, seed: int):
        model = cls._port_class()(cls.config_for(key, tiny))
        for layer in model.quantizer.layers:  # the port zero-fills codebooks; give them entries
            layer.codebook.embed.normal_()
            layer.codebook.embed_avg.copy_(layer.codebook.embed)
        return model

    def _load_original(self, path: Path):
        return load_encodec_original(path, self.variant)

    @classmethod
    def _save_original(cls, model, dest: Path, key: str) -> Path:
        return save_encodec_original(model, dest)

    def _configure(self, cfg) -> Rates:
        v = self.variant
        return Rates(v.sample_rate, float(v.frame_rate), (int(cfg.codebook_size),) * self.n_codebooks, v.channels,
                     kbps=self.bandwidth)

    @classmethod
    def operating_points(cls) -> list[OperatingPoint]:
        points = []
        for v in ENCODEC_VARIANTS.values():
            layout = "" if v.channels == 1 else " stereo"
            for bw in v.bandwidths:
                k = v.codebooks(bw)
                points.append(OperatingPoint(bw, {"sample_rate": v.sample_rate, "bandwidth": bw},
                                             f"encodec {v.sample_rate // 1000}kHz{layout} {bw:g} kbps ({k} codebooks)"))
        return points

    # -- the work ---------------------------------------------------------------------------------

    def _codes(self, x: torch.Tensor) -> torch.Tensor:
        """One pass: audio `[B, C, L]` on the model's device -> codes `[B, K, ceil(L / hop)]`."""
        emb = self.model.encoder(x)
        return self.model.quantizer.encode(emb, self.bandwidth).transpose(0, 1)

    def _latent(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes `[B, K, N]` -> the decoder's input `[B, D, N]` (sum of the codebook entries)."""
        return self.model.quantizer.decode(codes.transpose(0, 1).to(self.device))

    def _segments(self, length: int) -> list[tuple[int, int]]:
        """48 kHz: (start, end) sample spans of the 1 s segments, 1 % overlap, as the reference cuts them."""
        seg = int(self.variant.segment * self.variant.sample_rate)
        stride = max(1, int((1 - self.variant.overlap) * seg))
        return [(o, min(o + seg, length)) for o in range(0, length, stride)]

    def _encode(self, x: torch.Tensor):
        """Audio `[B, C, T]` -> codes `[B, K, ceil(T / 320)]` (48 kHz: the segments' codes one after the other,
        their scales in `extra["scales"]` `[B, S]`, 32 side bits each)."""
        b, _, t = x.shape
        hop = self.variant.hop
        extra: dict[str, Any] = {}
        side_bits = 0.0
        if self.variant.segment:
            codes_list, scales, frames = [], [], []
            for s0, s1 in self._segments(t):
                seg = x[..., s0:s1].to(self.device)
                scale = seg.mean(dim=1, keepdim=True).pow(2).mean(dim=-1, keepdim=True).sqrt() + 1e-8
                c = self._codes(seg / scale)
                codes_list.append(c.cpu())
                scales.append(scale.view(b).cpu())
                frames.append(c.shape[-1])
            codes = torch.cat(codes_list, dim=-1)
            extra = {"scales": torch.stack(scales, dim=1), "segment_frames": frames}
            side_bits = SCALE_BITS * len(frames)
        else:
            n = math.ceil(t / hop)
            chunk = max(1, int(self.chunk_seconds * self.variant.frame_rate))
            context = int(CONTEXT_SECONDS * self.variant.frame_rate)
            codes = torch.empty(b, self.n_codebooks, n, dtype=torch.int64)
            for a, e, w0, w1 in plan_chunks(n, chunk, context):
                c = self._codes(x[..., w0 * hop:min(w1 * hop, t)].to(self.device))
                codes[..., a:e] = c[..., a - w0:e - w0].cpu()
        return codes, extra, side_bits

    def _decode(self, enc: Encoded) -> torch.Tensor:
        """Encoded -> `[B, C, T]`, T = the encoded input length."""
        codes = enc.codes
        b, _, n = codes.shape
        hop = self.variant.hop
        t = max(enc.lengths) if enc.lengths else n * hop
        if self.variant.segment:
            return self._decode_segments(codes, enc.extra["scales"], enc.extra["segment_frames"], t)
        out = torch.zeros(b, self.variant.channels, n * hop)
        chunk = max(1, int(self.chunk_seconds * self.variant.frame_rate))
        context = int(CONTEXT_SECONDS * self.variant.frame_rate)
        for a, e, w0, w1 in plan_chunks(n, chunk, context):
            y = self.model.decoder(self._latent(codes[..., w0:w1]))
            out[..., a * hop:e * hop] = y[..., (a - w0) * hop:(e - w0) * hop].float().cpu()
        return out[..., :t]

    def _decode_segments(self, codes: torch.Tensor, scales: torch.Tensor, frames: list[int], t: int) -> torch.Tensor:
        """Decode each segment and overlap-add with triangular weights (the reference's linear fade)."""
        spans = self._segments(t)
        if len(spans) != len(frames):
            raise CodecError(f"encodec: {len(frames)} coded segments do not fit {t} samples; decode with the "
                             "lengths the encoder returned")
        b = codes.shape[0]
        stride = spans[1][0] if len(spans) > 1 else 0
        pieces_len = [f * self.variant.hop for f in frames]
        total = stride * (len(frames) - 1) + pieces_len[-1]
        out = torch.zeros(b, self.variant.channels, total)
        weight_sum = torch.zeros(total)
        ramp = torch.linspace(0, 1, pieces_len[0] + 2)[1:-1]
        ramp = 0.5 - (ramp - 0.5).abs()
        start = 0
        for i, f in enumerate(frames):
            y = self.model.decoder(self._latent(codes[..., start:start + f])).float().cpu()
            y = y * scales[:, i].view(b, 1, 1)
            o, w = i * stride, ramp[:y.shape[-1]]
            out[..., o:o + y.shape[-1]] += w * y
            weight_sum[o:o + y.shape[-1]] += w
            start += f
        return out.div_(weight_sum)[..., :t]  # in place: no second copy of the whole output

    def _embedding(self, codes: torch.Tensor) -> torch.Tensor:
        """`[B, N, 128]`: the quantised latent the decoder receives, per frame (48 kHz: before each segment's scale
        is applied, which happens after the decoder)."""
        return self._latent(codes).transpose(1, 2)
