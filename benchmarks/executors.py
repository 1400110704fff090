"""The same `bench run` on the local process pool and on Ray actors, side by side (items per second).

    python benchmarks/executors.py                                   # opus over 16 demo-speech items, 2 workers
    python benchmarks/executors.py --codec encodec:bandwidth=6 --limit 24 --metric mel,sisdr
    python benchmarks/executors.py --direct                          # the pools alone, on the runner's job
    python benchmarks/executors.py --codec semanticodec --weights DIR --device cuda --gpus-per-worker 0.5

Each executor runs the same codec, task, items and metrics into a fresh workspace with the same number of
workers (`--jobs`, 2 by default; Ray: a local runtime with that many CPUs). Ray's runtime is started before
its timed run and its start-up is printed apart. The table gives wall time, items per second and the ratio
local/Ray, then the largest difference between the two runs' per-item scores (0 under equal thread counts).

`--direct` times `LocalPool` against `RayPool` on `bench.workers:_worker_item` jobs built here (no store, no
matrix): the executors' own overhead. Timings on a shared machine are noisy: read the ratio of one run.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.machine import cpu_model  # noqa: E402

import bench  # noqa: E402
from bench.registry import parse_spec  # noqa: E402


def conditions(args) -> str:
    import numpy as np
    import ray
    import torch

    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return (f"CPU: {cpu_model()}, {os.cpu_count()} logical cores, load average {load[0]:.2f} at start; GPU: {gpu}\n"
            f"Python {platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} threads "
            f"in the driver), numpy {np.__version__}, ray {ray.__version__}\n"
            f"codec {args.codec}, task {args.task}, {args.limit} items, metrics {args.metric}, device {args.device}, "
            f"{args.jobs} workers each")


def start_ray(jobs: int) -> float:
    """Start a local Ray runtime with `jobs` CPUs (GPUs as detected); its start-up in seconds."""
    import ray

    t0 = time.perf_counter()
    ray.init(num_cpus=jobs, include_dashboard=False, logging_level=logging.WARNING)
    return time.perf_counter() - t0


def per_item(ws: Path) -> dict:
    from bench.store import ResultStore

    store = ResultStore(ws, readonly=True)
    rows = {(r.item, r.metric, r.key): r.value for r in store.scores_frame().itertuples()}
    rows.update({("bps", r.item): r.bits_per_second for r in store.encodes_frame().itertuples()})
    store.close()
    return rows


def through_run(args, codec: tuple, metrics: list[str], tmp: Path) -> tuple[dict, dict, float]:
    """bench.run with executor="local", then "ray": (wall s, values) per executor, Ray start-up s."""
    times, values, ray_start = {}, {}, 0.0
    for executor in ("local", "ray"):
        extra = {}
        if executor == "ray":
            ray_start = start_ray(args.jobs)
            extra = {"gpus_per_worker": args.gpus_per_worker}
        ws = tmp / executor
        t0 = time.perf_counter()
        res = bench.run(codecs=[codec], tasks=[args.task], metrics=metrics, out=ws, limit=args.limit,
                        device=args.device, jobs=args.jobs, executor=executor, **extra)
        times[executor] = time.perf_counter() - t0
        values[executor] = per_item(ws)
        failed = len(res.failures()) if callable(getattr(res, "failures", None)) else 0
        print(f"  {executor}: {times[executor]:.1f} s, {res.codec_work} items coded, {failed} failures", flush=True)
    return times, values, ray_start


def direct(args, codec: tuple, metrics: list[str], tmp: Path) -> tuple[dict, dict, float]:
    """LocalPool vs RayPool on the runner's own item job (`_worker_init` once per worker, `_worker_item`)."""
    from bench.executors.local import LocalPool
    from bench.executors.ray import RayPool
    from bench.runner import CodecSpec
    from bench.workers import _registry_entries

    spec = CodecSpec.parse(codec)
    ids = [bench.load_metric(m).identity() for m in metrics]
    items = bench.load_task(args.task).items()[: args.limit]
    init_args = (spec, ids, args.device, _registry_entries(spec, ids))
    times, values, ray_start = {}, {}, 0.0
    for executor in ("local", "ray"):
        if executor == "ray":
            ray_start = start_ray(args.jobs)
        jobs = [(it.id, "bench.workers:_worker_item", (it, ids, str(tmp / f"{executor}-{i}.npz")))
                for i, it in enumerate(items)]
        t0 = time.perf_counter()
        if executor == "ray":
            pool = RayPool("bench.workers:_worker_init", init_args, args.jobs, gpus_per_worker=args.gpus_per_worker)
        else:
            pool = LocalPool("bench.workers:_worker_init", init_args, args.jobs)
        with pool:
            got = dict(pool.run(jobs))
        times[executor] = time.perf_counter() - t0
        values[executor] = {(k, m, key): v for k, res in got.items() if isinstance(res, dict)
                            for m, d in res["scores"].items() for key, v in d.items()}
        print(f"  {executor}: {times[executor]:.1f} s, {len(got)} items", flush=True)
    return times, values, ray_start


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--codec", default="opus:bitrate=6")
    ap.add_argument("--weights", default=None, help="weights folder passed to the codec")
    ap.add_argument("--task", default="demo-speech")
    ap.add_argument("--limit", type=int, default=16, help="the first N items of the task")
    ap.add_argument("--metric", default="mel,sisdr", help="comma-separated metric names")
    ap.add_argument("--jobs", type=int, default=2, help="workers for each executor")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--gpus-per-worker", type=float, default=0.0)
    ap.add_argument("--direct", action="store_true", help="time the pools alone on the runner's item job")
    args = ap.parse_args(argv)

    # the same BLAS threads in both executors: Ray gives each actor OMP_NUM_THREADS = its CPUs (1), and
    # float64 dot products round differently with another thread count
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    name, options = parse_spec(args.codec)
    if args.weights:
        options["weights"] = args.weights
    metrics = [m for m in args.metric.split(",") if m]
    print(conditions(args), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        how = direct if args.direct else through_run
        times, values, ray_start = how(args, (name, options), metrics, Path(tmp))
    n = args.limit
    print(f"\n| executor ({'pools alone' if args.direct else 'bench.run'}) | workers | wall s | items/s "
          "| wall s with Ray's start-up |")
    print("| --- | --- | --- | --- | --- |")
    for executor in ("local", "ray"):
        start = ray_start if executor == "ray" else 0.0
        print(f"| {executor} | {args.jobs} | {times[executor]:.1f} | {n / times[executor]:.2f} | "
              f"{times[executor] + start:.1f} |")
    print(f"\nlocal/ray wall ratio {times['local'] / times['ray']:.2f} (above 1: Ray faster); Ray runtime start-up "
          f"{ray_start:.1f} s, not in Ray's wall time")
    a, b = values["local"], values["ray"]
    common = set(a) & set(b)
    diff = max((abs(a[k] - b[k]) / max(abs(b[k]), 1e-12) for k in common), default=float("nan"))
    print(f"{len(common)} per-item values in both runs ({len(a)} local, {len(b)} ray); largest relative "
          f"difference {diff:.2g}")


if __name__ == "__main__":
    main()
