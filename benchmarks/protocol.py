"""A paper protocol on a sample of its items: throughput per task and an estimate for the whole protocol.

    BENCH_DATA=/data python benchmarks/protocol.py --limit 8                       # the preset's codecs with weights here
    BENCH_DATA=/data python benchmarks/protocol.py --codec opus:bitrate=6 --limit 4 --metric mel,stft
    BENCH_DATA=/data python benchmarks/protocol.py --codec semanticodec --weights DIR --device cuda \\
        --executor ray --gpus-per-worker 1 --limit 32                             # on GPUs

It draws `--limit` items of every task of `--preset` with `--subset-seed` (the same items on every machine),
runs them through `bench.run` into a fresh workspace (codec work and metrics, as a real run does), and prints
per codec and task: items, seconds of audio, wall seconds, items per second and audio seconds per wall
second. The estimate for the whole protocol scales each task's wall time by its total audio duration (read
from file headers and window bounds, nothing decoded) over the sample's. Start-up (model loading, the first
call's one-off work) is timed apart on one item per codec first, and left out of the rates. Timings on a shared
machine are noisy; the estimate assumes the sample is typical of its task.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.machine import cpu_model  # noqa: E402

import bench  # noqa: E402
from bench import audio as au  # noqa: E402
from bench.store import ResultStore  # noqa: E402


def item_seconds(item) -> float:
    """Seconds of audio of one item without decoding it: window bounds, else the file header, else its samples."""
    start, stop = item.info.get("start_s"), item.info.get("stop_s")
    if start is not None and stop is not None:
        return float(stop) - float(start)
    seconds = au.duration(item.path) if item.path is not None else None
    if seconds is None:
        data, rate = item.load()
        seconds = data.shape[-1] / rate
        item.release()
    return float(seconds)


def gpu_model() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    except ImportError:
        pass
    return "none"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="semanticodec-paper")
    ap.add_argument("--codec", action="append", help="codec spec (repeatable; default: the preset's with weights here)")
    ap.add_argument("--weights", help="weights folder for the preset's neural codecs")
    ap.add_argument("--metric", help="comma-separated metrics (default: the preset's)")
    ap.add_argument("--limit", type=int, default=8, help="items drawn from each task")
    ap.add_argument("--subset-seed", type=int, default=0)
    ap.add_argument("--executor", choices=["local", "ray"], default="local")
    ap.add_argument("--jobs", type=int)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--gpus-per-worker", type=float, default=0.0)
    args = ap.parse_args(argv)

    from bench.selection import task_items
    from bench.tasks import load_task
    from bench.tasks.presets import available_codecs, get_preset

    preset = get_preset(args.preset)
    codecs = args.codec or available_codecs(preset, args.weights)
    metrics = args.metric.split(",") if args.metric else list(preset.metrics)
    tasks = [load_task(t) for t in preset.tasks]
    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical cores, load average {os.getloadavg()[0]:.2f}; "
          f"GPU: {gpu_model()}")
    print(f"preset {preset.name}; codecs {', '.join(codecs)}; metrics {', '.join(metrics)}; executor "
          f"{args.executor}, jobs {args.jobs or 'default'}, device {args.device}; {args.limit} items per task "
          f"(subset seed {args.subset_seed})")
    totals = {}
    for task in tasks:
        items = task.items()
        totals[task.name] = (len(items), sum(item_seconds(it) for it in items))
    common = dict(device=args.device, jobs=args.jobs, executor=args.executor, gpus_per_worker=args.gpus_per_worker)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for c, codec in enumerate(codecs):
            for k, task in enumerate(tasks):
                sample = task_items(task, args.limit, args.subset_seed)
                seconds = sum(item_seconds(it) for it in sample)
                ws = Path(tmp) / f"ws{c}-{k}"
                t0 = time.perf_counter()
                bench.run(codecs=[codec], tasks=[task.name], metrics=metrics, out=ws, limit=args.limit,
                          subset_seed=args.subset_seed, **common)
                wall = time.perf_counter() - t0
                coded = ResultStore(ws, readonly=True).encodes_frame()
                codec_s = float((coded.encode_s + coded.decode_s).sum()) if len(coded) else float("nan")
                rows.append((codec, task.name, len(sample), seconds, wall, codec_s, *totals[task.name]))
    print("\n| codec | task | items | audio s | wall s | codec s | items/s | audio s per wall s | task items "
          "| task audio h | estimate h | codec h |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    estimate: dict[str, list[float]] = {}
    for codec, task, n, seconds, wall, codec_s, n_items, total_s in rows:
        scale = total_s / seconds / 3600 if seconds else float("nan")
        est = estimate.setdefault(codec, [0.0, 0.0])
        est[0] += wall * scale
        est[1] += codec_s * scale
        print(f"| {codec} | {task} | {n} | {seconds:.1f} | {wall:.1f} | {codec_s:.2f} | {n / wall:.2f} | "
              f"{seconds / wall:.2f} | {n_items} | {total_s / 3600:.3g} | {wall * scale:.3g} | {codec_s * scale:.3g} |")
    print("\nwall s: the whole bench.run of the sample (codec and metrics, with its start-up: model load, workers); "
          "codec s: the encode + decode seconds the store recorded for its items")
    for codec, (wall_h, codec_h) in estimate.items():
        print(f"{codec}: the whole protocol takes about {wall_h:.3g} h of wall time with these workers ({codec_h:.3g} h "
              "of it in the codec); a small sample overstates it by one start-up per task")

if __name__ == "__main__":
    main()
