"""The runner: the only place that knows the whole matrix codec x operating point x task x metric.

For each codec and task it reads every item, resamples it to the codec's rate, encodes, decodes,
trims to the input length, caches the output, resamples reference and reconstruction to each metric's
rate and scores them. Every item's results are committed to the ResultStore before the next item, so
an interrupted run resumes where it stopped and a re-run with the same codecs does no codec work.

Per-item problems (unreadable, empty, silent, NaN, too short, a codec or metric error) are stored as
failures with the item id and reason, counted, and never stop the run.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from bench import audio as au
from bench.coding import MIN_SECONDS, batch_outputs, batch_size, batchable, codec_output, encode_only
from bench.store import REFERENCE, ResultStore

log = logging.getLogger(__name__)

# Metrics a run uses when none are named: every registered item-level metric that can be built here.
DEFAULT_METRICS = ("visqol", "wer", "mel", "stft", "pesq", "stoi", "sisdr")


@dataclass
class CodecSpec:
    name: str
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: "str | CodecSpec | tuple") -> "CodecSpec":
        from bench.registry import parse_spec

        if isinstance(spec, CodecSpec):
            return spec
        if isinstance(spec, tuple):
            return cls(spec[0], dict(spec[1]))
        name, options = parse_spec(spec)
        return cls(name, options)

    def build(self):
        from bench.codecs import load_codec

        return load_codec(self.name, **self.options)


ProgressFactory = Callable[[int, str], Any]  # (total, description) -> object with update(n) and close()


class _NoProgress:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


# -- one item -------------------------------------------------------------------------------------

def _metric_rate(metric, item, codec_sr: int) -> int:
    if hasattr(metric, "rate_for_item"):
        return int(metric.rate_for_item(item))
    return int(metric.rate_for(codec_sr))


def _score(metric, ref: np.ndarray, ref_sr: int, rec: np.ndarray, rec_sr: int, item,
           aligned: dict[int, tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """Resample both sides to the metric's rate, align lengths to the reference, score, check values.

    `aligned` keeps each rate's pair for the item's other metrics (most share 16 kHz): resampled once.
    """
    rate = _metric_rate(metric, item, rec_sr)
    if rate not in aligned:
        r = au.resample(ref, ref_sr, rate)
        d = au.fit_length(au.resample(rec, rec_sr, rate), r.shape[-1])
        if d.shape[0] != r.shape[0]:
            d = au.to_channels(d, r.shape[0])
        aligned[rate] = (r, d)
    r, d = aligned[rate]
    values = metric.score(r, d, rate, item=item)
    bad = [k for k, v in values.items() if not np.isfinite(v)]
    if bad:
        raise ValueError(f"{metric.identity()} returned non-finite {', '.join(bad)}")
    return {k: float(v) for k, v in values.items()}


def process_item(codec, metrics: list, item, cache_file: Path, output: tuple | None = None) -> dict[str, Any]:
    """Run one item through the codec (or the cache) and the given metrics. Never raises for item problems.

    output: the item's (decoded, rate, encodes row) when a batch already ran it (`batch_outputs`).

    Returns {"encode": row or None, "scores": {identity: {key: value}}, "failures": [(stage, metric, error)],
    "item": (domain, sample_rate, seconds)}.
    """
    result: dict[str, Any] = {"encode": None, "scores": {}, "failures": [], "item": None}
    try:
        audio, sr = item.load()
        au.check(audio, sr, min_seconds=MIN_SECONDS, name=f"item {item.id}")
    except Exception as err:  # noqa: BLE001 - any unreadable input is one failure
        result["failures"].append(("load", "", _reason(err)))
        return result
    result["item"] = (item.domain, sr, audio.shape[-1] / sr)
    try:
        channels = codec.meta.channels or audio.shape[0]
        ref = au.to_channels(audio, channels)
        if not metrics and output is None and not cache_file.exists():
            # nothing to score now (e.g. a probe-only run): the bitrate needs the encoder, not the decoder
            result["encode"] = encode_only(codec, ref, sr)
            item.release()
            return result
        rec, rec_sr, row = output if output is not None else codec_output(codec, item, cache_file, ref, sr)
        if row is not None and not row.pop("from_cache", False):
            result["encode"] = row
        elif row is not None:
            result["encode_cached"] = row
    except Exception as err:  # noqa: BLE001
        log.debug("codec failure on %s", item.id, exc_info=True)
        result["failures"].append(("codec", "", _reason(err)))
        item.release()
        return result
    aligned: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for metric in metrics:
        try:
            result["scores"][metric.identity()] = _score(metric, ref, sr, rec, rec_sr, item, aligned)
        except Exception as err:  # noqa: BLE001
            log.debug("metric failure on %s", item.id, exc_info=True)
            result["failures"].append(("metric", metric.identity(), _reason(err)))
    item.release()
    return result


def process_reference(metrics: list, item) -> dict[str, Any]:
    """Score the uncoded audio against itself for metrics with a floor (e.g. the ASR's own WER)."""
    result: dict[str, Any] = {"encode": None, "scores": {}, "failures": [], "item": None}
    try:
        audio, sr = item.load()
        au.check(audio, sr, min_seconds=MIN_SECONDS, name=f"item {item.id}")
    except Exception as err:  # noqa: BLE001
        result["failures"].append(("load", "", _reason(err)))
        return result
    result["item"] = (item.domain, sr, audio.shape[-1] / sr)
    aligned: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for metric in metrics:
        try:
            result["scores"][metric.identity()] = _score(metric, audio, sr, audio, sr, item, aligned)
        except Exception as err:  # noqa: BLE001
            result["failures"].append(("metric", metric.identity(), _reason(err)))
    item.release()
    return result


def _reason(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return text if isinstance(err, (au.AudioError, ValueError)) else f"{type(err).__name__}: {text}"


# -- worker processes (for --jobs > 1) ------------------------------------------------------------

_WORKER: dict[str, Any] = {}
_WARNED_LOAD: set[tuple[str, str]] = set()


def _worker_init(codec_spec: CodecSpec | None, metric_ids: list[str]) -> None:
    import torch

    torch.set_num_threads(1)
    from bench.metrics import load_metric

    _WORKER["codec"] = codec_spec.build() if codec_spec is not None else None
    _WORKER["metrics"] = {m: load_metric(m) for m in metric_ids}


def _worker_item(item, metric_ids: list[str], cache_file: str | None) -> dict[str, Any]:
    metrics = [_WORKER["metrics"][m] for m in metric_ids]
    if _WORKER["codec"] is None:
        return process_reference(metrics, item)
    return process_item(_WORKER["codec"], metrics, item, Path(cache_file))


# -- the matrix -----------------------------------------------------------------------------------

class Results:
    """What `run` returns: a view of the store restricted to this run's codecs, tasks and metrics."""

    def __init__(self, store: ResultStore, fingerprints: list[str], tasks: list[str], metrics: list[str],
                 elapsed: float, codec_work: int):
        self.store = store
        self.fingerprints = fingerprints
        self.tasks = tasks
        self.metrics = metrics
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

    env = {"bench": bench.__version__, "python": platform.python_version(), "platform": platform.platform(),
           "cpus": os.cpu_count()}
    try:
        import torch

        env["torch"] = torch.__version__
        env["threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return env


def run(codecs: Iterable[str | CodecSpec] = ("identity",), tasks: Iterable[str] = ("demo-speech",),
        metrics: Iterable[str] | None = None, out: str | Path = "bench-out", *, limit: int | None = None,
        device: str = "cpu", jobs: int | None = None, progress: ProgressFactory | None = None,
        retry_failed: bool = False) -> Results:
    """Run codecs over tasks and score them. Returns Results (see `Results.to_frame`).

    codecs: specs such as "opus:bitrate=6" or "encodec:bandwidth=6"; tasks: names such as "demo-speech"
    or "files:PATH"; metrics: names ("mel", "visqol:mode=audio"); None = every default metric available.
    out: workspace folder holding results.sqlite and the output cache. jobs: worker processes (None: 2
    for weight-free codecs, 1 for neural ones and for codecs that batch items; batching needs jobs=1).
    limit: first N items of each task.
    """
    from bench.metrics import load_metric
    from bench.tasks import load_task

    started = time.perf_counter()
    _WARNED_LOAD.clear()
    check_device(device)
    store = ResultStore(out)
    specs = [CodecSpec.parse(c) for c in codecs]
    built = []
    for spec in specs:  # build every codec first: a bad name or missing weights fails before any work
        codec = spec.build()
        codec.to(device)
        built.append((spec, codec))
    metric_objs = _build_metrics(metrics, load_metric)
    task_objs = [load_task(t) for t in tasks]
    run_id = store.start_run(
        {"codecs": [c.label for _, c in built], "tasks": [t.name for t in task_objs],
         "metrics": [m.identity() for m in metric_objs], "limit": limit, "device": device},
        environment())
    for m in metric_objs:
        store.add_metric(m.identity(), m.name, m.key, {**m.meta.to_dict(), "identity": m.identity()})

    item_metrics = [m for m in metric_objs if m.meta.level == "item"]
    task_metrics = [m for m in metric_objs if m.meta.level == "task"]
    floor_metrics = [m for m in item_metrics if m.meta.floor]
    task_items = {t.name: t.items()[: limit] if limit else t.items() for t in task_objs}
    total = sum(len(v) for v in task_items.values()) * len(built)
    bar = progress(total, "items") if progress else _NoProgress()
    codec_work = 0
    try:
        if floor_metrics:
            store.add_codec(REFERENCE, REFERENCE, {}, "reference (uncoded)", None,
                            {"name": REFERENCE, "description": "the uncoded audio scored against itself"})
            pool = _Pool(None, sorted(m.identity() for m in floor_metrics), jobs or 1)
            try:
                for task in task_objs:
                    _run_cell(store, None, None, REFERENCE, task, task_items[task.name], floor_metrics, pool,
                              retry_failed, _NoProgress())
            finally:
                pool.close()
        if task_metrics:  # the same evaluation on the uncoded audio (the probe's log-mel reference row)
            store.add_codec(REFERENCE, REFERENCE, {}, "reference (uncoded)", None,
                            {"name": REFERENCE, "description": "the uncoded audio"})
            for task in task_objs:
                for m in task_metrics:
                    _run_task_metric(store, m, None, REFERENCE, task, task_items[task.name])
        for spec, codec in built:
            fp = codec.fingerprint()
            store.add_codec(fp, codec.name, codec.options, codec.label, _nominal_kbps(codec),
                            {**codec.meta.to_dict(), "fingerprint": fp, "weights": codec.weights_digest()})
            n_jobs = jobs if jobs else (1 if codec.meta.needs_weights or batch_size(codec) > 1
                                        else min(2, os.cpu_count() or 1))
            pool = _Pool(spec, sorted(m.identity() for m in item_metrics), n_jobs)
            try:
                for task in task_objs:
                    codec_work += _run_cell(store, spec, codec, fp, task, task_items[task.name], item_metrics,
                                            pool, retry_failed, bar)
                    for m in task_metrics:
                        _run_task_metric(store, m, codec, fp, task, task_items[task.name])
            finally:
                pool.close()
    finally:
        bar.close()
        store.finish_run(run_id)
    fps = [c.fingerprint() for _, c in built]
    return Results(store, fps, [t.name for t in task_objs], [m.identity() for m in metric_objs],
                   time.perf_counter() - started, codec_work)


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
        return [load_metric(n) for n in names]
    chosen = []
    for name in DEFAULT_METRICS:
        if name not in METRICS:
            continue
        try:
            chosen.append(load_metric(name))
        except ImportError as err:  # an optional dependency is absent: run without it and say so
            log.warning("skipping metric %s: %s", name, err)
    return chosen


def _nominal_kbps(codec) -> float | None:
    kbps = getattr(codec, "nominal_kbps", None)
    if kbps is not None:
        return float(kbps)
    bitrate = codec.options.get("bitrate") or codec.options.get("kbps")
    return float(bitrate) if bitrate is not None else None


class _Pool:
    """Worker processes for one codec, started on first use and kept across its tasks (models load once)."""

    def __init__(self, spec: CodecSpec | None, metric_ids: list[str], jobs: int):
        self.spec, self.metric_ids, self.jobs = spec, metric_ids, jobs
        self._executor: ProcessPoolExecutor | None = None

    def get(self) -> ProcessPoolExecutor:
        if self._executor is None:
            import multiprocessing as mp

            self._executor = ProcessPoolExecutor(max_workers=self.jobs, mp_context=mp.get_context("spawn"),
                                                 initializer=_worker_init, initargs=(self.spec, self.metric_ids))
        return self._executor

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown()
            self._executor = None


def _run_cell(store: ResultStore, spec: CodecSpec | None, codec, fp: str, task, items: list, metrics: list,
              pool: "_Pool | None", retry_failed: bool, bar) -> int:
    """Process one (codec, task): each item needing work, then the task-level summary cells."""
    if retry_failed:
        store.clear_failures(fp, task.name)
    todo = []
    for item in items:
        done = store.scored_metrics(fp, task.name, item.id)
        failed = store.failed(fp, task.name, item.id)
        if any(stage in ("load", "codec") for stage, _ in failed):
            bar.update(1)
            continue
        needed = [m for m in metrics if m.identity() not in done and ("metric", m.identity()) not in failed
                  and m.skip_reason(item) is None]
        cache = store.cache_path(fp, task.name, item.id)
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
                           str(item.path) if item.path else None)
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

    if pool is not None and pool.jobs > 1 and len(todo) > 1:
        executor = pool.get()
        futures = {executor.submit(_worker_item, item, [m.identity() for m in needed],
                                   str(cache) if codec is not None else None): item for item, needed, cache in todo}
        for fut in as_completed(futures):
            record(futures[fut], fut.result())
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
    _write_cells(store, fp, task, items, metrics)
    return codec_work


def _write_cells(store: ResultStore, fp: str, task, items: list, metrics: list) -> None:
    ids = [i.id for i in items]
    failures = {}
    for f in store.failures(fp, task.name):
        failures.setdefault(f["item"], []).append(f)
    for m in metrics:
        rows = store.item_scores(fp, task.name, m.identity(), ids)
        skipped = sum(1 for i in items if m.skip_reason(i) is not None)
        n_failed = sum(
            1 for i in ids if i not in rows and any(
                f["stage"] in ("load", "codec") or f["metric"] == m.identity() for f in failures.get(i, [])))
        value = m.aggregate(list(rows.values())) if rows else float("nan")
        store.write_cell(fp, task.name, m.identity(), value, len(rows), n_failed, skipped, {"key": m.key})


def _run_task_metric(store: ResultStore, metric, codec, fp: str, task, items: list) -> None:
    """A whole-task evaluation (the HEAR probe): computed once per (codec, task) and stored as a cell."""
    existing = store.db.execute("SELECT 1 FROM cells WHERE fingerprint=? AND task=? AND metric=?",
                                (fp, task.name, metric.identity())).fetchone()
    if existing:
        return
    reason = metric.skip_reason_task(task) if hasattr(metric, "skip_reason_task") else None
    if reason:
        log.info("%s skipped on %s: %s", metric.identity(), task.name, reason)
        return
    decoded = None if codec is None else (lambda item: _decoded(store, codec, fp, task, item))
    who = codec.label if codec is not None else REFERENCE
    try:
        values = metric.evaluate(codec, task, items=items, decoded=decoded)
    except Exception as err:  # noqa: BLE001
        log.warning("%s on %s / %s failed: %s", metric.identity(), who, task.name, _reason(err))
        store.record_item(fp, task.name, "*", failures=[("metric", metric.identity(), _reason(err))])
        return
    store.write_cell(fp, task.name, metric.identity(), float(values[metric.key]), int(values.get("n", len(items))),
                     int(values.get("n_failed", 0)), 0, values)


def _decoded(store: ResultStore, codec, fp: str, task, item) -> tuple[np.ndarray, int]:
    """The codec's decoded audio of one item (cached), `[C, T]` at the codec's rate."""
    audio, sr = item.load()
    channels = codec.meta.channels or audio.shape[0]
    ref = au.to_channels(audio, channels)
    rec, rec_sr, row = codec_output(codec, item, store.cache_path(fp, task.name, item.id), ref, sr)
    if row is not None and not row.pop("from_cache", False):
        store.record_item(fp, task.name, item.id, encode=row)
    return rec, rec_sr
