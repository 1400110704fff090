"""`bench train CODEC STAGE ...`: argparse wiring for the training stages (argparse only at import time).

Each stage is one entry of `STAGES[codec]`: (help, add_arguments(parser), run(args) -> exit code). Adding a
stage is one function that declares its flags, one that runs it, and one line in the table.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Callable

log = logging.getLogger("bench")


# -- semanticodec codebook -----------------------------------------------------------------------------------


def _codebook_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", action="append", required=True, metavar="NAME",
                   help="audio to learn from, as in bench run: files:DIR, demo-speech, libritts:ROOT, hear:DIR, ... "
                        "(repeatable, or comma-separated)")
    p.add_argument("--token-rate", type=int, required=True, choices=(25, 50, 100),
                   help="token rate (tokens/s, both streams): 100, 50 or 25; sets the feature stacking K = 100/rate")
    p.add_argument("--vocab", type=int, required=True, choices=(4096, 8192, 16384, 32768),
                   help="semantic vocabulary V: the number of k-means centroids")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--weights", metavar="DIR", help="SemantiCodec checkpoint folder (official layout) or "
                                                      "encoder.ckpt: its AudioMAE gives the features")
    src.add_argument("--random-weights", action="store_true", help="a random AudioMAE (seed --seed): wiring tests")
    p.add_argument("--tiny", action="store_true", help="the tiny configuration (tests; weights from "
                                                       "`bench weights random semanticodec --tiny`)")
    p.add_argument("--out", required=True, metavar="FILE_OR_DIR",
                   help="a .npy file, or a folder that receives codebook_idx/combine_{512/K}_audioset_dominate/"
                        "codebook_{V/2}_0.npy (give the weights folder to use it with bench run --weights)")
    p.add_argument("--limit", type=int, metavar="N", help="the first N items of each task")
    p.add_argument("--seed", type=int, default=0, help="k-means seed (and training-set draw, random AudioMAE)")
    p.add_argument("--iterations", type=int, default=25, metavar="I", help="k-means iterations (default 25, faiss')")
    p.add_argument("--init", choices=("random", "kmeans++", "afkmc2"), default="random",
                   help="k-means initialisation (default random: V training vectors drawn uniformly, faiss')")
    p.add_argument("--max-points-per-centroid", type=int, default=256, metavar="P",
                   help="train on at most P x V frames drawn with the seed (default 256, faiss'); bounds memory")
    p.add_argument("--device", default="cpu", help="torch device for AudioMAE (cpu, cuda, cuda:1); k-means runs "
                                                   "on the CPU (faiss-cpu)")
    p.add_argument("--batch-size", type=int, default=16, metavar="B", help="10.24 s windows per AudioMAE batch")
    p.add_argument("--cache", metavar="DIR", help="feature cache (default $BENCH_HOME/cache/train/"
                                                  "semanticodec-features)")
    p.add_argument("--force", action="store_true", help="replace an existing codebook file")


def _codebook_run(args) -> int:
    from bench.cli import _listish

    from .codebook import train_codebook

    logging.getLogger("faiss").setLevel(logging.WARNING)  # its loader reports which SIMD build it found
    report = train_codebook(
        tasks=_listish(args.task) or [], token_rate=args.token_rate, vocab=args.vocab, out=args.out,
        weights=args.weights, random_weights=args.random_weights, tiny=args.tiny, limit=args.limit, seed=args.seed,
        iterations=args.iterations, device=args.device, batch_size=args.batch_size, cache_dir=args.cache,
        max_points_per_centroid=args.max_points_per_centroid, init=args.init, force=args.force,
        progress=_progress_factory())
    for line in report.lines():
        log.info(line)
    for item_id, err in report.failures[:5]:
        log.info("skipped %s: %s", item_id, err)
    opts = f"token_rate={args.token_rate},vocab={args.vocab}" + (",tiny" if args.tiny else "")
    if args.weights is not None and Path(args.out).expanduser().resolve() == Path(args.weights).expanduser().resolve():
        log.info("evaluate it: bench run --codec semanticodec:%s --weights %s", opts, args.out)
    return 0


def _progress_factory():
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return None

    def factory(total: int, desc: str):
        return tqdm(total=total, desc=desc, unit="item", leave=False, dynamic_ncols=True)

    return factory


# -- semanticodec model ----------------------------------------------------------------------------------------


def _model_arguments(p: argparse.ArgumentParser) -> None:
    from bench.train.model_flags import add_model_arguments  # argparse only (no torch)

    add_model_arguments(p)


def _model_run(args) -> int:
    from bench.train.model_flags import run_model

    return run_model(args)


# -- the table -----------------------------------------------------------------------------------------------

Stage = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]

STAGES: dict[str, dict[str, Stage]] = {
    "semanticodec": {
        "codebook": ("k-means semantic codebook [V, F] from AudioMAE features of your audio",
                     _codebook_arguments, _codebook_run),
        "model": ("train the acoustic encoder and the latent-diffusion UNet (frozen AudioMAE, codebook, VAE, "
                  "vocoder); checkpoints in the official layout", _model_arguments, _model_run),
    },
}


def add_train_parser(sub) -> None:
    """Add `train CODEC STAGE` to the `bench` sub-command parsers `sub`."""
    t = sub.add_parser("train", help="train a codec's parts on your audio (semanticodec codebook, ...)")
    codecs = t.add_subparsers(dest="train_codec", required=True, metavar="CODEC")
    for codec, stages in STAGES.items():
        c = codecs.add_parser(codec, help=f"train {codec}: " + ", ".join(stages))
        sp = c.add_subparsers(dest="train_stage", required=True, metavar="STAGE")
        for stage, (help_text, add_arguments, run) in stages.items():
            parser = sp.add_parser(stage, help=help_text, description=help_text)
            add_arguments(parser)
            parser.set_defaults(train_run=run)


def cmd_train(args) -> int:
    return args.train_run(args)
