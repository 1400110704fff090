"""`probe`: HEAR-protocol classification accuracy of a codec's representation (a task-level metric).

The runner calls, once per (codec, task):

    values = Probe(grid="full", pooling="mean", seed=42).evaluate(codec, task, items=None, decoded=None)

- codec: a built Codec, or None for the reference row (log-mel of the uncoded audio).
- task: a HEAR task (`demo-digits`, `demo-instruments`, `demo-drums`, `hear:PATH`); other tasks are
  skipped (`skip_reason_task`).
- items: optional subset of the task's items (e.g. the runner's --limit); default all.
- decoded (alias encode_decode): optional callable `decoded(item) -> (audio float32 [C, T], sample_rate)`
  returning the codec's DECODED audio of one item (the runner's cache). Used only when the probe embeds
  decoded audio (codecs without `embed()`); without it the probe encodes and decodes itself.

Embedding kind (in the result and worth keying on): "codec-latent" (time-pooled `codec.embed()`),
"decoded-logmel" (64-band log-mel of the decoded audio: classic codecs, identity) or "logmel"
(uncoded reference). Option `embedding=auto|latent|decoded` forces one; it is part of identity().

Returns a dict: "probe" (the test score of the task's first HEAR score: top1_acc for multiclass,
mAP for multilabel), "top1_acc", "mAP" (+ "_std" over k folds), "chance", "n", "n_failed", "dim",
and strings "embedding_kind", "embedder", "primary", plus "best_params" and per-fold "folds".
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from bench.metrics.base import Metric, MetricError, MetricMeta, package_version

log = logging.getLogger(__name__)


class _Subset:
    """A task restricted to some of its items (keeps the HEAR metadata)."""

    def __init__(self, task, items: list):
        self._task, self._items = task, list(items)
        self.hear_metadata, self.vocabulary = task.hear_metadata, task.vocabulary
        self.meta, self.root = task.meta, getattr(task, "root", None)

    @property
    def name(self) -> str:
        return self._task.name

    def items(self) -> list:
        return self._items


class Probe(Metric):
    name = "probe"
    code_version = "1"
    meta = MetricMeta(
        name="probe", sample_rate=None, higher_is_better=True, domains=(), unit="accuracy",
        definition="HEAR protocol: time-pooled embeddings -> MLP grid (heareval 2021.1.3 defaults), "
                   "model selection on validation, test score of the task's first metric",
        level="task",
    )

    def __init__(self, grid: str = "full", pooling: str = "mean", seed: int = 42, embedding: str = "auto",
                 **options: Any):
        from bench.probe.embed import POOLINGS
        from bench.probe.mlp import GRIDS

        if options:
            raise MetricError(f"probe has no option {', '.join(map(repr, options))}; "
                              "options: grid=reduced|full, pooling=mean|meanstd, seed=INT, "
                              "embedding=auto|latent|decoded")
        if grid not in GRIDS:
            raise MetricError(f"probe: grid={grid!r}; use one of {', '.join(GRIDS)}")
        if pooling not in POOLINGS:
            raise MetricError(f"probe: pooling={pooling!r}; use one of {', '.join(POOLINGS)}")
        if embedding not in ("auto", "latent", "decoded"):
            raise MetricError(f"probe: embedding={embedding!r}; use auto, latent or decoded")
        given = {"grid": grid, "pooling": pooling, "seed": int(seed), "embedding": embedding}
        defaults = {"grid": "full", "pooling": "mean", "seed": 42, "embedding": "auto"}
        # identity() shows only what differs from the defaults, so default runs key as plain "probe"
        super().__init__(**{k: v for k, v in given.items() if v != defaults[k]})
        self.grid, self.pooling, self.seed, self.embedding = grid, pooling, int(seed), embedding

    def backend(self) -> dict[str, Any]:
        """The protocol's settings (the grid points with their training settings, pooling, embedding choice,
        seed) and the versions of the libraries that train and score the MLP."""
        from bench.probe.mlp import grid_points

        return {"grid_points": [p.to_dict() for p in grid_points(self.grid)], "pooling": self.pooling,
                "embedding": self.embedding, "seed": self.seed, "torch": package_version("torch"),
                "numpy": package_version("numpy"), "scipy": package_version("scipy")}

    def score(self, ref, rec, sample_rate: int, item=None) -> dict[str, float]:
        raise MetricError("probe is a task-level metric: call Probe.evaluate(codec, task), not score() per item")

    def skip_reason_task(self, task) -> str | None:
        if getattr(task, "hear_metadata", None) is None:
            return (f"probe needs a HEAR task (demo-digits, demo-instruments, demo-drums or hear:PATH); "
                    f"{getattr(task, 'name', task)} is not one")
        return None

    def embedding_kind(self, codec) -> str:
        """What this probe will embed for `codec`: "logmel", "codec-latent" or "decoded-logmel"."""
        from bench.probe.embed import make_embedder

        return make_embedder(codec, None, self.embedding).kind

    def evaluate(self, codec, task, encode_decode: Callable | None = None, items: list | None = None,
                 decoded: Callable | None = None) -> dict[str, Any]:
        from bench.probe.evaluation import evaluate

        reason = self.skip_reason_task(task)
        if reason:
            raise MetricError(reason)
        if items is not None:
            task = _Subset(task, items)
        res = evaluate(codec, task, pooling=self.pooling, grid=self.grid, seed=self.seed,
                       encode_decode=encode_decode or decoded, embedding=self.embedding)
        keep = ("top1_acc", "mAP", "top1_acc_std", "mAP_std", "chance", "dim", "n_failed", "embedding_kind",
                "embedder", "primary", "pooling", "grid", "best_params", "folds")
        out: dict[str, Any] = {k: res[k] for k in keep if k in res}
        out.update({k: v for k, v in res.items() if k in task.hear_metadata.get("evaluation", [])})
        out["probe"] = res["score"]
        out["n"] = int(sum(res["n_items"].values()))
        return out
