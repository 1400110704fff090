"""The SemantiCodec latent-diffusion UNet (AudioLDM-style "openaimodel" UNetModel, spatial-transformer variant).

Input: noisy latent `[B, 8, 256, 16]` (channels, latent time, latent frequency), integer timesteps `[B]` and the
codec context `[B, N, context_dim]`; output: the v-prediction `[B, 8, 256, 16]`. Key names are those of
`model.diffusion_model.*` in the official decoder.ckpt (input_blocks / middle_block / output_blocks / out /
time_embed, ResBlock in_layers / emb_layers / out_layers / skip_connection, Downsample `op`, Upsample `conv`).

Every attention site holds two SpatialTransformers: the first self-attention only (the official "extra SA
layer"), the second cross-attending to the context.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bench.codecs.semanticodec.attention import SpatialTransformer


def timestep_embedding(timesteps: torch.Tensor, dim: int, max_period: int = 10000) -> torch.Tensor:
    """Sinusoidal embedding `[B]` -> `[B, dim]`, order [cos, sin], freq_i = exp(-ln(max_period) * i / (dim/2))."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(0, half, dtype=torch.float32) / half)
    args = timesteps[:, None].float() * freqs.to(timesteps.device)[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class GroupNorm32(nn.GroupNorm):
    """GroupNorm evaluated in float32 whatever the activation dtype (as the official code; matters for bf16)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).type(x.dtype)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv, + Linear(time embedding), GroupNorm-SiLU-conv, plus a (1x1 conv) skip.

    `[B, C_in, H, W]`, emb `[B, E]` -> `[B, C_out, H, W]`.
    """

    def __init__(self, channels: int, emb_channels: int, out_channels: int | None = None, norm_groups: int = 32):
        super().__init__()
        out_channels = out_channels or channels
        self.in_layers = nn.Sequential(
            GroupNorm32(norm_groups, channels), nn.SiLU(), nn.Conv2d(channels, out_channels, 3, padding=1)
        )
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, out_channels))
        self.out_layers = nn.Sequential(
            GroupNorm32(norm_groups, out_channels), nn.SiLU(), nn.Identity(),  # index 2: dropout(0) slot
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
        )
        self.skip_connection = (
            nn.Identity() if out_channels == channels else nn.Conv2d(channels, out_channels, 1)
        )

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.in_layers(x)
        h = h + self.emb_layers(emb).type(h.dtype)[..., None, None]
        h = self.out_layers(h)
        return self.skip_connection(x) + h


class Downsample(nn.Module):
    """3x3 conv, stride 2, padding 1: `[B, C, H, W]` -> `[B, C, ceil(H/2), ceil(W/2)]`."""

    def __init__(self, channels: int):
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Upsample(nn.Module):
    """Nearest x2 then 3x3 conv: `[B, C, H, W]` -> `[B, C, 2H, 2W]`."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class TimestepEmbedSequential(nn.ModuleList):
    """A numbered list of layers (keys `.0`, `.1`, ...) run in order; ResBlocks get the time embedding and
    cross-attention transformers get the context (or its cached keys/values).

    `batch`: the context's batch. When x arrives with half of it (the CFG pair shares one latent), x and the
    time embedding are duplicated just before the first cross-attention: every layer before it sees the same
    input for both halves, so it runs once. Returns (x, emb).
    """

    def forward(self, x, emb, context=None, kv_iter=None, batch=None):
        for layer in self:
            if isinstance(layer, ResBlock):
                x = layer(x, emb)
            elif isinstance(layer, SpatialTransformer):
                if layer.is_cross:
                    if batch is not None and x.shape[0] != batch:
                        x, emb = torch.cat([x, x]), torch.cat([emb, emb])
                    x = layer(x, context=context, kv=None if kv_iter is None else next(kv_iter))
                else:
                    x = layer(x)
            else:
                x = layer(x)
        return x, emb


@dataclass(frozen=True)
class Stage:
    """One numbered entry of `input_blocks` / `output_blocks`.

    kind "res": a ResBlock to `width` channels at resolution `level` (downsample factor 2**level), followed by
    the two transformers when `attend`, and by an Upsample when `upsample`; kind "down": a lone Downsample.
    """

    kind: str
    level: int
    width: int
    attend: bool = False
    upsample: bool = False


def unet_plan(model_channels: int, channel_mult: Sequence[int], num_res_blocks: int,
              attention_resolutions: Sequence[int]) -> tuple[list[Stage], list[Stage]]:
    """The (encoder, decoder) halves of the UNet as lists of stages, in key order (after the stem conv).

    Encoder: at each level `num_res_blocks` ResBlocks, then a Downsample except at the deepest level.
    Decoder: the levels deepest first, `num_res_blocks + 1` ResBlocks each, every one fed the matching encoder
    output (the stem's included) as a skip; the last one of every level but the top upsamples. Attention runs
    at the levels whose downsample factor is listed in `attention_resolutions`.
    """
    widths = [model_channels * m for m in channel_mult]
    attends = [2 ** level in attention_resolutions for level in range(len(widths))]
    encoder: list[Stage] = []
    for level, width in enumerate(widths):
        encoder += [Stage("res", level, width, attends[level])] * num_res_blocks
        if level < len(widths) - 1:
            encoder.append(Stage("down", level, width))
    decoder = [
        Stage("res", level, widths[level], attends[level], upsample=level > 0 and i == num_res_blocks)
        for level in reversed(range(len(widths))) for i in range(num_res_blocks + 1)
    ]
    return encoder, decoder


class UNetModel(nn.Module):
    """Official UNetModel with use_spatial_transformer=True, extra_sa_layer=True, legacy=True,
    use_scale_shift_norm=False, resblock_updown=False, conv_resample=True, dims=2, dropout=0.

    forward(x `[B, in_channels, H, W]`, timesteps `[B]` int, context `[B, N, context_dim]`) -> `[B, out_channels, H, W]`.
    H and W must be divisible by 2**(len(channel_mult)-1).
    """

    def __init__(
        self,
        in_channels: int = 8,
        out_channels: int = 8,
        model_channels: int = 64,
        channel_mult: Sequence[int] = (1, 2, 3, 5),
        num_res_blocks: int = 2,
        attention_resolutions: Sequence[int] = (8, 4, 2),
        num_head_channels: int = 32,
        transformer_depth: int = 1,
        context_dim: int = 1728,
        norm_groups: int = 32,
        extra_sa_layer: bool = True,
    ):
        super().__init__()
        emb_dim = model_channels * 4
        self.model_channels = model_channels
        self.time_embed = nn.Sequential(nn.Linear(model_channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))

        def attention(ch: int) -> list[nn.Module]:
            heads = ch // num_head_channels
            dim_head = ch // heads  # legacy: width / heads
            cross = SpatialTransformer(ch, heads, dim_head, transformer_depth, context_dim, norm_groups)
            if not extra_sa_layer:
                return [cross]
            return [SpatialTransformer(ch, heads, dim_head, transformer_depth, None, norm_groups), cross]

        def block(stage: Stage, ch_in: int) -> TimestepEmbedSequential:
            if stage.kind == "down":
                return TimestepEmbedSequential([Downsample(ch_in)])
            layers: list[nn.Module] = [ResBlock(ch_in, emb_dim, stage.width, norm_groups)]
            layers += attention(stage.width) if stage.attend else []
            layers += [Upsample(stage.width)] if stage.upsample else []
            return TimestepEmbedSequential(layers)

        encoder, decoder = unet_plan(model_channels, channel_mult, num_res_blocks, attention_resolutions)
        # every encoder block's output width, the stem's first: the decoder takes them back last-in first-out
        skips = [model_channels] + [stage.width for stage in encoder]
        self.input_blocks = nn.ModuleList(
            [TimestepEmbedSequential([nn.Conv2d(in_channels, model_channels, 3, padding=1)])]
            + [block(stage, ch_in) for stage, ch_in in zip(encoder, skips[:-1])]  # each reads its predecessor
        )
        ch = skips[-1]
        self.middle_block = TimestepEmbedSequential(
            [ResBlock(ch, emb_dim, ch, norm_groups), *attention(ch), ResBlock(ch, emb_dim, ch, norm_groups)]
        )
        outs = [ch] + [stage.width for stage in decoder[:-1]]  # a decoder block reads its predecessor's output
        self.output_blocks = nn.ModuleList(
            block(stage, prev + skip) for stage, prev, skip in zip(decoder, outs, reversed(skips))
        )
        ch = decoder[-1].width

        self.out = nn.Sequential(
            GroupNorm32(norm_groups, ch), nn.SiLU(), nn.Conv2d(model_channels, out_channels, 3, padding=1)
        )

    def cross_attention_layers(self) -> list[SpatialTransformer]:
        """The context-attending transformers in execution order (input, middle, output blocks)."""
        blocks = [*self.input_blocks, self.middle_block, *self.output_blocks]
        return [m for blk in blocks for m in blk if isinstance(m, SpatialTransformer) and m.is_cross]

    def context_kv(self, context: torch.Tensor) -> list:
        """Keys/values of every cross-attention for `context` `[B, N, context_dim]`: computed once per sampling
        run and passed to forward(kv=...) at each step (the context is the same at every step)."""
        return [layer.context_kv(context) for layer in self.cross_attention_layers()]

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, context: torch.Tensor | None = None,
                kv: list | None = None, cfg_pair: bool = False) -> torch.Tensor:
        """x `[B, C, H, W]`, timesteps `[B]`, context `[B, N, ctx]` (or kv from `context_kv`) -> `[B, C, H, W]`.

        cfg_pair=True: the context (or kv) has batch 2B ([unconditional; conditional]) and x, timesteps have
        batch B; the result is `[2B, C, H, W]`, equal to running cat([x, x]) but with the context-free first
        layers computed once.
        """
        if context is None and kv is None:
            raise ValueError("UNetModel.forward needs the codec context or its precomputed keys/values (kv=)")
        batch = 2 * x.shape[0] if cfg_pair else x.shape[0]
        emb = self.time_embed(timestep_embedding(timesteps, self.model_channels).to(x.dtype))
        kv_iter = None if kv is None else iter(kv)
        hs = []
        h = x
        for block in self.input_blocks:
            h, emb = block(h, emb, context, kv_iter, batch)
            hs.append(h)
        h, emb = self.middle_block(h, emb, context, kv_iter, batch)
        for block in self.output_blocks:
            skip = hs.pop()
            if skip.shape[0] != h.shape[0]:  # a shared (pre-cross-attention) activation of the CFG pair
                skip = torch.cat([skip, skip])
            h, emb = block(torch.cat([h, skip], dim=1), emb, context, kv_iter, batch)
        h = self.out(h)
        if h.shape[0] != batch:  # no cross-attention at all (not the official config)
            h = torch.cat([h, h])
        return h
