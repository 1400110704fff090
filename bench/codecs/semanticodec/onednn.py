"""float32 CPU matrix products through oneDNN, for inference.

Why: PyTorch's CPU `F.linear`/`torch.mm` call MKL's sgemm, which on AMD CPUs runs at about half the
throughput of oneDNN's (measured on the 2-core AMD EPYC of our CI machines: 200 vs 400 GFLOP/s for the
AudioMAE-sized products; on Intel CPUs the two are close). oneDNN ships inside every PyTorch CPU build
and PyTorch's own compiler uses it through `torch.ops.mkldnn._linear_pointwise`; we call the same op.
Results are float32 products with another summation order than MKL's: they differ from `F.linear` in
the last bits (~1e-7 relative), the same kind of difference a change of batch size makes.

Everything falls back to plain PyTorch when oneDNN is absent or disabled (`torch.backends.mkldnn.enabled
= False`), off CPU, outside float32, under autocast or torch.compile, or when autograd is recording.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_OPS = getattr(torch.ops, "mkldnn", None)


def available() -> bool:
    """Does this PyTorch build have the oneDNN ops we call?"""
    try:
        return (torch.backends.mkldnn.is_available() and hasattr(_OPS, "_linear_pointwise")
                and hasattr(_OPS, "_reorder_linear_weight"))
    except RuntimeError:  # pragma: no cover - torch.ops lookups raise on builds without the op
        return False


_AVAILABLE = available()


def usable(*tensors: torch.Tensor) -> bool:
    """Would `linear`/`packed` take the oneDNN path for these tensors now?"""
    if not (_AVAILABLE and torch.backends.mkldnn.enabled) or torch.is_autocast_enabled("cpu"):
        return False
    if torch.compiler.is_compiling():  # torch.compile picks its own kernels (oneDNN among them)
        return False
    grad = torch.is_grad_enabled()
    return all(t.device.type == "cpu" and t.dtype == torch.float32 and not (grad and t.requires_grad)
               for t in tensors)


def weight_stamp(w: torch.Tensor) -> tuple:
    """What identifies a weight's current values for a derived-copy cache: storage, device, dtype and, for
    ordinary tensors, the in-place version counter (inference tensors, made under inference_mode, have none)."""
    return (w.data_ptr(), w.device, w.dtype, None if w.is_inference() else w._version)


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """`x [..., K] @ weight[N, K].T + bias[N]` -> `[..., N]`; oneDNN when usable, else `F.linear`."""
    if not usable(x, weight, *([] if bias is None else [bias])):
        return F.linear(x, weight, bias)
    flat = x.reshape(-1, x.shape[-1])
    out = _OPS._linear_pointwise(flat, weight, bias, "none", [None], "")
    return out.reshape(*x.shape[:-1], weight.shape[0])


def packed(weight: torch.Tensor, batch: int) -> torch.Tensor | None:
    """`weight [N, K]` reordered once into oneDNN's blocked layout for products with `batch` rows, or None."""
    if not usable(weight):
        return None
    return _OPS._reorder_linear_weight(weight, batch)


def linear_add(x: torch.Tensor, weight_packed: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """`x [M, K] @ W.T + other [M, N]` in one oneDNN call (`weight_packed` from `packed(W, M)`)."""
    return _OPS._linear_pointwise.binary(x, other, weight_packed, None, "add")


class Linear(nn.Linear):
    """`nn.Linear` (same parameters and state-dict keys) whose inference forward uses oneDNN."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)
