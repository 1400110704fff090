"""AudioMAE (ViT-B/16 masked autoencoder on 1024x128 fbank) as SemantiCodec uses it: a frozen feature extractor.

Module and parameter names follow the official checkpoint (`audiomae.model.*`, timm's `Block` layout:
`blocks.i.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}`), so `encoder.ckpt` loads with strict
key checking. The MAE decoder (`decoder_*`, `mask_token`) is declared so its weights load and can be
verified, but it is never run: SemantiCodec reads only the encoder, without masking.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from . import onednn
from .config import EncoderConfig


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection (timm layout)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = onednn.Linear(dim, dim * 3, bias=True)
        self.proj = onednn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = onednn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = onednn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block (LayerNorm eps 1e-6, as AudioMAE builds timm's Block)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch: int, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(1, dim, kernel_size=patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # [B, 1, T, M] -> [B, D, T/16, M/16] -> [B, (T/16)*(M/16), D], time-major (index t*8 + f)
        return self.proj(x).flatten(2).transpose(1, 2)


class MaskedAutoencoderViT(nn.Module):
    """The AudioMAE network; only `features` is used."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        t, f = cfg.grid
        n = t * f
        d, dd = cfg.mae_dim, cfg.mae_decoder_dim
        self.contextual_depth = cfg.contextual_depth
        self.patch_embed = PatchEmbed(cfg.mae_patch, d)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, n + 1, d), requires_grad=False)
        self.blocks = nn.ModuleList(Block(d, cfg.mae_heads, cfg.mae_mlp_ratio) for _ in range(cfg.mae_depth))
        self.norm = nn.LayerNorm(d, eps=1e-6)
        # MAE decoder: present in the checkpoint, unused at inference
        self.decoder_embed = nn.Linear(d, dd)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dd))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, n + 1, dd), requires_grad=False)
        self.decoder_blocks = nn.ModuleList(
            Block(dd, cfg.mae_decoder_heads, cfg.mae_mlp_ratio) for _ in range(cfg.mae_decoder_depth)
        )
        self.decoder_norm = nn.LayerNorm(dd, eps=1e-6)
        self.decoder_pred = nn.Linear(dd, cfg.mae_pred_dim)

    def transformer_input(self, x: torch.Tensor) -> torch.Tensor:
        """fbank `[B, 1, 1024, 128]` -> the transformer input `[B, 1 + 512, D]`: the CLS token, then the patches
        in time-major order, each with its row of the stored position table (row 0 belongs to CLS)."""
        patches = self.patch_embed(x)
        cls = self.cls_token.expand(patches.shape[0], -1, -1)
        return torch.cat((cls + self.pos_embed[:, :1, :], patches + self.pos_embed[:, 1:, :]), dim=1)

    def hidden_states(self, x: torch.Tensor) -> Iterator[torch.Tensor]:
        """Yield the output of each encoder block in turn for a transformer input `[B, 1 + N, D]`."""
        for block in self.blocks:
            x = block(x)
            yield x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """fbank `[B, 1, 1024, 128]` -> patch features `[B, 512, D]`, no masking.

        The feature is contextual, not the last layer: the final LayerNorm is applied to the output of every
        block deeper than `contextual_depth` (blocks 9-11 of ViT-B) and those are averaged; CLS is dropped.
        The normalised outputs are stacked and then averaged, the summation order of the official code, so
        the result agrees to the last bit."""
        deep = [self.norm(h) for depth, h in enumerate(self.hidden_states(self.transformer_input(x)))
                if depth > self.contextual_depth]
        return torch.stack(deep).mean(dim=0)[:, 1:, :]


class AudioMAE(nn.Module):
    """Holder whose only child is `model`, so keys read `audiomae.model.*` like the official wrapper."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.model = MaskedAutoencoderViT(cfg)

    def forward(self, fbank: torch.Tensor) -> torch.Tensor:
        """fbank `[B, 1024, 128]` (normalised) -> patch features `[B, 512, D]`."""
        return self.model.features(fbank.unsqueeze(1))


def stack_patches(feat: torch.Tensor, stack: int, grid: tuple[int, int] = (64, 8)) -> torch.Tensor:
    """Group AudioMAE patches into tokens: `[B, 512, D]` -> `[B, 512 / K, K * D]`.

    K=1: unchanged (order t*8 + f). K=2: adjacent frequency pairs (f=2j, 2j+1) side by side, order
    t*4 + j. K=4: 2x2 (time, freq) blocks with channel order (0,0),(0,1),(1,0),(1,1), order t'*4 + j.
    """
    if stack == 1:
        return feat
    b, n, d = feat.shape
    t, f = grid
    g = feat.reshape(b, t, f, d)
    if stack == 2:
        return g.reshape(b, t * (f // 2), 2 * d)
    if stack == 4:
        g = g.reshape(b, t // 2, 2, f // 2, 2, d).permute(0, 1, 3, 2, 4, 5)
        return g.reshape(b, (t // 2) * (f // 2), 4 * d)
    raise ValueError(f"stack factor must be 1, 2 or 4, got {stack}")
