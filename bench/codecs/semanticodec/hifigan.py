"""HiFi-GAN v1 generator (the official "Generator_old", weight norm already folded) used by SemantiCodec.

mel `[B, 64, T_mel]` (log-mel at 100 frames/s) -> waveform `[B, 1, samples]` at 16 kHz, tanh output.
Key names: `conv_pre`, `ups.i`, `resblocks.{3i+j}.convs1/convs2.k`, `conv_post` (plain weight/bias).

Length quirk reproduced on purpose: ConvTranspose1d padding (k-u)//2 with (u, k) = (5, 16) gives 5*T+1 frames
after the first upsampler, so 1024 mel frames give 160*1024 + 32 = 163 872 samples, not 163 840
(`output_length`).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

LRELU_SLOPE = 0.1


def _pad(kernel: int, dilation: int = 1) -> int:
    return (kernel * dilation - dilation) // 2


def output_length(n_frames: int, upsample_rates: Sequence[int] = (5, 4, 2, 2, 2),
                  upsample_kernel_sizes: Sequence[int] = (16, 16, 8, 4, 4)) -> int:
    """Samples produced for `n_frames` mel frames: L <- (L-1)*u - 2*((k-u)//2) + k per upsampler."""
    length = n_frames
    for u, k in zip(upsample_rates, upsample_kernel_sizes):
        length = (length - 1) * u - 2 * ((k - u) // 2) + k
    return length


class ResBlock1(nn.Module):
    """Three (dilated conv, conv) pairs with leaky-ReLU and residuals; length-preserving."""

    def __init__(self, channels: int, kernel: int, dilations: Sequence[int]):
        super().__init__()
        self.convs1 = nn.ModuleList(
            [nn.Conv1d(channels, channels, kernel, 1, dilation=d, padding=_pad(kernel, d)) for d in dilations]
        )
        self.convs2 = nn.ModuleList(
            [nn.Conv1d(channels, channels, kernel, 1, dilation=1, padding=_pad(kernel)) for _ in dilations]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2):
            xt = c2(F.leaky_relu(c1(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
            x = xt + x
        return x


class Generator(nn.Module):
    """HiFi-GAN generator; mel `[B, num_mels, T]` -> wave `[B, 1, output_length(T)]`."""

    def __init__(
        self,
        num_mels: int = 64,
        upsample_rates: Sequence[int] = (5, 4, 2, 2, 2),
        upsample_kernel_sizes: Sequence[int] = (16, 16, 8, 4, 4),
        upsample_initial_channel: int = 1024,
        resblock_kernel_sizes: Sequence[int] = (3, 7, 11),
        resblock_dilations: Sequence[Sequence[int]] = ((1, 3, 5), (1, 3, 5), (1, 3, 5)),
    ):
        super().__init__()
        self.upsample_rates = tuple(upsample_rates)
        self.upsample_kernel_sizes = tuple(upsample_kernel_sizes)
        self.num_kernels = len(resblock_kernel_sizes)
        self.conv_pre = nn.Conv1d(num_mels, upsample_initial_channel, 7, 1, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        ch = upsample_initial_channel
        for i, (u, k) in enumerate(zip(upsample_rates, upsample_kernel_sizes)):
            ch = upsample_initial_channel // (2 ** (i + 1))
            self.ups.append(nn.ConvTranspose1d(ch * 2, ch, k, u, padding=(k - u) // 2))
            for k_r, d in zip(resblock_kernel_sizes, resblock_dilations):
                self.resblocks.append(ResBlock1(ch, k_r, d))
        self.conv_post = nn.Conv1d(ch, 1, 7, 1, padding=3)

    def output_length(self, n_frames: int) -> int:
        return output_length(n_frames, self.upsample_rates, self.upsample_kernel_sizes)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(mel)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            xs = None
            for j in range(self.num_kernels):
                y = self.resblocks[i * self.num_kernels + j](x)
                xs = y if xs is None else xs + y
            x = xs / self.num_kernels
        # the last activation uses leaky_relu's default slope 0.01 (official code)
        return torch.tanh(self.conv_post(F.leaky_relu(x)))
