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
from typing import Any

import torch

from bench.codecs.base import CodecError, Encoded, OperatingPoint
from bench.codecs.neural import Checkpoint, NeuralCodec, Rates

log = logging.getLogger(__name__)

_CARD = "https://huggingface.co/hf-audio/xcodec-wavlm-more-data (licence field of the X-Codec family's model card)"
CHECKPOINTS = {
    "speech": Checkpoint("speech", "hf-audio/xcodec-hubert-librispeech", source=_CARD),
    "general": Checkpoint("general", "hf-audio/xcodec-hubert-general-balanced", source=_CARD),
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


class XCodec(NeuralCodec):
    """X-Codec at one bandwidth. Options: variant (speech | general), bandwidth (kbps, one of the config's
    target_bandwidths; default the lowest), weights=PATH, device, pretrained (False: random), tiny, seed."""

    name = "xcodec"
    code_version = "1"
    licence = LICENCE
    paper = PAPER
    checkpoints = CHECKPOINTS
    default_checkpoint = "speech"
    variant_option = "variant"

    def __init__(self, variant: str = "speech", bandwidth: float | None = None, weights: str | None = None,
                 device: str = "cpu", pretrained: bool = True, tiny: bool = False, seed: int = 0):
        key = self.checkpoint_for(variant).key
        bandwidths = tuple(float(b) for b in reference_config().target_bandwidths)
        bandwidth = bandwidths[0] if bandwidth is None else float(bandwidth)
        if bandwidth not in bandwidths:
            raise CodecError(f"xcodec has no bandwidth {bandwidth:g} kbps; choose one of "
                             f"{', '.join(f'{b:g}' for b in bandwidths)}")
        self.bandwidth = bandwidth
        self._setup(key, {"variant": key, "bandwidth": bandwidth}, weights, device, pretrained, tiny, seed)

    @property
    def variant(self) -> Checkpoint:
        return self.checkpoint

    @classmethod
    def config_for(cls, key: str, tiny: bool = False):
        return reference_config(tiny=tiny)

    @classmethod
    def _port_class(cls):
        from transformers import XcodecModel

        return XcodecModel

    @classmethod
    def _random_model(cls, key: str, tiny: bool, seed: int):
        model = cls._port_class()(reference_config(tiny=tiny))
        with torch.no_grad():  # the port zero-fills its codebooks: give them distinct entries
            for q in model.quantizer.quantizers:
                q.codebook.embed.normal_()
                q.codebook.embed_avg.copy_(q.codebook.embed)
        return model

    def _configure(self, cfg) -> Rates:
        have = tuple(float(b) for b in cfg.target_bandwidths)
        if self.bandwidth not in have:
            raise CodecError(f"these X-Codec weights offer {', '.join(f'{b:g}' for b in have)} kbps, not "
                             f"{self.bandwidth:g}")
        self.n_codebooks = _codebooks(cfg, self.bandwidth)
        self.hop = int(cfg.hop_length)
        return Rates(int(cfg.sample_rate), float(cfg.frame_rate), (int(cfg.codebook_size),) * self.n_codebooks,
                     kbps=self.n_codebooks * _per_codebook_kbps(cfg))

    @classmethod
    def operating_points(cls) -> list[OperatingPoint]:
        ref = reference_config()
        points = []
        for v in CHECKPOINTS:
            for bw in ref.target_bandwidths:
                k = _codebooks(ref, float(bw))
                points.append(OperatingPoint(float(bw), {"variant": v, "bandwidth": float(bw)},
                                             f"xcodec {v} {float(bw):g} kbps ({k} codebook{'s' if k > 1 else ''})"))
        return points

    # -- the work: codes [B, K, ceil(T / 320)], the audio zero-padded on the right to whole frames first, as
    # transformers' feature extractor does ------------------------------------------------------------------

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.pad(x, (0, math.ceil(x.shape[-1] / self.hop) * self.hop - x.shape[-1]))
        return self.model.encode(x.to(self.device), bandwidth=self.bandwidth, return_dict=False)

    def _decode(self, enc: Encoded) -> torch.Tensor:
        return self.model.decode(enc.codes.to(self.device), return_dict=False)

    def _embedding(self, codes: torch.Tensor) -> torch.Tensor:
        """The sum of the selected codebooks' entries (D = acoustic + semantic width, 1024 released)."""
        return self.model.quantizer.decode(codes.transpose(0, 1)).transpose(1, 2)
