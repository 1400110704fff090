"""`bench run` with items batched per codec call (the codec's `batch_items`) vs one item per call, one run.

    python benchmarks/runner_batching.py --codec semanticodec:tiny --task demo-speech --limit 8
    python benchmarks/runner_batching.py --codec semanticodec:ddim_steps=10 --weights DIR --limit 8
    python benchmarks/runner_batching.py --codec semanticodec --weights DIR --task demo-digits --metric probe

Runs the same codec over the same items twice into fresh workspaces (jobs=1 both times), prints the wall
time of each, the ratio, and the largest difference between the two runs' per-item scores and bitrates.
Timings on a loaded machine are noisy: compare the ratio from one run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench  # noqa: E402
from bench.registry import parse_spec  # noqa: E402
from bench.store import ResultStore  # noqa: E402


def per_item(ws: Path) -> dict:
    store = ResultStore(ws, readonly=True)
    rows = {("bps", r.item): r.bits_per_second for r in store.encodes_frame().itertuples()}
    rows.update({(r.item, r.metric, r.key): r.value for r in store.scores_frame().itertuples()})
    # task-level metrics (the HEAR probe) leave one value per task and metric in the cells
    rows.update({("cell", r.task, r.metric): r.value for r in store.cells().itertuples() if r.value == r.value})
    store.close()
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--codec", default="semanticodec:tiny")
    ap.add_argument("--weights", default=None, help="weights folder passed to the codec")
    ap.add_argument("--task", default="demo-speech")
    ap.add_argument("--limit", type=int, default=8, help="first N items of the task (0: all)")
    ap.add_argument("--metric", default="mel")
    args = ap.parse_args(argv)

    name, options = parse_spec(args.codec)
    if args.weights:
        options["weights"] = args.weights
    cls = type(bench.load_codec(name, **options))
    batch = cls.batch_items
    times, results = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, items_per_call in (("batched", batch), ("one item per call", 1)):
            cls.batch_items = items_per_call
            ws = Path(tmp) / label.replace(" ", "_")
            t0 = time.perf_counter()
            res = bench.run(codecs=[(name, options)], tasks=[args.task], metrics=[args.metric], out=ws,
                            limit=args.limit or None, jobs=1)
            times[label] = time.perf_counter() - t0
            results[label] = per_item(ws)
            print(f"{label:18s} ({items_per_call} items per call): {times[label]:7.1f} s wall, "
                  f"{res.codec_work} items coded", flush=True)
        cls.batch_items = batch
    a, b = results["batched"], results["one item per call"]
    common = set(a) & set(b)
    diff = max((abs(a[k] - b[k]) / max(abs(b[k]), 1e-12) for k in common), default=float("nan"))
    print(f"speed-up {times['one item per call'] / times['batched']:.2f}x; {len(common)} values compared, "
          f"largest relative difference {diff:.2g}")


if __name__ == "__main__":
    main()
