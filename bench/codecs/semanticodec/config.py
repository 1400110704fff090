"""SemantiCodec configurations: the 12 official operating points and a tiny random-weight variant.

Plain dataclasses, no torch import. The official model exists at three token rates (25, 50, 100
tokens/s, counting both streams), each usable with four k-means semantic vocabularies
(4096 ... 32768). `tiny` keeps every size that fixes the bitstream and the timing (token rate,
vocabularies, 8192 acoustic codes, 16 kHz, 10.24 s windows of 1024 fbank frames, latent 8x256x16)
and shrinks only the widths, so codes and output lengths look exactly like the real model's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

TOKEN_RATES = (25, 50, 100)
VOCABS = (4096, 8192, 16384, 32768)
ACOUSTIC_CODEBOOK = 8192

SAMPLE_RATE = 16000
SEGMENT_SECONDS = 10.24  # one encoder/decoder window
SEGMENT_SAMPLES = 163840  # 10.24 s at 16 kHz
MEL_FRAMES = 1024  # fbank frames per window (10 ms hop)
PATCH_SECONDS = 0.16  # one AudioMAE patch = 16 fbank frames
OVERLAP_RATIO = 0.0625  # decoder windows overlap by 0.64 s


def bitrate(token_rate: int, vocab: int, acoustic: int = ACOUSTIC_CODEBOOK) -> float:
    """Bits per second: every frame (token_rate / 2 per second) carries one semantic and one acoustic id."""
    return token_rate / 2 * (math.log2(vocab) + math.log2(acoustic))


@dataclass(frozen=True)
class EncoderConfig:
    """AudioMAE (ViT-B/16 on a 1024x128 fbank) + k-means semantic ids + BiLSTM/VQ acoustic ids."""

    token_rate: int = 100
    vocab: int = 16384  # semantic k-means vocabulary V (rows of the .npy)
    # AudioMAE (timm-style ViT); the MAE decoder is in the checkpoint but never run
    mae_dim: int = 768
    mae_depth: int = 12
    mae_heads: int = 12
    mae_mlp_ratio: float = 4.0
    mae_decoder_dim: int = 512
    mae_decoder_depth: int = 8
    mae_decoder_heads: int = 16
    mae_patch: int = 16
    mae_pred_dim: int = 256  # patch * patch * in_chans
    contextual_depth: int = 8  # features = mean of final-norm outputs of blocks with index > this
    mel_bins: int = 128
    mel_frames: int = MEL_FRAMES
    # acoustic stream
    lstm_layers: int = 4
    codebook_size: int = ACOUSTIC_CODEBOOK

    @property
    def stack(self) -> int:
        """K: AudioMAE patches stacked into one token (100 / token_rate)."""
        return 100 // self.token_rate

    @property
    def feature_dim(self) -> int:
        """F: width of one stacked semantic feature (mae_dim * K)."""
        return self.mae_dim * self.stack

    @property
    def grid(self) -> tuple[int, int]:
        """AudioMAE patch grid per window: (time, freq) = (64, 8)."""
        return self.mel_frames // self.mae_patch, self.mel_bins // self.mae_patch

    @property
    def window_tokens(self) -> int:
        """Token frames per 10.24 s window: 512 / K."""
        t, f = self.grid
        return t * f // self.stack

    @property
    def codebook_dir(self) -> str:
        """Official k-means codebook folder name for this token rate."""
        return f"combine_{512 // self.stack}_audioset_dominate"


@dataclass(frozen=True)
class UNetConfig:
    in_channels: int = 8
    out_channels: int = 8
    model_channels: int = 64
    channel_mult: tuple[int, ...] = (1, 2, 3, 5)
    num_res_blocks: int = 2
    attention_resolutions: tuple[int, ...] = (8, 4, 2)
    transformer_depth: int = 1
    num_head_channels: int = 32
    extra_sa_layer: bool = True
    norm_groups: int = 32


@dataclass(frozen=True)
class VAEConfig:
    embed_dim: int = 8
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 2, 4)
    num_res_blocks: int = 2
    z_channels: int = 8
    double_z: bool = True
    in_channels: int = 1
    out_ch: int = 1
    resolution: int = 256
    mel_bins: int = 64
    norm_groups: int = 32


@dataclass(frozen=True)
class VocoderConfig:
    num_mels: int = 64
    upsample_rates: tuple[int, ...] = (5, 4, 2, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 8, 4, 4)
    upsample_initial_channel: int = 1024
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))


@dataclass(frozen=True)
class DecoderConfig:
    """Latent diffusion (v-prediction, DDIM, CFG) + VAE decoder + HiFi-GAN, conditioned on [W, 2F + 192]."""

    token_rate: int = 100
    feature_dim: int = 768  # F of the encoder
    pe_dim: int = 192  # sinusoidal position features appended to the condition
    latent_channels: int = 8
    latent_t: int = 256
    latent_f: int = 16
    timesteps: int = 1000
    linear_start: float = 0.0015
    linear_end: float = 0.0195
    parameterization: str = "v"
    unet: UNetConfig = field(default_factory=UNetConfig)
    vae: VAEConfig = field(default_factory=VAEConfig)
    vocoder: VocoderConfig = field(default_factory=VocoderConfig)
    sample_rate: int = SAMPLE_RATE

    @property
    def stack(self) -> int:
        return 100 // self.token_rate

    @property
    def window_tokens(self) -> int:
        """W: condition rows per 10.24 s window (512 / K)."""
        return 512 // self.stack

    @property
    def cond_dim(self) -> int:
        """2F: acoustic ++ semantic feature width."""
        return 2 * self.feature_dim

    @property
    def context_dim(self) -> int:
        """UNet cross-attention context width: 2F + 192 (1728 / 3264 / 6336)."""
        return 2 * self.feature_dim + self.pe_dim


@dataclass(frozen=True)
class SemantiCodecConfig:
    token_rate: int
    vocab: int
    encoder: EncoderConfig
    decoder: DecoderConfig
    tiny: bool = False

    @property
    def bitrate(self) -> float:
        return bitrate(self.token_rate, self.vocab, self.encoder.codebook_size)


_LSTM_LAYERS = {100: 4, 50: 3, 25: 2}


def check_point(token_rate: int, vocab: int) -> None:
    """Raise ValueError listing the operating points when (token_rate, vocab) is not one of the 12."""
    if token_rate not in TOKEN_RATES or vocab not in VOCABS:
        points = ", ".join(
            f"token_rate={r},vocab={v} ({bitrate(r, v) / 1000:g} kbps)" for r in TOKEN_RATES for v in VOCABS
        )
        raise ValueError(
            f"SemantiCodec has no operating point token_rate={token_rate}, vocab={vocab}. Choose one of: {points}."
        )


def get_config(token_rate: int = 100, vocab: int = 16384, tiny: bool = False) -> SemantiCodecConfig:
    """The official configuration at (token_rate, vocab), or its tiny random-weight sibling."""
    check_point(int(token_rate), int(vocab))
    token_rate, vocab = int(token_rate), int(vocab)
    enc = EncoderConfig(token_rate=token_rate, vocab=vocab, lstm_layers=_LSTM_LAYERS[token_rate])
    dec = DecoderConfig(token_rate=token_rate, feature_dim=enc.feature_dim)
    if tiny:
        enc = replace(
            enc, mae_dim=32, mae_depth=3, mae_heads=2, mae_decoder_dim=16, mae_decoder_depth=1,
            mae_decoder_heads=2, contextual_depth=0, lstm_layers=min(enc.lstm_layers, 2),
        )
        dec = replace(
            dec, feature_dim=enc.feature_dim, pe_dim=16,
            # decoder widths kept small so a 2-step tiny decode takes ~1 s on a loaded 2-core machine
            unet=UNetConfig(model_channels=16, channel_mult=(1, 2, 2, 3), num_res_blocks=1, num_head_channels=16,
                            norm_groups=8),
            vae=VAEConfig(ch=16, ch_mult=(1, 1, 2), num_res_blocks=1, norm_groups=8),
            vocoder=VocoderConfig(upsample_initial_channel=32, resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1, 3),)),
        )
    return SemantiCodecConfig(token_rate=token_rate, vocab=vocab, encoder=enc, decoder=dec, tiny=tiny)
