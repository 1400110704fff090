"""Which items a run covers: the task's items, a deterministic subset (`--limit`, `--subset-seed`) and one
shard of them (`--shard K/N`), each choice a pure function of the items' ids, so every machine that holds
the same data picks the same items.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any


def check_limit(limit) -> int | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        try:
            import numpy as np

            if isinstance(limit, np.integer) and limit >= 1:
                return int(limit)
        except ImportError:  # pragma: no cover - numpy is a dependency
            pass
        raise ValueError(f"limit must be a whole number of items >= 1 (or None for all), got {limit!r}")
    return int(limit)


def parse_shard(shard) -> tuple[int, int] | None:
    """"K/N" or (K, N) with 1 <= K <= N -> (K, N); None -> None."""
    if shard is None:
        return None
    if isinstance(shard, str):
        k, sep, n = shard.partition("/")
        try:
            shard = (int(k), int(n)) if sep else None
        except ValueError:
            shard = None
    if not (isinstance(shard, tuple) and len(shard) == 2 and all(isinstance(v, int) for v in shard)
            and 1 <= shard[0] <= shard[1]):
        raise ValueError(f"shard must be K/N with 1 <= K <= N (e.g. 2/8), got {shard!r}")
    return shard


def task_items(task, limit: int | None = None, subset_seed: int | None = None) -> list:
    """The task's items, checked for ids that two items share; with `limit`, the first `limit` of them,
    or (with `subset_seed`) `limit` drawn at random with that seed, kept in the task's order."""
    items = task.items()
    seen: dict[str, Any] = {}
    for item in items:
        if item.id in seen:
            raise ValueError(f"task {task.name}: two items share the id {item.id!r} "
                             f"({seen[item.id].path} and {item.path}); give them distinct names")
        seen[item.id] = item
    if not limit or limit >= len(items):
        return items
    if subset_seed is None:
        return items[:limit]
    # Seeded by the ids, not by their order in memory: the same subset on every machine.
    order = sorted(items, key=lambda i: i.id)
    chosen = {i.id for i in random.Random(f"{subset_seed}").sample(order, limit)}
    return [i for i in items if i.id in chosen]


def _bucket(text: str, n: int) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16) % n


def shard_items(items: list, shard: tuple[int, int] | None) -> list:
    """Shard K of N of `items`: those whose id hashes to bucket K-1 (the split is by id, so it does not
    depend on order, --limit or which other items exist)."""
    if shard is None:
        return items
    k, n = shard
    return [i for i in items if _bucket(i.id, n) == k - 1]


def owns_task(manifest: str, shard: tuple[int, int] | None) -> bool:
    """Whole-task evaluations (the HEAR probe) need every item: exactly one shard runs each task's, chosen
    by the task's portable manifest digest."""
    return shard is None or _bucket(manifest, shard[1]) == shard[0] - 1
