"""Random-init checkpoints written in each codec's official layout, for wiring tests without a network.

`bench weights random NAME --dest DIR` writes what `--weights DIR` then loads exactly as it would load the
released files. The numbers such weights produce mean nothing about the codec: they exercise loading,
shapes, the runner and the reports. A marker file (`RANDOM_WEIGHTS.txt`) beside them makes every table and
plot label their results [random weights].

`discriminating_state` fills a state dict with random values that make a parity test able to fail: module
default inits leave whole tensors constant (zero-initialised output convolutions of diffusion UNets, unit
norm scales, zero biases, a codebook drawn at a scale unrelated to its inputs), which hide a dropped layer,
a swapped scale and bias or a reversed residual. The SemantiCodec golden fixture
(tests/semanticodec/golden/) was made with it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

# state-dict entries that are not weights: a schedule, a counter, a flag or a learnt scalar. They keep their value.
NOT_WEIGHTS = ("betas", "alphas", "posterior_", "sqrt_", "log_one_minus", "logvar", "scale_factor",
               "num_updates", "decay", "initted", "cluster_size")


def _is_weight(key: str) -> bool:
    leaf = key.rsplit(".", 1)[-1]
    return not any(leaf.startswith(p) or leaf == p for p in NOT_WEIGHTS)


def discriminating_state(state: dict, seed: int = 0, skip: Callable[[str], bool] | None = None,
                         zero: Callable[[str], bool] | None = None) -> dict:
    """A copy of `state` (name -> tensor) with every floating weight redrawn, deterministically from `seed`.

    Rules, by entry (in key order, one torch.Generator):
    * matrices and kernels (ndim >= 2, `*weight*`): N(0, 1/fan_in), fan_in = prod(shape[1:]), so
      activations keep a unit scale through deep stacks and no layer is zero;
    * 1-D `weight` (LayerNorm / GroupNorm scales): 1 + N(0, 0.2^2); biases (`bias*`): N(0, 0.1^2);
    * anything else floating (position tables, CLS / mask tokens, codebooks): N(0, 0.5^2);
    * schedules, counters, flags and learnt scalars (`NOT_WEIGHTS`), integer / bool tensors and scalars keep
      their values; `skip(key)` keeps more; `zero(key)` zeroes entries (parts never run at inference, so
      that a fixture of them compresses to nothing).
    """
    import torch

    gen = torch.Generator().manual_seed(int(seed))
    out = {}
    for key, value in state.items():
        t = value.detach()
        if not t.is_floating_point() or t.dim() == 0 or not _is_weight(key) or (skip is not None and skip(key)):
            out[key] = t.clone()
            continue
        if zero is not None and zero(key):
            out[key] = torch.zeros_like(t)
            continue
        leaf = key.rsplit(".", 1)[-1]
        noise = torch.randn(t.shape, generator=gen, dtype=torch.float32)
        if leaf.startswith("bias"):
            new = 0.1 * noise
        elif "weight" in leaf and t.dim() >= 2:
            new = noise / math.sqrt(max(1, math.prod(t.shape[1:])))
        elif "weight" in leaf:
            new = 1.0 + 0.2 * noise
        else:
            new = 0.5 * noise
        out[key] = new.to(t.dtype)
    return out


def write_random(name: str, dest: str | Path, variant: str | None = None, tiny: bool = False, seed: int = 0) -> Path:
    """Write random weights for codec `name` under `dest` in its release layout (a `NeuralCodec`'s `write_random`;
    SemantiCodec's official layout); returns the path written."""
    from bench.codecs import CODECS

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if name == "semanticodec":
        from bench.codecs.semanticodec import weights as W
        from bench.codecs.semanticodec.codec import SemantiCodec
        from bench.codecs.weights import mark_random

        mark_random(dest)
        rate, _, vocab = (variant or "50/4096").partition("/")
        codec = SemantiCodec(token_rate=int(rate), vocab=int(vocab or 4096), pretrained=False, tiny=tiny, seed=seed)
        W.save_official(codec.encoder, codec.decoder, codec.cfg, dest)
        return dest
    cls = CODECS.get(name) if name in CODECS else None
    if cls is not None and hasattr(cls, "write_random"):  # every NeuralCodec
        return cls.write_random(dest, variant=variant, tiny=tiny, seed=seed)
    raise ValueError(f"no random-weight writer for {name!r}; codecs with weights: semanticodec and the transformers "
                     "codecs (encodec, dac, mimi, xcodec, xcodec2, neucodec, wavtokenizer, higgs)")
