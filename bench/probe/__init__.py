"""HEAR-protocol probe: embeddings of a HEAR task -> MLP grid (heareval's definitions) -> accuracy / mAP.

Modules: `mlp` (predictor, grid, training, k-fold protocol), `scores` (top1_acc, mAP, ...),
`embed` (log-mel reference, codec latent, decoded-audio log-mel), `evaluation` (the whole run: `evaluate`),
`heareval_io` (heareval's on-disk embedding format). Importing this package does not import torch.
"""

from __future__ import annotations

from typing import Any


def evaluate(*args: Any, **kwargs: Any) -> dict[str, Any]:
    from bench.probe.evaluation import evaluate as _evaluate

    return _evaluate(*args, **kwargs)


def write_heareval_embeddings(*args: Any, **kwargs: Any):
    from bench.probe.heareval_io import write_heareval_embeddings as _write

    return _write(*args, **kwargs)


def read_heareval_embeddings(*args: Any, **kwargs: Any):
    from bench.probe.heareval_io import read_heareval_embeddings as _read

    return _read(*args, **kwargs)


__all__ = ["evaluate", "write_heareval_embeddings", "read_heareval_embeddings"]
