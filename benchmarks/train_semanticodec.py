"""Training throughput of `bench train semanticodec model` at the full-size configuration (random weights).

    python benchmarks/train_semanticodec.py                            # token rate 50, batch 1, fp32, 3 steps
    python benchmarks/train_semanticodec.py --token-rate 100 --batch-size 2 --steps 3 --precision bf16
    python benchmarks/train_semanticodec.py --device cuda --batch-size 8 --steps 20 --precision bf16

One step = what the training loop does (`bench.train.model.train_model`): the frozen pass (fbank, AudioMAE,
semantic lookup, AudioLDM mel, VAE encoder) on fresh 10.24 s windows (no cache), the objective (BiLSTM + VQ +
UNet forward), backward, fused AdamW, UNet EMA, with accelerate's autocast. The first step is a warm-up and is
not timed. Speed does not depend on the weights' values. Timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.machine import cpu_model  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--token-rate", type=int, default=50, choices=(25, 50, 100))
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3, help="timed steps (after one warm-up step)")
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()

    import numpy as np
    import torch
    from accelerate import Accelerator

    from bench.train.data import WindowSampler
    from bench.train.model import TrainConfig, build_model
    from bench.train.objective import SemantiCodecTrainer, UNetEMA, step_generator

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = TrainConfig(tasks=[], out="", token_rate=args.token_rate, vocab=4096, random_weights=True,
                      batch_size=args.batch_size, precision=args.precision)
    t = time.perf_counter()
    sc, enc, dec = build_model(cfg)
    build_s = time.perf_counter() - t
    acc = Accelerator(mixed_precision="bf16" if args.precision == "bf16" else "no", cpu=args.device == "cpu")
    trainer = SemantiCodecTrainer(enc, dec).to(acc.device)
    ema = UNetEMA(dec)
    params = trainer.trainable_parameters()
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01, fused=True)
    model, opt = acc.prepare(trainer, opt)
    rng = np.random.default_rng(0)
    clips = [(0.1 * rng.standard_normal(16000 * 12)).astype(np.float32) for _ in range(4)]
    sampler = WindowSampler(clips, 163840, args.batch_size, seed=0)
    n_train = sum(p.numel() for p in params)
    n_frozen = sum(p.numel() for p in trainer.parameters()) - n_train

    def one(step: int) -> tuple[float, float]:
        t0 = time.perf_counter()
        batch = sampler.batch(step)
        fz = trainer.frozen(torch.from_numpy(batch.wave).to(acc.device), batch.lengths)
        if acc.device.type == "cuda":
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        with acc.autocast():
            out = model(fz, step_generator(0, step, 0, acc.device))
        acc.backward(out["loss"])
        opt.step()
        opt.zero_grad(set_to_none=True)
        ema.update()
        if acc.device.type == "cuda":
            torch.cuda.synchronize()
        return t1 - t0, time.perf_counter() - t1

    one(0)  # warm-up
    times = [one(s) for s in range(1, args.steps + 1)]
    frozen_s = sum(a for a, _ in times) / len(times)
    train_s = sum(b for _, b in times) / len(times)
    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical CPUs, torch threads {torch.get_num_threads()}, "
          f"torch {torch.__version__}, device {acc.device}" +
          (f" ({torch.cuda.get_device_name()})" if acc.device.type == "cuda" else ""))
    print(f"SemantiCodec full size, token rate {args.token_rate}: trainable {n_train / 1e6:.1f} M parameters "
          f"(BiLSTM {sc.encoder.lstm_layers} layers + Linear + UNet), frozen {n_frozen / 1e6:.1f} M; "
          f"built in {build_s:.1f} s")
    print("| batch | precision | steps | frozen pass s/step | train s/step | steps/s | windows/s |")
    print("|---|---|---|---|---|---|---|")
    total = frozen_s + train_s
    print(f"| {args.batch_size} | {args.precision} | {args.steps} | {frozen_s:.2f} | {train_s:.2f} | "
          f"{1 / total:.4f} | {args.batch_size / total:.4f} |")


if __name__ == "__main__":
    main()
