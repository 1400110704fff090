"""The runner: the only place that knows the whole matrix codec x operating point x task x metric.

For each codec and task it reads every item, resamples it to the codec's rate, encodes, decodes,
trims to the input length, caches the output, resamples reference and reconstruction to each metric's
rate and scores them. Every item's results are committed to the ResultStore before the next item, so
an interrupted run resumes where it stopped and a re-run with the same codecs does no codec work.

Per-item problems (unreadable, empty, silent, NaN, too short, a codec or metric error) are stored as
failures with the item id and reason, counted, and never stop the run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from bench import audio as au
from bench.coding import batch_outputs, batch_size, batchable, codec_output
from bench.scoring import metric_key, process_item, process_reference
from bench.scoring import reason as _reason
from bench.workers import Pool as _Pool
from bench.workers import Workers as _Workers
from bench.workers import metric_builds
from bench.workers import run_remote as _run_remote
from bench.workers import _WORKER, _worker_batch, _worker_init, _worker_item  # noqa: F401 - job names
from bench.store import REFERENCE, ResultStore

log = logging.getLogger(__name__)

# Metrics a run uses when none are named: the item-level metrics of the headline tables (estoi and mel-dac,
# variants of stoi and mel, and the task-level probe run when named).
DEFAULT_METRICS = ("visqol", "wer", "mel", "stft", "pesq", "stoi", "sisdr", "dnsmos", "warpq", "spk-sim")


@dataclass
class CodecSpec:
    """A codec by name and options, optionally behind a packet-loss channel (`bench.channel`, "loss=0.1,...").

    Workers and Ray actors receive the spec and build the codec themselves, channel included."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    channel: str | None = None

    @classmethod
    def parse(cls, spec: "str | CodecSpec | tuple") -> "CodecSpec":
        from bench.registry import parse_spec

        if isinstance(spec, CodecSpec):
            return spec
        if isinstance(spec, tuple):
            return cls(spec[0], dict(spec[1]), *spec[2:3])
        name, options = parse_spec(spec)
        return cls(name, options)

    def build(self):
        from bench.channel import apply_channel
        from bench.codecs import load_codec

        return apply_channel(load_codec(self.name, **self.options), self.channel)


def with_channels(specs: list[CodecSpec], channels: list[str]) -> list[CodecSpec]:
    """Every spec plain (loss 0) and behind each channel: the rows of a quality-against-loss curve.

    Channels are checked (one-line `ChannelError`) and written in canonical form; lossless ones and
    repeats add nothing beyond the plain codec."""
    from bench.channel import ChannelSpec

    canon: list[str] = []
    for text in channels:
        parsed = ChannelSpec.parse(text)
        if not parsed.lossless and str(parsed) not in canon:
            canon.append(str(parsed))
    out = []
    for spec in specs:
        out.append(spec)
        out.extend(CodecSpec(spec.name, dict(spec.options), ch) for ch in canon if spec.channel is None)
    return out


_WARNED_LOAD: set[tuple[str, str]] = set()

ProgressFactory = Callable[[int, str], Any]  # (total, description) -> object with update(n) and close()


class _NoProgress:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


# -- the matrix -----------------------------------------------------------------------------------

class Results:
    """What `run` returns: a view of the store restricted to this run's codecs, tasks and metrics."""

    def __init__(self, store: ResultStore, fingerprints: list[str], tasks: list[str], metrics: list[str],
                 elapsed: float, codec_work: int):
        self.store = store
        self.fingerprints = fingerprints
        self.tasks = tasks
        self.metrics = metrics  # storage keys (Metric.fingerprint())
        self.elapsed = elapsed
        self.codec_work = codec_work  # items the codecs actually ran on (0 when everything came from the cache)

    @property
    def out(self) -> Path:
        return self.store.root

    def to_frame(self):
        """One row per codec, operating point, task and metric (plus the uncoded reference rows)."""
        from bench.reports.frame import summary_frame

        return summary_frame(self.store, self.fingerprints + [REFERENCE], self.tasks, self.metrics)

    def failures(self):
        import pandas as pd

        rows = [f for f in self.store.failures() if f["fingerprint"] in self.fingerprints + [REFERENCE]
                and f["task"] in self.tasks]
        return pd.DataFrame(rows, columns=["fingerprint", "task", "item", "stage", "metric", "error"])


def environment() -> dict[str, Any]:
    import bench

    from bench.machine import cpu_model

    env = {"bench": bench.__version__, "python": platform.python_version(), "platform": platform.platform(),
           "cpu": cpu_model(), "cpus": os.cpu_count()}
    try:
        import torch

        env["torch"] = torch.__version__
        env["threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return env


def _names(value, what: str, allow_none: bool = False) -> list | None:
    """A name or a list of names -> list (a lone string is one name, never its characters)."""
    if value is None and allow_none:
        return None
    if isinstance(value, (str, CodecSpec)):
        return [value]
    try:
        names = list(value)
    except TypeError:
        raise TypeError(f"{what}: give a name or a list of names, not {type(value).__name__}") from None
    if not names:
        raise ValueError(f"{what}: the list is empty; name at least one")
    bad = [n for n in names if not isinstance(n, (str, CodecSpec, tuple))]
    if bad:
        raise TypeError(f"{what}: {bad[0]!r} is not a name")
    return names


def run(codecs: Iterable[str | CodecSpec] | str | None = None, tasks: Iterable[str] | str | None = None,
        metrics: Iterable[str] | str | None = None, out: str | Path = "bench-out", *, preset: str | None = None,
        limit: int | None = None, subset_seed: int | None = None, shard: str | tuple[int, int] | None = None,
        device: str = "cpu", jobs: int | None = None, executor: str = "local", address: str | None = None,
        gpus_per_worker: float = 0.0, max_seconds: float | None = None, progress: ProgressFactory | None = None,
        retry_failed: bool = False, channel: Iterable[str] | str | None = None) -> Results:
    """Run codecs over tasks and score them. Returns Results (see `Results.to_frame`).

    codecs: specs such as "opus:bitrate=6" or "encodec:bandwidth=6" (one string or a list; default identity);
    tasks: names such as "demo-speech" or "files:PATH" (default demo-speech); metrics: names ("mel",
    "visqol:mode=audio"); None = every default metric available. preset: a paper's protocol
    (`bench.tasks.presets`, e.g. "semanticodec-paper") filling in whichever of codecs, tasks and metrics are
    not given; its codecs whose weights are absent are left out, with a warning.
    out: workspace folder holding results.sqlite and the output cache.
    max_seconds: the longest item scored (default `bench.audio.DEFAULT_MAX_SECONDS`); longer ones fail alone.
    limit: N items of each task (N >= 1): the first N, or N drawn with `subset_seed` (the same on every
    machine). shard: "K/N" runs the K-th of N disjoint parts of the items (by id); `bench merge` unites the
    shards' workspaces into the results of one run.
    jobs: worker processes (None: 2 for weight-free codecs, 1 for neural ones and for codecs that batch items;
    batching needs jobs=1). executor: "local" (worker processes here) or "ray" (Ray actors, `address` of a
    running cluster or a local one; `gpus_per_worker`).
    channel: packet-loss channels ("loss=0.1,burst=2,seed=0,packet_ms=20,conceal=auto"; one or a list): every
    codec runs plain (loss 0) and behind each channel; the report plots quality against loss.
    """
    from bench.metrics import load_metric
    from bench.selection import check_limit, parse_shard, task_items
    from bench.tasks import load_task

    started = time.perf_counter()
    notes: tuple[str, ...] = ()
    if preset is not None:
        from bench.tasks.presets import available_codecs, get_preset

        chosen = get_preset(preset)
        codecs = codecs if codecs is not None else available_codecs(chosen)
        tasks = tasks if tasks is not None else list(chosen.tasks)
        metrics = metrics if metrics is not None else list(chosen.metrics)
        notes = chosen.notes
    codecs = _names(codecs if codecs is not None else "identity", "codecs")
    tasks = _names(tasks if tasks is not None else "demo-speech", "tasks")
    metrics = _names(metrics, "metrics", allow_none=True)
    if max_seconds is None:
        max_seconds = au.DEFAULT_MAX_SECONDS
    if isinstance(max_seconds, bool) or not isinstance(max_seconds, (int, float)) or not max_seconds > 0:
        raise ValueError(f"max_seconds must be a positive number of seconds, got {max_seconds!r}")
    limit, shard = check_limit(limit), parse_shard(shard)
    if subset_seed is not None and (isinstance(subset_seed, bool) or not isinstance(subset_seed, int)):
        raise ValueError(f"subset_seed must be a whole number, got {subset_seed!r}")
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ValueError(f"jobs must be a whole number >= 1, got {jobs!r}")
    if executor not in ("local", "ray"):
        raise ValueError(f"executor must be local or ray, got {executor!r}")
    _WARNED_LOAD.clear()
    check_device(device)
    specs = [CodecSpec.parse(c) for c in codecs]
    if channel is not None:
        specs = with_channels(specs, _names(channel, "channel"))
    built = []
    for spec in specs:  # build every codec first: a bad name or missing weights fails before any work
        codec = spec.build()
        codec.to(device)
        built.append((spec, codec))
    metric_objs = _build_metrics(metrics, load_metric)
    task_objs = [load_task(t) for t in tasks]
    names = [t.name for t in task_objs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"task {twice[0]} is named twice in one run; its results would share one key: "
                         "run each root into its own --out workspace")
    plan = _Plan({t.name: task_items(t, limit, subset_seed) for t in task_objs}, shard,
                 {"limit": limit, "subset_seed": subset_seed, "shard": f"{shard[0]}/{shard[1]}" if shard else None,
                  "device": device, "executor": executor, "max_seconds": max_seconds, "preset": preset,
                  "preset_notes": list(notes)})
    for items in plan.items.values():
        for item in items:
            item.max_seconds = float(max_seconds)
    workers = _Workers(jobs, device, executor, address, gpus_per_worker)
    store = ResultStore(out)
    with store.writer():
        codec_work = _run_matrix(store, built, metric_objs, task_objs, plan, workers, progress=progress,
                                 retry_failed=retry_failed)
    fps = [c.fingerprint() for _, c in built]
    return Results(store, fps, [t.name for t in task_objs], [metric_key(m) for m in metric_objs],
                   time.perf_counter() - started, codec_work)


def _default_jobs(codec, workers: _Workers) -> int | None:
    """Workers for a codec when --jobs is not given: on Ray with GPUs, one actor per `gpus_per_worker` of the
    cluster's GPUs (None: RayPool fits the cluster); else 1 for neural or batching codecs (one model in memory;
    a batch uses the cores), 2 for the others."""
    if workers.executor == "ray" and workers.gpus_per_worker > 0:
        return None
    return 1 if codec.meta.needs_weights or batch_size(codec) > 1 else min(2, os.cpu_count() or 1)


def _expected(codec, metric_objs: list) -> dict[str, str]:
    """The fingerprints under which this driver reads results: workers must produce the same ones ("codec",
    and each metric's storage key -> itself: a worker's metric built from `metric_builds` must have it)."""
    out = {"codec": codec.fingerprint()} if codec is not None else {}
    out.update({metric_key(m): metric_key(m) for m in metric_objs})
    return out


@dataclass
class _Plan:
    """The items of each task this run covers: all of them (task-level evaluations) and this shard's."""

    items: dict[str, list]  # task -> every item (after --limit)
    shard: tuple[int, int] | None
    config: dict[str, Any]

    def shard_items(self, task: str) -> list:
        from bench.selection import shard_items

        return shard_items(self.items[task], self.shard)


def _run_matrix(store: ResultStore, built: list, metric_objs: list, task_objs: list, plan: _Plan,
                workers: _Workers, *, progress, retry_failed: bool) -> int:
    from bench.selection import owns_task
    from bench.tasks.segments import manifest_digest

    run_id = store.start_run(
        {"codecs": [c.label for _, c in built], "tasks": [t.name for t in task_objs],
         "metrics": [m.identity() for m in metric_objs], **plan.config}, environment())
    for m in metric_objs:
        store.add_metric(metric_key(m), m.name, m.key, {**m.meta.to_dict(), "identity": m.identity(),
                                                        "version": _version(m), "backend": m.backend()})
    signatures, manifests = {}, {}
    for task in task_objs:  # an item whose file changed loses every result computed from its old content
        manifests[task.name] = manifest_digest(plan.items[task.name])
        for item in plan.items[task.name]:
            sig = item_signature(item)
            signatures[(task.name, item.id)] = sig
            store.sync_item(task.name, item.id, sig)

    item_metrics = [m for m in metric_objs if m.meta.level == "item"]
    task_metrics = [m for m in metric_objs if m.meta.level == "task"]
    owned = [t for t in task_objs if owns_task(manifests[t.name], plan.shard)]  # whole-task evaluations here
    floor_metrics = [m for m in item_metrics if m.meta.floor]
    total = sum(len(plan.shard_items(t.name)) for t in task_objs) * len(built)
    bar = progress(total, "items") if progress else _NoProgress()
    codec_work = 0
    ctx = _CellContext(store, signatures, manifests, retry_failed, plan.config.get("shard"))
    try:
        if floor_metrics:
            store.add_codec(REFERENCE, REFERENCE, {}, "reference (uncoded)", None,
                            {"name": REFERENCE, "description": "the uncoded audio scored against itself"})
            with _Pool(None, metric_builds(floor_metrics), workers, workers.jobs or 1,
                       expected=_expected(None, floor_metrics)) as pool:
                for task in task_objs:
                    _run_cell(ctx, None, REFERENCE, task, plan.shard_items(task.name), floor_metrics, pool,
                              _NoProgress())
        if task_metrics and owned:  # the same evaluation on the uncoded audio (the probe's log-mel reference row)
            store.add_codec(REFERENCE, REFERENCE, {}, "reference (uncoded)", None,
                            {"name": REFERENCE, "description": "the uncoded audio"})
            for task in owned:
                for m in task_metrics:
                    _run_task_metric(ctx, m, None, REFERENCE, task, plan.items[task.name])
        for spec, codec in built:
            fp = codec.fingerprint()
            store.add_codec(fp, codec.name, codec.options, codec.label, _nominal_kbps(codec),
                            {**codec.meta.to_dict(), "fingerprint": fp, "weights": codec.weights_digest(),
                             "code_version": codec.code_version})
            n_jobs = workers.jobs if workers.jobs else _default_jobs(codec, workers)
            with _Pool(spec, metric_builds(item_metrics), workers, n_jobs,
                       expected=_expected(codec, item_metrics)) as pool:
                for task in task_objs:
                    codec_work += _run_cell(ctx, codec, fp, task, plan.shard_items(task.name), item_metrics, pool,
                                            bar)
                    if task in owned:
                        for m in task_metrics:
                            _run_task_metric(ctx, m, codec, fp, task, plan.items[task.name])
    finally:
        bar.close()
        store.finish_run(run_id)
    return codec_work


def item_signature(item) -> str:
    """What an item's stored results are keyed by: its audio's signature (`Item.signature()`), `#`, and a digest
    of what metrics read besides the audio - transcript (WER), label and info (the probe's labels and split),
    domain (which metrics apply; ViSQOL's mode) - so a corrected transcript or label gets new scores. The part
    before `#` alone keys the codec's cached output, which depends on the audio only."""
    label = item.label.tolist() if hasattr(item.label, "tolist") else item.label
    blob = json.dumps({"text": item.text, "label": label, "domain": item.domain, "info": item.info},
                      sort_keys=True, default=str)
    return f"{item.signature()}#{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


def _version(obj) -> str:
    return str(getattr(obj, "code_version", ""))


@dataclass
class _CellContext:
    """What every (codec, task) cell of one run shares: the store, each item's content signature, options."""

    store: ResultStore
    signatures: dict[tuple[str, str], str]
    manifests: dict[str, str]  # task -> content digest of all the run's items (portable: sizes, not mtimes)
    retry_failed: bool
    shard: str | None = None  # "K/N" when this run is one shard

    def cache(self, fp: str, task: str, item: str) -> Path:
        """The cached output of one item: keyed by its audio only (a corrected transcript keeps its audio)."""
        return self.store.cache_path(fp, task, item, self.signatures.get((task, item), "").partition("#")[0])

    def pairs(self, task: str, items: list) -> list[tuple[str, str]]:
        return [(i.id, self.signatures.get((task, i.id), "")) for i in items]

    def digest(self, task: str, items: list) -> str:
        from bench.store import items_digest

        return items_digest(self.pairs(task, items))

    def extra(self, task: str) -> dict[str, Any]:
        out = {"manifest": self.manifests.get(task)}
        if self.shard:
            out["shard"] = self.shard
        return out


def check_device(device: str) -> None:
    """Raise ValueError saying what to do when `device` cannot be used on this machine with this PyTorch."""
    if device == "cpu":
        return
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device {device!r} is not a torch device ({err}); use cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: no CUDA here (torch {torch.__version__}, "
                             "torch.cuda.is_available() is False); use --device cpu, or a CUDA build of torch "
                             "on a machine with an NVIDIA GPU")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r}: MPS is not available here; use --device cpu")


def _build_metrics(names: Iterable[str] | None, load_metric) -> list:
    from bench.metrics import METRICS

    if names is not None:
        chosen = [load_metric(n) for n in names]
        for m in chosen:  # a named metric without its weights: one clear error now, not one per item
            if hasattr(m, "require_weights"):
                m.require_weights()
        return chosen
    chosen = []
    for name in DEFAULT_METRICS:
        if name not in METRICS:
            continue
        try:
            m = load_metric(name)
        except ImportError as err:  # an optional dependency is absent: run without it and say so
            log.warning("skipping metric %s: %s", name, err)
            continue
        if getattr(m, "weights_available", lambda: True)() is False:
            log.info("metric %s left out of the default run: its weights are not here (bench weights fetch %s)",
                     name, name)
            continue
        chosen.append(m)
    return chosen


def _nominal_kbps(codec) -> float | None:
    kbps = getattr(codec, "nominal_kbps", None)
    if kbps is not None:
        return float(kbps)
    bitrate = codec.options.get("bitrate") or codec.options.get("kbps")
    return float(bitrate) if bitrate is not None else None


def _run_cell(ctx: _CellContext, codec, fp: str, task, items: list, metrics: list, pool: "_Pool | None",
              bar) -> int:
    """Process one (codec, task): each item needing work, then the task-level summary cells."""
    store = ctx.store
    if ctx.retry_failed:
        store.clear_failures(fp, task.name)
    todo = []
    for item in items:
        done = store.scored_metrics(fp, task.name, item.id)
        failed = store.failed(fp, task.name, item.id)
        if any(stage == "codec" for stage, _ in failed):
            bar.update(1)
            continue
        if any(stage == "load" for stage, _ in failed):
            # a load failure depends on this run's settings too (--max-seconds), and a load is cheap: try again
            store.clear_failures(fp, task.name, item.id, stage="load")
            failed = {k: v for k, v in failed.items() if k[0] != "load"}
        needed = [m for m in metrics if metric_key(m) not in done and ("metric", metric_key(m)) not in failed
                  and m.skip_reason(item) is None]
        cache = ctx.cache(fp, task.name, item.id)
        has_output = codec is None or cache.exists()
        if not needed and (has_output or not metrics) and (codec is None or store.encode_row(fp, task.name, item.id)):
            bar.update(1)
            continue
        todo.append((item, needed, cache))
    codec_work = 0

    def record(item, res: dict[str, Any]) -> None:
        nonlocal codec_work
        if res.get("item"):
            domain, sr, seconds = res["item"]
            store.add_item(task.name, item.id, domain, sr, seconds, item.text,
                           item.label if isinstance(item.label, str) or item.label is None else str(item.label),
                           str(item.path) if item.path else None, signature=ctx.signatures.get((task.name, item.id)))
        encode = res["encode"]
        if encode is not None:
            codec_work += 1
        elif res.get("encode_cached") and store.encode_row(fp, task.name, item.id) is None:
            encode = res["encode_cached"]  # output on disk from a run killed before its row was written
        store.record_item(fp, task.name, item.id, encode=encode, scores=res["scores"], failures=res["failures"])
        for stage, metric, error in res["failures"]:
            if stage == "load":  # the file itself is bad: say it once per run, not once per codec
                if (task.name, item.id) in _WARNED_LOAD:
                    continue
                _WARNED_LOAD.add((task.name, item.id))
            log.warning("%s / %s / %s: %s failed%s: %s", codec.label if codec else REFERENCE, task.name, item.id,
                        stage, f" ({metric})" if metric else "", error)
        bar.update(1)

    if pool is not None and todo and pool.remote and (len(todo) > 1 or pool.workers.executor == "ray"):
        _run_remote(pool, codec, todo, record)
    else:
        size = batch_size(codec)
        group: list = []  # items waiting for a batch: up to `size` that need the codec and load, plus others

        def flush() -> None:
            wanted = [(it, c) for it, nd, c in group if nd and not c.exists()]  # items with metrics to score
            outputs = batch_outputs(codec, wanted) if size > 1 else {}
            for item, needed, cache in group:
                if codec is None:
                    res = process_reference(needed, item)
                else:
                    res = process_item(codec, needed, item, cache, output=outputs.get(item.id))
                record(item, res)
            group.clear()

        waiting = 0
        for entry in todo:
            group.append(entry)
            waiting += size > 1 and bool(entry[1]) and batchable(entry[0], entry[2])
            if size == 1 or waiting >= size:
                flush()
                waiting = 0
        flush()
    _write_cells(ctx, codec, fp, task, items, metrics)
    return codec_work


def _write_cells(ctx: _CellContext, codec, fp: str, task, items: list, metrics: list) -> None:
    """Each metric's summary over exactly `items`, keyed by their digest (n and failures beside it)."""
    store = ctx.store
    ids = [i.id for i in items]
    digest = ctx.digest(task.name, items)
    failures = {}
    for f in store.failures(fp, task.name):
        failures.setdefault(f["item"], []).append(f)
    for m in metrics:
        key = metric_key(m)
        rows = store.item_scores(fp, task.name, key, ids)
        skipped = sum(1 for i in items if m.skip_reason(i) is not None)
        n_failed = sum(
            1 for i in ids if i not in rows and any(
                f["stage"] in ("load", "codec") or f["metric"] == key for f in failures.get(i, [])))
        value = m.aggregate(list(rows.values())) if rows else float("nan")
        store.write_cell(fp, task.name, key, value, len(rows), n_failed, skipped,
                         {"key": m.key, **ctx.extra(task.name)}, items_digest=digest,
                         codec_version=_version(codec) if codec is not None else None,
                         metric_version=_version(m), items=ctx.pairs(task.name, items))


def _run_task_metric(ctx: _CellContext, metric, codec, fp: str, task, items: list) -> None:
    """A whole-task evaluation (the HEAR probe), stored as a cell keyed by the item set it covers:
    computed again when the items (or their content) differ from those of the stored cell."""
    store = ctx.store
    key = metric_key(metric)
    digest = ctx.digest(task.name, items)
    existing = store.cell(fp, task.name, key)
    if existing is not None and existing["items_digest"] == digest:
        return
    reason = metric.skip_reason_task(task) if hasattr(metric, "skip_reason_task") else None
    if reason:
        log.info("%s skipped on %s: %s", metric.identity(), task.name, reason)
        return
    decoded = None if codec is None else (lambda item: _decoded(ctx, codec, fp, task, item))
    who = codec.label if codec is not None else REFERENCE
    try:
        values = metric.evaluate(codec, task, items=items, decoded=decoded)
    except Exception as err:  # noqa: BLE001
        log.warning("%s on %s / %s failed: %s", metric.identity(), who, task.name, _reason(err))
        store.record_item(fp, task.name, "*", failures=[("metric", key, _reason(err))])
        return
    store.write_cell(fp, task.name, key, float(values[metric.key]), int(values.get("n", len(items))),
                     int(values.get("n_failed", 0)), 0, {**values, **ctx.extra(task.name)},
                     items_digest=digest, items=ctx.pairs(task.name, items),
                     codec_version=_version(codec) if codec is not None else None, metric_version=_version(metric))


def _decoded(ctx: _CellContext, codec, fp: str, task, item) -> tuple[np.ndarray, int]:
    """The codec's decoded audio of one item (cached), `[C, T]` at the codec's rate."""
    audio, sr = item.load()
    channels = codec.meta.channels or audio.shape[0]
    ref = au.to_channels(audio, channels)
    rec, rec_sr, row = codec_output(codec, item, ctx.cache(fp, task.name, item.id), ref, sr)
    if row is not None and not row.pop("from_cache", False):
        ctx.store.record_item(fp, task.name, item.id, encode=row)
    return rec, rec_sr
