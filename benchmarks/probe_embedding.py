"""HEAR-probe embedding time: a codec's items embedded `batch_items` per call vs one per call, one run.

    python benchmarks/probe_embedding.py --codec semanticodec:token_rate=50,vocab=4096 --weights DIR
    python benchmarks/probe_embedding.py --codec semanticodec:tiny --task demo-drums

Times `embed_task` (load, codec `embed`, time pooling) over every item of a HEAR task both ways, and prints
the ratio and the largest difference between the two sets of pooled embeddings. The predictor training that
follows in a probe run is the same either way and is not timed. Noisy on a loaded machine: compare the ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import bench  # noqa: E402
from bench.probe.embed import CodecLatent  # noqa: E402
from bench.probe.evaluation import embed_task  # noqa: E402
from bench.registry import parse_spec  # noqa: E402
from bench.tasks import load_task  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--codec", default="semanticodec:tiny")
    ap.add_argument("--weights", default=None, help="weights folder passed to the codec")
    ap.add_argument("--task", default="demo-digits")
    args = ap.parse_args(argv)

    name, options = parse_spec(args.codec)
    if args.weights:
        options["weights"] = args.weights
    codec = bench.load_codec(name, **options)
    task = load_task(args.task)
    results = {}
    for label, batch in (("batched", codec.batch_items), ("one item per call", 1)):
        embedder = CodecLatent(codec)
        embedder.batch = batch
        t0 = time.perf_counter()
        rows, failures = embed_task(embedder, task)
        results[label] = (time.perf_counter() - t0, rows)
        n = sum(len(v[1]) for v in rows.values())
        print(f"{label:18s} ({batch} items per call): {results[label][0]:7.1f} s for {n} items, "
              f"{len(failures)} failed", flush=True)
    (tb, rb), (ts, rs) = results["batched"], results["one item per call"]
    diff = max(float(np.abs(rb[s][0] - rs[s][0]).max() / max(np.abs(rs[s][0]).max(), 1e-12)) for s in rs)
    print(f"speed-up {ts / tb:.2f}x; largest difference between the pooled embeddings {diff:.2g} (relative to peak)")


if __name__ == "__main__":
    main()
