"""Where items run besides the driver: worker processes (bench.executors.local) or Ray actors
(bench.executors.ray). The functions named "bench.workers:..." run inside each worker; `Pool` and
`run_remote` are the driver's side. Only the driver writes the result store.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from bench.coding import batch_outputs, batch_size
from bench.scoring import metric_key, process_item, process_reference

if TYPE_CHECKING:
    from bench.runner import CodecSpec

_WORKER: dict[str, Any] = {}

MISMATCH = "CodeMismatchError"  # the remote traceback's marker, turned back into this error by the driver


class CodeMismatchError(ValueError):
    """A worker built a codec or metric whose fingerprint differs from the driver's: its scores would be stored
    under a key the run does not read (bench changed on disk mid-run, or Ray nodes run other versions)."""


def _check_fingerprints(codec, metrics: dict, expected: dict[str, str]) -> None:
    """Raise CodeMismatchError unless this worker's codec and metric fingerprints are the driver's."""
    have = {"codec": codec.fingerprint()} if codec is not None else {}
    have.update({ident: m.fingerprint() for ident, m in metrics.items()})
    wrong = [k for k, fp in expected.items() if k in have and have[k] != fp]
    if wrong:
        what = ", ".join(f"{k} ({have[k]} here, {expected[k]} in the driver)" for k in wrong)
        raise CodeMismatchError(
            f"a worker runs other bench code than the driver: {what}; bench changed on disk during the run, or "
            "the cluster's nodes have other versions: install the same bench everywhere and run again "
            "(finished items are kept)")


def metric_builds(metrics: list) -> list[tuple[str, str, dict[str, Any]]]:
    """(storage key, name, options) of each metric: what a worker rebuilds it from. Every option travels, the
    runtime ones too (WER's device and compute_type, spk-sim's weights: out of the display identity, in the
    key), so the worker computes what the driver's key says."""
    return sorted(((metric_key(m), m.name, dict(m.options)) for m in metrics), key=lambda b: b[0])


def _builds(metric_ids: list) -> list[tuple[str, str, dict[str, Any]]]:
    """`metric_builds` entries; a plain spec string ("mel:sample_rate=24000") is its own key."""
    from bench.registry import parse_spec

    out = []
    for m in metric_ids:
        if isinstance(m, str):
            name, options = parse_spec(m)
            out.append((m, name, dict(options)))
        else:
            out.append(tuple(m))
    return out


def _registry_entries(spec: CodecSpec | None, metric_ids: list) -> list:
    """The registry entries a worker needs, so codecs and metrics registered at run time (a plugin, a
    notebook, a test) are found in worker processes too."""
    from bench.codecs import CODECS
    from bench.metrics import METRICS

    wanted = [(CODECS, spec.name)] if spec is not None else []
    wanted += [(METRICS, name) for _key, name, _options in _builds(metric_ids)]
    return [(reg.kind, reg._entries[name]) for reg, name in wanted if name in reg._entries]


def _worker_init(codec_spec: CodecSpec | None, metric_ids: list, device: str = "cpu",
                 entries: list = (), expected: dict[str, str] | None = None) -> None:
    """Runs once in each worker process (bench.executors): build the codec and the metrics (`metric_builds`:
    storage key, name, options; or spec strings) there, and check that their fingerprints are the driver's (`expected`: "codec"
    and each metric's storage key -> fingerprint)."""
    from bench.codecs import CODECS
    from bench.metrics import METRICS, load_metric

    registries = {CODECS.kind: CODECS, METRICS.kind: METRICS}
    for kind, entry in entries:
        registries[kind]._entries.setdefault(entry.name, entry)

    codec = codec_spec.build() if codec_spec is not None else None
    if codec is not None:
        codec.to(device)
    _WORKER["codec"] = codec
    _WORKER["metrics"] = {key: load_metric(name, **options) for key, name, options in _builds(metric_ids)}
    _check_fingerprints(codec, _WORKER["metrics"], expected or {})


def _worker_item(item, metric_ids: list[str], cache_file: str | None) -> dict[str, Any]:
    metrics = [_WORKER["metrics"][m] for m in metric_ids]
    if _WORKER["codec"] is None:
        return process_reference(metrics, item)
    return process_item(_WORKER["codec"], metrics, item, Path(cache_file))


def _worker_batch(entries: list[tuple]) -> list[dict[str, Any]]:
    """Several items through the worker's codec in one batch (codecs with `batch_items` > 1), then each
    scored alone: entries are (item, metric ids, cache file); returns one result per entry, in order."""
    codec = _WORKER["codec"]
    wanted = [(item, Path(cache)) for item, ids, cache in entries if ids and not Path(cache).exists()]
    outputs = batch_outputs(codec, wanted) if batch_size(codec) > 1 else {}
    return [process_item(codec, [_WORKER["metrics"][m] for m in ids], item, Path(cache), output=outputs.get(item.id))
            for item, ids, cache in entries]



@dataclass
class Workers:
    """Where items run: jobs, device and executor (local worker processes or Ray actors)."""

    jobs: int | None
    device: str
    executor: str = "local"
    address: str | None = None
    gpus_per_worker: float = 0.0


class Pool:
    """Workers for one codec (processes here, or Ray actors), started on first use and kept across its
    tasks (models load once per worker)."""

    def __init__(self, spec: CodecSpec | None, metric_ids: list[tuple[str, str, dict]], workers: "Workers", jobs: int,
                 expected: dict[str, str] | None = None):
        self.spec, self.metric_ids, self.workers, self.jobs = spec, metric_ids, workers, jobs
        self.expected = dict(expected or {})  # the driver's fingerprints, checked by every worker
        self._pool = None

    @property
    def remote(self) -> bool:
        """Items go to the workers (not this process) when there is more than one, or on Ray."""
        return self.workers.executor == "ray" or self.jobs > 1  # jobs None: Ray fits the cluster

    def get(self):
        if self._pool is None:
            args = (self.spec, self.metric_ids, self.workers.device, _registry_entries(self.spec, self.metric_ids),
                    self.expected)
            if self.workers.executor == "ray":
                from bench.executors.ray import RayPool

                self._pool = RayPool("bench.workers:_worker_init", args, self.jobs, address=self.workers.address,
                                     gpus_per_worker=self.workers.gpus_per_worker)
            else:
                from bench.executors.local import LocalPool

                self._pool = LocalPool("bench.workers:_worker_init", args, self.jobs)
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_remote(pool: "Pool", codec, todo: list, record: Callable) -> None:
    """Items through the pool's workers: one job per item, or per batch of `batch_items` for codecs that
    batch. A batch whose worker died is sent again item by item, so the crash lands on the item behind it."""
    from bench.executors.local import WorkerCrash

    def entry(item, needed, cache) -> tuple:
        return (item, [metric_key(m) for m in needed], str(cache) if codec is not None else None)

    by_id = {item.id: (item, needed, cache) for item, needed, cache in todo}
    size = batch_size(codec)
    if size > 1:
        chunks = [todo[i: i + size] for i in range(0, len(todo), size)]
        jobs = [(tuple(it.id for it, _, _ in chunk), "bench.workers:_worker_batch", ([entry(*e) for e in chunk],))
                for chunk in chunks]
    else:
        jobs = [(item.id, "bench.workers:_worker_item", entry(item, needed, cache)) for item, needed, cache in todo]
    retry = []
    for key, res in _results(pool.get().run(jobs)):
        if isinstance(key, tuple):  # a batch
            if isinstance(res, WorkerCrash):
                retry += [(i, "bench.workers:_worker_item", entry(*by_id[i])) for i in key]
                continue
            for item_id, one in zip(key, res):
                record(by_id[item_id][0], one)
            continue
        if isinstance(res, WorkerCrash):  # a crash in a C extension costs this item, not the run
            res = crash_result(codec, res)
        record(by_id[key][0], res)
    for key, res in (_results(pool.get().run(retry)) if retry else ()):
        record(by_id[key][0], crash_result(codec, res) if isinstance(res, WorkerCrash) else res)


def _results(stream):
    """The pool's (key, result) stream; a worker's CodeMismatchError is raised here as itself (one line)."""
    from bench.executors.local import WorkerError

    try:
        yield from stream
    except WorkerError as err:
        line = next((ln for ln in reversed(err.remote_traceback.splitlines()) if MISMATCH in ln), None)
        if line is None:
            raise
        raise CodeMismatchError(line.partition(f"{MISMATCH}: ")[2] or line) from None


def crash_result(codec, crash) -> dict[str, Any]:
    return {"encode": None, "scores": {}, "item": None,
            "failures": [("codec" if codec is not None else "metric", "", str(crash))]}
