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

import weakref

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


class DerivedWeights:
    """Copies derived from weights (a packed or re-laid-out kernel), made once and remade when a weight changes.

    A copy is reused only while its weight is the same tensor object (a weak reference), on the same storage,
    device and dtype, with the same in-place version counter. Inference tensors (parameters created under
    `torch.inference_mode`) have no version counter, so an in-place edit of one (`copy_`, `load_state_dict`)
    cannot be seen: their copies are never cached, but remade on every call (measured: ~0.24 s per forward of
    the full-size encoder BiLSTM, ~4 %; build models outside inference_mode to keep the cache). Owners call
    `clear()` from a load_state_dict post-hook (`register_clear_on_load`). Not seen either: edits through
    `weight.data` (which bypass the version counter); edit weights under `torch.no_grad()` instead.
    """

    def __init__(self):
        self._entries: dict = {}  # key -> (weakref to the weight, stamp, derived copy)

    def get(self, key, weight: torch.Tensor, make):
        """The copy `make(weight)` for `key`, cached as described above."""
        if weight.is_inference():
            return make(weight)
        stamp = (weight.data_ptr(), weight.device, weight.dtype, weight._version)
        hit = self._entries.get(key)
        if hit is not None and hit[0]() is weight and hit[1] == stamp:
            return hit[2]
        value = make(weight)
        self._entries[key] = (weakref.ref(weight), stamp, value)
        return value

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __getstate__(self) -> dict:  # pickling or deep-copying a model drops the copies (weak references)
        return {"_entries": {}}


def register_clear_on_load(module: nn.Module, cache: DerivedWeights) -> None:
    """Empty `cache` whenever `module` (or a parent) loads a state dict."""
    module.register_load_state_dict_post_hook(_ClearOnLoad(cache))


class _ClearOnLoad:
    """A load_state_dict post-hook (a class, not a lambda, so models stay picklable)."""

    def __init__(self, cache: DerivedWeights):
        self.cache = cache

    def __call__(self, module, incompatible_keys) -> None:
        self.cache.clear()


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
