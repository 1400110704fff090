"""Transformer blocks of the SemantiCodec latent-diffusion UNet (LDM "SpatialTransformer").

Module and parameter names follow the official checkpoint (`transformer_blocks.0.attn1.to_q`, `ff.net.0.proj`,
`ff.net.2`, `norm1..3`, `proj_in`, `proj_out`) so decoder.ckpt loads with strict key checking.

Shapes: feature maps `[B, C, H, W]` (H = latent time, W = latent frequency); token sequences `[B, L, D]`;
the cross-attention context `[B, N, context_dim]` (N = tokens per 10.24 s window).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .onednn import Linear


class CrossAttention(nn.Module):
    """Multi-head attention; self-attention when built with context_dim None.

    The softmax(QK^T / sqrt(d)) V product runs through `scaled_dot_product_attention` (same maths as the official
    einsum form; equal to float tolerance). `kv` lets the caller pass keys/values computed once per sampling run:
    the codec context does not change across DDIM steps.
    """

    def __init__(self, query_dim: int, context_dim: int | None, heads: int, dim_head: int):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.dim_head = dim_head
        self.is_cross = context_dim is not None
        kv_dim = context_dim if context_dim is not None else query_dim
        self.to_q = Linear(query_dim, inner, bias=False)
        self.to_k = Linear(kv_dim, inner, bias=False)
        self.to_v = Linear(kv_dim, inner, bias=False)
        # index 1 of the official Sequential is a Dropout(0): it holds no parameters
        self.to_out = nn.Sequential(Linear(inner, query_dim))

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        b, n, _ = t.shape
        return t.view(b, n, self.heads, self.dim_head).transpose(1, 2)

    def context_kv(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """context `[B, N, context_dim]` -> (k, v) each `[B, heads, N, dim_head]`."""
        return self._split(self.to_k(context)), self._split(self.to_v(context))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                kv: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """x `[B, L, query_dim]` -> `[B, L, query_dim]`."""
        q = self._split(self.to_q(x))
        if kv is None:
            kv = self.context_kv(x if context is None else context)
        k, v = kv
        out = F.scaled_dot_product_attention(q, k, v)
        b, h, n, d = out.shape
        return self.to_out(out.transpose(1, 2).reshape(b, n, h * d))


class GEGLU(nn.Module):
    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = Linear(dim_in, dim_out * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = self.proj(x).chunk(2, dim=-1)
        return x * F.gelu(gate)


class FeedForward(nn.Module):
    """GEGLU feed-forward, inner width 4*dim; `net.1` is a parameter-free dropout slot kept for key indices."""

    def __init__(self, dim: int, mult: int = 4):
        super().__init__()
        inner = dim * mult
        self.net = nn.Sequential(GEGLU(dim, inner), nn.Identity(), Linear(inner, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class BasicTransformerBlock(nn.Module):
    """x += attn1(norm1 x); x += attn2(norm2 x, context); x += ff(norm3 x). attn2 is self-attention when the
    block has no context_dim (the official "extra self-attention layer")."""

    def __init__(self, dim: int, heads: int, dim_head: int, context_dim: int | None):
        super().__init__()
        self.attn1 = CrossAttention(dim, None, heads, dim_head)
        self.ff = FeedForward(dim)
        self.attn2 = CrossAttention(dim, context_dim, heads, dim_head)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                kv: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        x = self.attn1(self.norm1(x)) + x
        x = self.attn2(self.norm2(x), context=context, kv=kv) + x
        return self.ff(self.norm3(x)) + x


class SpatialTransformer(nn.Module):
    """GroupNorm (eps 1e-6) -> 1x1 conv -> transformer blocks over the H*W positions -> 1x1 conv, residual.

    `[B, C, H, W]` -> `[B, C, H, W]`; positions are flattened H-major (`h * W + w`) as in the official code.
    """

    def __init__(self, channels: int, heads: int, dim_head: int, depth: int = 1,
                 context_dim: int | None = None, norm_groups: int = 32):
        super().__init__()
        inner = heads * dim_head
        self.is_cross = context_dim is not None
        self.norm = nn.GroupNorm(norm_groups, channels, eps=1e-6, affine=True)
        self.proj_in = nn.Conv2d(channels, inner, kernel_size=1)
        self.transformer_blocks = nn.ModuleList(
            [BasicTransformerBlock(inner, heads, dim_head, context_dim) for _ in range(depth)]
        )
        self.proj_out = nn.Conv2d(inner, channels, kernel_size=1)

    def context_kv(self, context: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Keys/values of the cross-attention of every block, for reuse over all sampling steps."""
        return [blk.attn2.context_kv(context) for blk in self.transformer_blocks]

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None) -> torch.Tensor:
        b, c, h, w = x.shape
        x_in = x
        x = self.proj_in(self.norm(x))
        x = x.flatten(2).transpose(1, 2)  # [B, H*W, inner]
        for i, blk in enumerate(self.transformer_blocks):
            x = blk(x, context=context, kv=None if kv is None else kv[i])
        x = x.transpose(1, 2).reshape(b, -1, h, w)
        return self.proj_out(x) + x_in
