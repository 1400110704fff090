"""Throughput of `bench train semanticodec codebook`: the AudioMAE feature pass and faiss k-means.

    python benchmarks/train_codebook.py                       # features of 60 s, k-means 200k x 768 -> 16384, 2 it.
    python benchmarks/train_codebook.py --audio-seconds 30 --n 50000 --k 4096 --iterations 3

Feature pass (full-size AudioMAE, random weights: the speed does not depend on the values), side by side:
* `bench.train` streamed: files decoded, fbank chunked, AudioMAE batches, rows written to the memory-mapped
  cache (what the command does on a first run), and the same again from the cache (second run);
* the codec's in-memory path as reference: `semanticodec_fbank` of each whole item + `stack_patches(AudioMAE)`
  on all its windows (what `SemantiCodec.tokens` does before the semantic lookup), same weights, same batch.
k-means on Gaussian-mixture vectors: `bench.train.codebook.kmeans` (faiss, incl. the final assignment pass),
against a reference Lloyd iteration written in torch (chunked matmul distances, argmin, index_add_).
Timings on a shared machine are noisy: compare the ratios of one run, not absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.machine import cpu_model  # noqa: E402

import numpy as np  # noqa: E402


def synthetic_audio(seconds: float, seed: int, sr: int = 16000) -> np.ndarray:
    """Tones, chirps and noise in half-second pieces (speed only: content does not matter)."""
    rng = np.random.default_rng(seed)
    t = np.arange(sr // 2) / sr
    pieces = [rng.uniform(0.05, 0.5) * np.sin(2 * np.pi * rng.uniform(80, 6000) * t + rng.uniform(0, 7) * t * t)
              + 0.01 * rng.standard_normal(t.size) for _ in range(int(np.ceil(seconds * 2)))]
    return np.concatenate(pieces)[: int(seconds * sr)].astype(np.float32)


def bench_features(args, work: Path) -> None:
    import soundfile as sf
    import torch

    from bench.codecs.semanticodec.audiomae import stack_patches
    from bench.codecs.semanticodec.fbank import semanticodec_fbank
    from bench.tasks import load_task
    from bench.train import features as Fe

    audio = work / "audio"
    audio.mkdir()
    n_files = max(1, int(round(args.audio_seconds / args.file_seconds)))
    for i in range(n_files):
        sf.write(audio / f"clip{i}.wav", synthetic_audio(args.file_seconds, i), 16000, subtype="FLOAT")
    total = n_files * args.file_seconds
    cfg = Fe.encoder_config(args.token_rate)
    mae = Fe.random_audiomae(cfg, 0)
    extractor = Fe.FeatureExtractor(mae, cfg, device=args.device, batch_size=args.batch_size)
    cache = Fe.FeatureCache(work / "cache", Fe.cache_context(mae, cfg))
    print(f"\nFeature pass: {n_files} files x {args.file_seconds:g} s = {total:g} s of audio, token rate "
          f"{args.token_rate} (F = {cfg.feature_dim}), full-size AudioMAE, batch {args.batch_size} windows, "
          f"device {args.device}")

    # reference: the codec's in-memory path on the same audio and weights
    t0 = time.perf_counter()
    ref_rows = 0
    with torch.inference_mode():
        for item in load_task(f"files:{audio}").items():
            wave = Fe.prepare_audio(item)
            fb, segs = semanticodec_fbank(torch.from_numpy(wave)[None].to(args.device), [len(wave)])
            windows = fb[0].reshape(segs[0], 1024, 128)
            for s in range(0, segs[0], args.batch_size):
                ref_rows += stack_patches(mae(windows[s: s + args.batch_size]), cfg.stack, cfg.grid).shape[0]
    ref = time.perf_counter() - t0

    t0 = time.perf_counter()
    fs = Fe.extract_features(load_task(f"files:{audio}").items(), extractor, cache)
    ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = Fe.extract_features(load_task(f"files:{audio}").items(), extractor, cache)
    cached = time.perf_counter() - t0
    assert again.cached == n_files and again.n_vectors == fs.n_vectors

    print(f"{'path':<44} {'wall s':>8} {'audio s / s':>12} {'ratio':>7}")
    print(f"{'codec in-memory (semanticodec_fbank + MAE)':<44} {ref:8.2f} {total / ref:12.2f} {1.0:7.2f}")
    print(f"{'bench.train streamed, first run':<44} {ours:8.2f} {total / ours:12.2f} {ref / ours:7.2f}")
    print(f"{'  of which in AudioMAE':<44} {fs.model_seconds:8.2f}")
    print(f"{'bench.train, second run (cache)':<44} {cached:8.2f} {total / cached:12.1f} {ref / cached:7.1f}")
    print(f"{fs.n_vectors} frames of {fs.dim} floats cached ({fs.n_vectors * fs.dim * 4 / 2**20:.1f} MiB)")


def torch_lloyd_iteration(x, c):
    """One reference Lloyd iteration in torch: nearest centroid by ||x||^2 - 2 x.c + ||c||^2, then means."""
    import torch

    k = c.shape[0]
    c2 = (c * c).sum(1)
    ids = torch.empty(x.shape[0], dtype=torch.int64)
    for s in range(0, x.shape[0], 16384):
        xb = x[s: s + 16384]
        ids[s: s + 16384] = (c2[None] - 2 * xb @ c.T).argmin(1)
    sums = torch.zeros_like(c).index_add_(0, ids, x)
    counts = torch.bincount(ids, minlength=k).clamp_(min=1).to(x.dtype)
    return sums / counts[:, None]


def bench_kmeans(args) -> None:
    import torch

    from bench.train.codebook import kmeans

    rng = np.random.default_rng(0)
    means = rng.standard_normal((2 * args.k, args.dim)).astype(np.float32)
    x = means[rng.integers(0, len(means), args.n)] + 0.5 * rng.standard_normal((args.n, args.dim)).astype(np.float32)
    print(f"\nk-means: {args.n} x {args.dim} float32 vectors -> {args.k} centroids, {args.iterations} iterations "
          f"({2 * args.n * args.k * args.dim / 1e12:.2f} TFLOP of distances per iteration)")
    res = kmeans(x, args.k, iterations=args.iterations, seed=0)
    per_it = res.seconds / (args.iterations + 1)  # + the final assignment pass
    xt, ct = torch.from_numpy(x), torch.from_numpy(x[: args.k].copy())
    t0 = time.perf_counter()
    torch_lloyd_iteration(xt, ct)
    ref = time.perf_counter() - t0
    print(f"{'implementation':<44} {'s / iteration':>14} {'ratio':>7}")
    print(f"{'reference Lloyd iteration (torch matmul)':<44} {ref:14.2f} {1.0:7.2f}")
    print(f"{'bench.train kmeans (faiss), mean':<44} {per_it:14.2f} {ref / per_it:7.2f}")
    print(f"faiss total {res.seconds:.1f} s (training + final assignment); mean squared distance "
          f"{res.inertia / args.n:.4g}; {res.empty} empty centroids; objective per iteration: "
          + ", ".join(f"{v / args.n:.4g}" for v in res.objective))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--audio-seconds", type=float, default=60.0)
    p.add_argument("--file-seconds", type=float, default=20.0)
    p.add_argument("--token-rate", type=int, default=100, choices=(25, 50, 100))
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="cpu")
    p.add_argument("--n", type=int, default=200_000)
    p.add_argument("--dim", type=int, default=768)
    p.add_argument("--k", type=int, default=16384)
    p.add_argument("--iterations", type=int, default=2)
    p.add_argument("--skip-features", action="store_true")
    p.add_argument("--skip-kmeans", action="store_true")
    args = p.parse_args()

    import faiss
    import torch

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical cores, load average {load:.2f} at start "
          "(a shared machine: timings are noisy)")
    print(f"Python {platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"faiss {faiss.__version__} ({faiss.omp_get_max_threads()} OpenMP threads), numpy {np.__version__}")
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        if not args.skip_features:
            bench_features(args, Path(tmp))
    if not args.skip_kmeans:
        bench_kmeans(args)


if __name__ == "__main__":
    main()
