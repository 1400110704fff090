"""`bench merge WS... --out WS`: the workspaces of `bench run --shard K/N` united into the results of one run.

Per-item rows (scores, failures, encodes) and cached outputs are copied as they are; each summary cell is
recomputed over the union of the shards' item sets with the metric's own aggregate (WER is total errors
over total words, not a mean of shard means), so the merged cells equal those of an unsharded run. A
whole-task evaluation (the HEAR probe) ran in exactly one shard and is copied from it. Shards that ran
other items, other code versions, or a set of shards with one missing, are refused with one line.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from bench.store import ResultStore, StoreError, items_digest

log = logging.getLogger(__name__)


class MergeError(StoreError):
    """Workspaces that cannot be merged; the message says which and why."""


@dataclass
class Merged:
    workspaces: int = 0
    cells: int = 0
    scores: int = 0
    files: int = 0
    notes: list[str] = field(default_factory=list)


def merge(workspaces: list[str | Path], out: str | Path, allow_partial: bool = False) -> Merged:
    """Unite shard workspaces into `out` (a new or empty workspace, or one of earlier merges)."""
    paths = [Path(w) for w in workspaces]
    if not paths:
        raise MergeError("bench merge needs at least one workspace to merge")
    if Path(out).resolve() in {p.resolve() for p in paths}:
        raise MergeError(f"--out {out} is one of the workspaces being merged; give a new folder")
    sources = [ResultStore(p, readonly=True) for p in paths]
    target = ResultStore(out)
    summary = Merged(workspaces=len(sources))
    try:
        with target.writer():
            groups: dict[tuple[str, str, str], list[dict]] = {}
            for src in sources:
                _copy_rows(src, target, summary)
                for cell in src.cells().to_dict("records"):
                    groups.setdefault((cell["fingerprint"], cell["task"], cell["metric"]), []).append(cell)
            levels = {key: meta.get("level", "item") for key, meta in target.metric_rows()}
            identities = {key: meta.get("identity") or key for key, meta in target.metric_rows()}
            for (fp, task, key), cells in sorted(groups.items()):
                if levels.get(key) == "task":
                    _copy_task_cell(target, fp, task, key, cells)
                else:
                    _merge_item_cell(target, fp, task, key, identities.get(key, key), cells, allow_partial, summary)
                summary.cells += 1
    finally:
        for src in sources:
            src.close()
    return summary


def _copy_rows(src: ResultStore, dst: ResultStore, summary: Merged) -> None:
    for c in src.codec_records():
        dst.add_codec(c["fingerprint"], c["name"], c["options"], c["label"], c["nominal_kbps"], c["meta"])
    for m in src.metric_records():
        dst.add_metric(m["identity"], m["name"], m["key"], m["meta"])
    known = {(r["task"], r["item"]): r["signature"] for r in dst.items_frame().to_dict("records")}
    for item in src.items_frame().to_dict("records"):
        before = known.get((item["task"], item["item"]))
        if before and item["signature"] and before != item["signature"]:
            raise MergeError(f"{src.root}: item {item['item']} of {item['task']} has other content than in the "
                             "workspaces merged before it; shards must run on the same files")
        dst.add_item(item["task"], item["item"], item["domain"], item["sample_rate"], item["seconds"], item["text"],
                     item["label"], item["path"], signature=item["signature"])
    for enc in src.encodes_frame().to_dict("records"):
        enc["path"] = _copy_output(src, dst, enc["path"], summary)
        dst.record_item(enc["fingerprint"], enc["task"], enc["item"], encode=enc)
    scores: dict[tuple[str, str, str], dict[str, dict[str, float]]] = {}
    for r in src.scores_frame().itertuples():
        scores.setdefault((r.fingerprint, r.task, r.item), {}).setdefault(r.metric, {})[r.key] = r.value
    for (fp, task, item), values in scores.items():
        dst.record_item(fp, task, item, scores=values)
        summary.scores += sum(len(v) for v in values.values())
    for f in src.failures():
        dst.record_item(f["fingerprint"], f["task"], f["item"], failures=[(f["stage"], f["metric"], f["error"])])
    for run in src.runs():
        dst.start_run({**run["config"], "merged_from": str(src.root)}, run["environment"])


def _copy_output(src: ResultStore, dst: ResultStore, path, summary: Merged) -> str | None:
    """Copy a cached output into the target's cache (same relative place) and return its new path."""
    if not isinstance(path, str) or not path:
        return None
    old = Path(path)
    try:
        rel = old.resolve().relative_to(src.cache_dir.resolve())
    except ValueError:
        return path  # outside the workspace: keep pointing at it
    new = dst.cache_dir / rel
    if old.exists() and not new.exists():
        new.parent.mkdir(parents=True, exist_ok=True)
        tmp = new.with_suffix(".tmp")
        try:
            os.link(old, tmp)  # same file system: no copy
        except OSError:
            shutil.copyfile(old, tmp)
        os.replace(tmp, new)
        summary.files += 1
    return str(new)


def _copy_task_cell(dst: ResultStore, fp: str, task: str, key: str, cells: list[dict]) -> None:
    digests = {c["items_digest"] for c in cells}
    if len(digests) > 1:
        raise MergeError(f"{key} on {task}: the workspaces hold whole-task results over different item sets")
    c = max(cells, key=lambda c: c.get("updated") or 0)
    extra = json.loads(c["extra"] or "{}")
    extra.pop("shard", None)
    items = json.loads(c["items"]) if c.get("items") else None
    dst.write_cell(fp, task, key, c["value"], c["n"], c["n_failed"], c["n_skipped"], extra,
                   items_digest=c["items_digest"], codec_version=c["codec_version"],
                   metric_version=c["metric_version"], items=[tuple(p) for p in items] if items else None)


def _merge_item_cell(dst: ResultStore, fp: str, task: str, key: str, identity: str, cells: list[dict],
                     allow_partial: bool, summary: Merged) -> None:
    from bench.metrics import load_metric

    extras = [json.loads(c["extra"] or "{}") for c in cells]
    manifests = {e.get("manifest") for e in extras}
    if len(manifests) > 1:
        raise MergeError(f"{key} on {task}: the shards ran different item lists (another --limit, "
                         "--subset-seed or data); run every shard with the same options")
    versions = {(c["codec_version"], c["metric_version"]) for c in cells}
    if len(versions) > 1:
        raise MergeError(f"{key} on {task}: the shards ran different code versions {sorted(versions)}; "
                         "re-run the older shards with this bench")
    shards = {e.get("shard") for e in extras}
    if None not in shards:
        n = int(next(iter(shards)).split("/")[1])
        missing = sorted(set(range(1, n + 1)) - {int(s.split("/")[0]) for s in shards})
        if missing:
            message = (f"{task}: shard(s) {', '.join(f'{k}/{n}' for k in missing)} are missing; merge every shard's "
                       "workspace (or pass --allow-partial to merge what is there, marked partial)")
            if not allow_partial:
                raise MergeError(message)
            summary.notes.append(message)
    pairs = sorted({tuple(p) for c in cells for p in json.loads(c["items"] or "[]")})
    ids = [item for item, _ in pairs]
    rows = dst.item_scores(fp, task, key, ids)
    metric = load_metric(identity)
    value = metric.aggregate(list(rows.values())) if rows else float("nan")
    extra = {k: v for k, v in extras[0].items() if k != "shard"}
    if None not in shards and summary.notes:
        extra["partial"] = True
    dst.write_cell(fp, task, key, value, len(rows), sum(int(c["n_failed"]) for c in cells),
                   sum(int(c["n_skipped"]) for c in cells), extra, items_digest=items_digest(pairs),
                   codec_version=cells[0]["codec_version"], metric_version=cells[0]["metric_version"], items=pairs)
