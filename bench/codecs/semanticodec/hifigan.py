"""HiFi-GAN v1 generator (the official "Generator_old", weight norm already folded) used by SemantiCodec.

mel `[B, 64, T_mel]` (log-mel at 100 frames/s) -> waveform `[B, 1, samples]` at 16 kHz, tanh output.
Key names: `conv_pre`, `ups.i`, `resblocks.{3i+j}.convs1/convs2.k`, `conv_post` (plain weight/bias).

Speed: the convolutions run as 2-D convolutions on `[B, C, 1, L]` in channels-last layout (same weights, a
view of each kernel as `[out, in, 1, k]`): oneDNN then needs no layout reorder between layers, which makes
the vocoder ~1.35x faster on CPU (3.46 -> 2.54 s per 10.24 s window, 2 AMD cores) with outputs equal to
~1e-7. The modules stay `nn.Conv1d`/`nn.ConvTranspose1d`, so the checkpoint keys do not change.

Length quirk reproduced on purpose: ConvTranspose1d padding (k-u)//2 with (u, k) = (5, 16) gives 5*T+1 frames
after the first upsampler, so 1024 mel frames give 160*1024 + 32 = 163 872 samples, not 163 840
(`output_length`).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .onednn import DerivedWeights, register_clear_on_load

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


def _as_2d_kernel(w: torch.Tensor) -> torch.Tensor:
    """A Conv1d/ConvTranspose1d kernel `[a, b, k]` as a channels-last 2-D kernel `[a, b, 1, k]`."""
    return w[:, :, None, :].contiguous(memory_format=torch.channels_last)


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

    def forward(self, x: torch.Tensor, conv=None) -> torch.Tensor:
        """x `[B, C, L]` (or `[B, C, 1, L]` channels-last with `conv` = the generator's 2-D conv)."""
        conv = conv or (lambda m, t: m(t))
        for c1, c2 in zip(self.convs1, self.convs2):
            xt = conv(c2, F.leaky_relu(conv(c1, F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
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
        # module -> its kernel as [out, in, 1, k] channels-last (remade when the weight changes or a state dict
        # is loaded, every call for inference tensors: see onednn.DerivedWeights)
        self._kernels = DerivedWeights()
        register_clear_on_load(self, self._kernels)

    def _kernel(self, m: nn.Module) -> torch.Tensor:
        w = m.weight
        if torch.is_grad_enabled():  # training: no cache, so gradients reach the parameter
            return _as_2d_kernel(w)
        return self._kernels.get(m, w, _as_2d_kernel)

    def _conv(self, m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """`nn.Conv1d` / `nn.ConvTranspose1d` m applied to x `[B, C, 1, L]` as a channels-last 2-D convolution."""
        if isinstance(m, nn.ConvTranspose1d):
            return F.conv_transpose2d(x, self._kernel(m), m.bias, stride=(1, m.stride[0]), padding=(0, m.padding[0]))
        return F.conv2d(x, self._kernel(m), m.bias, stride=(1, m.stride[0]), padding=(0, m.padding[0]),
                        dilation=(1, m.dilation[0]))

    def output_length(self, n_frames: int) -> int:
        return output_length(n_frames, self.upsample_rates, self.upsample_kernel_sizes)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """mel `[B, num_mels, T]` -> `[B, 1, output_length(T)]`."""
        x = self._conv(self.conv_pre, mel[:, :, None, :].contiguous(memory_format=torch.channels_last))
        for i, up in enumerate(self.ups):
            x = self._conv(up, F.leaky_relu(x, LRELU_SLOPE))
            xs = None
            for j in range(self.num_kernels):
                y = self.resblocks[i * self.num_kernels + j](x, conv=self._conv)
                xs = y if xs is None else xs + y
            x = xs / self.num_kernels
        # the last activation uses leaky_relu's default slope 0.01 (official code)
        return torch.tanh(self._conv(self.conv_post, F.leaky_relu(x)))[:, :, 0]
