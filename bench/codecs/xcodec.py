"""X-Codec (Ye et al. 2024) on transformers' `XcodecModel`: 16 kHz mono, semantic (HuBERT) + acoustic (DAC) RVQ.

Variants: `speech` (hf-audio/xcodec-hubert-librispeech, HuBERT trained on LibriSpeech) and `general`
(hf-audio/xcodec-hubert-general-balanced, general audio). Shapes: audio float32 `[B, 1, T]` at 16 kHz; codes int64
`[B, K, N]`, N = ceil(T / 320) (the audio is zero-padded to whole frames, as transformers' feature extractor does),
K = the quantisers a bandwidth selects (floor(bandwidth / per-codebook kbps)); embeddings `[B, N, 1024]` for the
released models: the RVQ's dequantised latent (the sum of the selected codebooks' entries), which the decoder
projects to its acoustic channels. Operating points: the config's `target_bandwidths` (0.5, 1, 1.5, 2, 4 kbps:
1, 2, 3, 4, 8 codebooks of 1024 entries at 50 frames/s), read from transformers' `XcodecConfig` (the released
models' defaults), and each loaded model's own config is checked against the bandwidth asked for.

Weights: a Hugging Face folder (config.json + model.safetensors), as `bench weights random xcodec` writes it. The
authors' original `.pth` files (ZhenYe234/xcodec) are not mapped here: their key names could not be read offline.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch

from bench.codecs import weights as W
from bench.codecs.base import CodecError, CodecMeta, Encoded, OperatingPoint
from bench.codecs.hub import HubCodec, HubVariant
from bench.codecs.neural import code_bitrate

log = logging.getLogger(__name__)

_CARD = "https://huggingface.co/hf-audio/xcodec-wavlm-more-data (licence field of the X-Codec family's model card)"
VARIANTS = {
    "speech": HubVariant("speech", "hf-audio/xcodec-hubert-librispeech", source=_CARD),
    "general": HubVariant("general", "hf-audio/xcodec-hubert-general-balanced", source=_CARD),
}
LICENCE = "CC-BY-4.0 (weights)"
PAPER = ("Ye et al. 2024, Codec Does Matter: Exploring the Semantic Shortcoming of Codec for Audio Language Model, "
         "arXiv:2408.17175")


def reference_config(tiny: bool = False, **overrides: Any):
    """The released models' config (transformers' `XcodecConfig` defaults: DAC acoustic half, HuBERT semantic half);
    `tiny` narrows both halves for tests, keeping the sample rate, hop, codebooks and bandwidths."""
    from transformers import XcodecConfig

    kw: dict[str, Any] = {}
    if tiny:
        kw.update(
            acoustic_model_config=dict(encoder_hidden_size=2, decoder_hidden_size=32, hidden_size=8, codebook_dim=4),
            semantic_model_config=dict(model_type="hubert", hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                       intermediate_size=32, conv_dim=(8,) * 7, num_conv_pos_embeddings=16,
                                       num_conv_pos_embedding_groups=2))
    kw.update(overrides)
    return XcodecConfig(**kw)


def _per_codebook_kbps(config) -> float:
    return math.log2(config.codebook_size) * config.frame_rate / 1000


def _codebooks(config, bandwidth: float) -> int:
    return max(1, int(math.floor(bandwidth / _per_codebook_kbps(config) + 1e-9)))


class XCodec(HubCodec):
    """X-Codec at one bandwidth. Options: variant (speech | general), bandwidth (kbps, one of the config's
    target_bandwidths; default the lowest), weights=PATH, device, pretrained (False: random), tiny, seed."""

    name = "xcodec"
    code_version = "1"
    variants = VARIANTS
    default_variant = "speech"
    weight_suffixes = ()

    def __init__(self, variant: str = "speech", bandwidth: float | None = None, weights: str | None = None,
                 device: str = "cpu", pretrained: bool = True, tiny: bool = False, seed: int = 0):
        self.variant = self.variant_for(variant)
        ref = reference_config()
        bandwidths = tuple(float(b) for b in ref.target_bandwidths)
        bandwidth = bandwidths[0] if bandwidth is None else float(bandwidth)
        if bandwidth not in bandwidths:
            raise CodecError(f"xcodec has no bandwidth {bandwidth:g} kbps; choose one of "
                             f"{', '.join(f'{b:g}' for b in bandwidths)}")
        if tiny and pretrained and weights is None:
            pretrained = False
        self.bandwidth = bandwidth
        self.options: dict[str, Any] = {"variant": self.variant.key, "bandwidth": bandwidth}
        if not pretrained:
            self.options.update(pretrained=False, seed=seed)
        if tiny:
            self.options["tiny"] = True
        if weights is not None:
            self.options["weights"] = str(weights)
        self.options["device"] = device
        self.meta = CodecMeta("xcodec", int(ref.sample_rate), 1, bandwidths, float(ref.frame_rate), True, LICENCE,
                              PAPER, random_weights=not pretrained)
        self._build(weights, pretrained, tiny, seed)
        cfg = self.model.config
        have = tuple(float(b) for b in cfg.target_bandwidths)
        if bandwidth not in have:
            raise CodecError(f"these X-Codec weights offer {', '.join(f'{b:g}' for b in have)} kbps, not {bandwidth:g}")
        self.n_codebooks = _codebooks(cfg, bandwidth)
        self.hop = int(cfg.hop_length)
        self.bits_per_code = math.log2(cfg.codebook_size)
        self.nominal_kbps = self.n_codebooks * _per_codebook_kbps(cfg)
        self.meta = CodecMeta("xcodec", int(cfg.sample_rate), 1, bandwidths, float(cfg.frame_rate), True, LICENCE,
                              PAPER, self.meta.random_weights, codebook_sizes=(int(cfg.codebook_size),) * self.n_codebooks)
        if device != "cpu":
            self.to(device)

    @staticmethod
    def _port_class():
        from transformers import XcodecModel

        return XcodecModel

    @staticmethod
    def _config_rate(config) -> int:
        return int(config.sample_rate)

    def _random_model(self, tiny: bool):
        from transformers import XcodecModel

        model = XcodecModel(reference_config(tiny=tiny))
        with torch.no_grad():  # the port zero-fills its codebooks: give them distinct entries
            for q in model.quantizer.quantizers:
                q.codebook.embed.normal_()
                q.codebook.embed_avg.copy_(q.codebook.embed)
        return model

    @classmethod
    def operating_points(cls) -> list[OperatingPoint]:
        ref = reference_config()
        points = []
        for v in VARIANTS:
            for bw in ref.target_bandwidths:
                k = _codebooks(ref, float(bw))
                points.append(OperatingPoint(float(bw), {"variant": v, "bandwidth": float(bw)},
                                             f"xcodec {v} {float(bw):g} kbps ({k} codebook{'s' if k > 1 else ''})"))
        return points

    # -- the work ---------------------------------------------------------------------------------

    @torch.inference_mode()
    def encode(self, wav: Any) -> Encoded:
        """wav float32 `[B, 1, T]` at 16 kHz -> Encoded with codes `[B, K, ceil(T / 320)]` (zero-padded on the
        right to whole frames first, as transformers' feature extractor does)."""
        x = self.check_input(wav)
        b, _, t = x.shape
        n = math.ceil(t / self.hop)
        x = torch.nn.functional.pad(x, (0, n * self.hop - t))
        codes = self.model.encode(x.to(self.device), bandwidth=self.bandwidth, return_dict=False)
        codes = codes.to("cpu", torch.int64)
        bitrate = code_bitrate(codes, self.bits_per_code, t / self.meta.sample_rate)
        return Encoded(codes=codes, bitrate=bitrate, lengths=[t] * b, sample_rate=self.meta.sample_rate)

    @torch.inference_mode()
    def decode(self, enc: Encoded) -> torch.Tensor:
        """Encoded -> float32 `[B, 1, T]` at 16 kHz, T = the encoded input length (N x 320 samples trimmed)."""
        y = self.model.decode(enc.codes.to(self.device), return_dict=False).float().cpu()
        t = max(enc.lengths) if enc.lengths else y.shape[-1]
        if y.shape[-1] < t:
            y = torch.nn.functional.pad(y, (0, t - y.shape[-1]))
        return y[..., :t]

    @torch.inference_mode()
    def embed(self, wav: Any) -> torch.Tensor:
        """wav `[B, 1, T]` -> float32 `[B, N, D]` at 50 frames/s: the sum of the selected codebooks' entries
        (D = acoustic + semantic width, 1024 for the released models)."""
        codes = self.encode(wav).codes.to(self.device)
        return self.model.quantizer.decode(codes.transpose(0, 1)).transpose(1, 2).float().cpu()

    @classmethod
    def write_random(cls, dest: str | Path, variant: str | None = None, tiny: bool = False, seed: int = 0) -> Path:
        """`bench weights random xcodec`: a random model under `dest/<variant>/` as the hub folders are laid out."""
        v = cls.variant_for(variant)
        target = Path(dest) / v.key
        codec = cls(variant=v.key, pretrained=False, tiny=tiny, seed=seed)
        Path(dest).mkdir(parents=True, exist_ok=True)
        W.mark_random(dest)
        codec.model.save_pretrained(str(target))
        return target


def fetch_weights(dest: Path | None = None, variant: str | None = None, trust_unpinned: bool = False) -> Path:
    """The `bench weights fetch xcodec` entry (bench.codecs.weights.FETCHERS)."""
    return XCodec.fetch(dest, variant, trust_unpinned)


def list_weights() -> list[dict[str, Any]]:
    return XCodec.list_weights()
