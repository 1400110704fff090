"""Flags of `bench train semanticodec model` (argparse only at import: `bench --help` imports no torch)."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger("bench")


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """Every `TrainConfig` field as a flag; defaults are the official configuration's (spec section 9)."""
    p.add_argument("--task", action="append", required=True, metavar="NAME",
                   help="audio to train on, as in bench run: files:DIR, demo-speech, libritts:ROOT, ... (repeatable)")
    p.add_argument("--out", required=True, metavar="RUN_DIR",
                   help="run folder (official layout; `bench run --weights RUN_DIR`); an existing run is resumed")
    p.add_argument("--token-rate", type=int, default=50, choices=(25, 50, 100), help="tokens/s, both streams (50)")
    p.add_argument("--vocab", type=int, default=4096, choices=(4096, 8192, 16384, 32768),
                   help="semantic vocabulary V (4096)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--weights", metavar="DIR", help="released SemantiCodec folder: frozen AudioMAE, VAE, vocoder "
                                                      "(and, with --init weights, the starting point)")
    src.add_argument("--random-weights", action="store_true", help="random frozen parts (wiring tests)")
    p.add_argument("--tiny", action="store_true", help="the tiny configuration (tests)")
    p.add_argument("--codebook", metavar="NPY", help="semantic codebook [V, F] (from `bench train semanticodec "
                                                     "codebook`); default: the one in --weights")
    p.add_argument("--init", choices=("weights", "random"), default="weights",
                   help="start the encoder LSTM and UNet from --weights (fine-tune) or from random (default weights)")
    p.add_argument("--steps", type=int, default=100000, help="total optimiser steps (100000)")
    p.add_argument("--batch-size", type=int, default=2, help="windows per step and process (2)")
    p.add_argument("--lr", type=float, default=1e-4, help="AdamW learning rate (1e-4: the LDM's base_learning_rate)")
    p.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay (0.01, torch's default)")
    p.add_argument("--warmup-steps", type=int, default=0, help="linear learning-rate warm-up (0)")
    p.add_argument("--grad-clip", type=float, default=0.0, help="gradient-norm clip (0: none, as the LDM)")
    p.add_argument("--ema-decay", type=float, default=0.9999, help="UNet EMA decay (0.9999, LitEma warm-up)")
    p.add_argument("--cond-drop", type=float, default=0.1,
                   help="condition dropout for classifier-free guidance (0.1; not stated by the release: "
                        "AudioLDM's unconditional_prob_cfg)")
    p.add_argument("--commitment-weight", type=float, default=1.0, help="VQ commitment loss weight (1.0)")
    p.add_argument("--vq-decay", type=float, default=0.9, help="EMA decay of the acoustic codebook (0.9)")
    p.add_argument("--vq-dead-code-threshold", type=float, default=0.0,
                   help="codes whose EMA use count falls below this restart at a random vector of the batch "
                        "(vector-quantize-pytorch's threshold_ema_dead_code; 0: off, as the official encoder)")
    p.add_argument("--latent", choices=("sample", "mean"), default="sample",
                   help="diffusion target: a VAE posterior sample (LDM) or its mean")
    p.add_argument("--no-scale-by-std", dest="scale_by_std", action="store_false",
                   help="keep the checkpoint's scale_factor instead of 1/std of the first batch's latents")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="bf16: autocast (accelerate)")
    p.add_argument("--seed", type=int, default=0, help="data order, crops, noise, dropout, init (0)")
    p.add_argument("--limit", type=int, metavar="N", help="the first N items of each task")
    p.add_argument("--window-seconds", type=float, default=10.24,
                   help="training window (10.24, the model's; shorter only for experiments: bench run decodes 10.24)")
    p.add_argument("--checkpoint-every", type=int, default=1000, help="steps between checkpoints (1000)")
    p.add_argument("--keep-checkpoints", action="store_true",
                   help="also keep every checkpoint in RUN_DIR/checkpoints/step_N/ (official layout, hard links)")
    p.add_argument("--log-every", type=int, default=10, help="steps between train_log.csv rows (10)")
    p.add_argument("--val-every", type=int, default=1000, help="steps between validations (1000)")
    p.add_argument("--val-clips", type=int, default=2, help="validation windows (the first clips) (2)")
    p.add_argument("--val-ddim-steps", type=int, default=10, help="DDIM steps of the validation decode (10)")
    p.add_argument("--val-cfg-scale", type=float, default=2.0, help="guidance scale of the validation decode (2.0)")
    p.add_argument("--no-cache-frozen", dest="cache_frozen", action="store_false",
                   help="recompute AudioMAE/VAE outputs every step (default: cached per crop in memory)")
    p.add_argument("--frozen-cache-mb", type=float, default=2048,
                   help="memory bound of that cache in MB (2048; about 2 MB per 10.24 s crop at full size)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default torch's)")


def run_model(args) -> int:
    from bench.cli import _listish

    from .model import TrainConfig, TrainError, train_model

    if args.threads:
        import torch

        torch.set_num_threads(int(args.threads))
    fields = set(TrainConfig.__dataclass_fields__) - {"tasks", "extra", "stop_after"}
    kwargs = {k: getattr(args, k) for k in fields if hasattr(args, k)}
    cfg = TrainConfig(tasks=_listish(args.task) or [], **kwargs)
    try:
        result = train_model(cfg, progress=_bar)
    except (TrainError, ValueError) as err:
        raise SystemExit(f"bench train semanticodec model: {err}") from None
    opts = f"token_rate={cfg.token_rate},vocab={cfg.vocab}" + (",tiny" if cfg.tiny else "")
    log.info("step %d in %s; evaluate it: bench run --codec semanticodec:%s --weights %s", result.step,
             result.run_dir, opts, result.run_dir)
    return 0


def _bar(total: int, initial: int):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc="train", unit="step", dynamic_ncols=True)
