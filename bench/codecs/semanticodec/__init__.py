"""SemantiCodec (Liu et al. 2024, arXiv:2405.00233), re-implemented to load the official checkpoints.

    codec = bench.load_codec("semanticodec", bitrate=0.63)             # token rate 50, vocab 4096
    codec = bench.load_codec("semanticodec", token_rate=100, vocab=16384, weights="DIR")
    codec = bench.load_codec("semanticodec:tiny")                      # tiny random-weight model

Modules: config (operating points, tiny), fbank (Kaldi fbank in torch), audiomae (ViT features),
encoder (semantic + acoustic ids), decoder (latent diffusion, VAE, HiFi-GAN), codec (the Codec),
weights (official Hugging Face layout). Nothing heavy is imported here.
"""

from __future__ import annotations

__all__ = ["SemantiCodec"]


def __getattr__(name: str):
    if name == "SemantiCodec":
        from .codec import SemantiCodec

        return SemantiCodec
    raise AttributeError(name)
