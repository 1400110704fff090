"""SemantiCodec sampler study: steps x sampler x guidance, on the same noise and the same condition.

    python benchmarks/sampler_study.py                         # full-size decoder, random weights, CFG 2.0
    python benchmarks/sampler_study.py --tiny --cfg 1.0 2.0 3.0 --threads 1
    python benchmarks/sampler_study.py --points ddim:50 ddim:10 dpmpp-2m:10 unipc:10 --ref-steps 0   # timings only

For one 10.24 s window (latent [1, 8, 256, 16], condition [1, W, 2F] of N(0, 1) features, W = 512 / K), the
decoder (random weights from `--seed`, the codec's `pretrained=False` initialisation; `--tiny`: the tiny test
config) samples the latent with every `--samplers` at every `--steps` and `--cfg`, all from the same x_T, then
runs the VAE and the vocoder. It reports, per result:

(a) the distance from the reference ODE solution - DDIM with eta = 0 over every one of the 1000 training
    timesteps (t = 999, 998, ..., 0; `--ref-steps` changes the count, 0 skips it), same x_T and CFG - as the
    relative L2 error ||x - x_ref|| / ||x_ref|| of the latent, of the log-mel (VAE output) and of the 16 kHz wave;
(b) decode seconds per window (sampling + VAE + vocoder, wall clock, one call each; `--repeats` takes the best),
    and the speed-up over DDIM at 50 steps with the same CFG.

DDIM here runs with eta = 0 (the ODE sampler; the codec's default eta = 1.0 adds noise and has no ODE limit).
All samplers visit the official DDIM timesteps (arange(0, 1000, 1000 // S) + 1: 5 steps start at t = 801, 50 at
t = 981), as the codec does, so part of the few-step error is that late start. Prints a markdown table with the
CPU model, threads and load; writes study.json and study.png (matplotlib) under `--out`. Timings on a shared or
loaded machine are noisy: compare rows of the same run only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.machine import cpu_model  # noqa: E402

import numpy as np
import torch


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def build_decoder(args):
    from bench.codecs.semanticodec.config import get_config
    from bench.codecs.semanticodec.decoder import LatentDiffusionDecoder

    cfg = get_config(args.token_rate, args.vocab, tiny=args.tiny).decoder
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(args.seed)
        dec = LatentDiffusionDecoder(cfg)
    return dec.drop_unused()


@torch.inference_mode()
def decode(dec, cond, x_t, sampler, steps, cfg_scale):
    """-> (latent, mel, wave, seconds) for one window."""
    t0 = time.perf_counter()
    latent = dec.sample_latent(cond, ddim_steps=steps, cfg_scale=cfg_scale, eta=0.0, noise=x_t, sampler=sampler)
    mel = dec.latent_to_mel(latent)
    wave = dec.mel_to_wave(mel)
    return latent, mel, wave, time.perf_counter() - t0


@torch.inference_mode()
def reference(dec, cond, x_t, cfg_scale, n_steps):
    """DDIM eta = 0 over timesteps n_steps-spaced from 999 to 0 (every timestep for 1000) -> latent, mel, wave, s."""
    from bench.codecs.semanticodec import ddim, samplers

    t0 = time.perf_counter()
    ts = np.unique(np.linspace(0, dec.cfg.timesteps - 1, n_steps).round().astype(np.int64))
    sched = ddim.make_schedule_for_timesteps(dec.alphas_cumprod, dec.sqrt_alphas_cumprod,
                                             dec.sqrt_one_minus_alphas_cumprod, ts, 0.0)
    fn, guided = samplers.decoder_model_fn(dec, cond, cfg_scale)
    latent = ddim.sample(fn, x_t, sched, lambda: torch.zeros_like(x_t), cfg_scale=cfg_scale, guided=guided)
    mel = dec.latent_to_mel(latent)
    return latent, mel, dec.mel_to_wave(mel), time.perf_counter() - t0


def markdown(rows, meta) -> str:
    head = ["sampler", "steps", "cfg", "UNet calls", "latent rel. L2", "mel rel. L2", "wave rel. L2",
            "decode s / window", "x vs DDIM-50"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        dist = [f"{r[k]:.4f}" if r.get(k) is not None else "-" for k in ("latent", "mel", "wave")]
        speed = f"{r['speedup_vs_ddim50']:.2f}" if r.get("speedup_vs_ddim50") else "-"
        lines.append(f"| {r['sampler']} | {r['steps']} | {r['cfg']:g} | {r['unet_calls']} | " + " | ".join(dist)
                     + f" | {r['seconds']:.2f} | {speed} |")
    return "\n".join(lines)


def plot(rows, path: Path, meta) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = ["-", "--", ":", "-."]
    cfgs = sorted({r["cfg"] for r in rows})
    for name, colour in zip(meta["samplers"], ["tab:blue", "tab:orange", "tab:green"]):
        for cfg, ls in zip(cfgs, styles):
            rr = [r for r in rows if r["sampler"] == name and r["cfg"] == cfg and r.get("latent") is not None]
            if not rr:
                continue
            label = f"{name} cfg={cfg:g}"
            axes[0].plot([r["steps"] for r in rr], [r["latent"] for r in rr], ls, marker="o", color=colour, label=label)
            axes[1].plot([r["seconds"] for r in rr], [r["latent"] for r in rr], ls, marker="o", color=colour, label=label)
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    for ax, xl in zip(axes, ["steps", "decode seconds per window"]):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(xl)
        ax.set_ylabel("latent rel. L2 to DDIM-1000 (eta 0)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_xticks(sorted({r["steps"] for r in rows}))
    axes[0].legend(fontsize=7)
    fig.suptitle(f"SemantiCodec samplers ({meta['config']}, random weights); {meta['cpu']}, {meta['threads']} threads",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiny", action="store_true", help="the tiny decoder config (tests) instead of full size")
    ap.add_argument("--token-rate", type=int, default=100)
    ap.add_argument("--vocab", type=int, default=16384)
    ap.add_argument("--samplers", nargs="+", default=["ddim", "dpmpp-2m", "unipc"])
    ap.add_argument("--steps", nargs="+", type=int, default=[5, 10, 25, 50])
    ap.add_argument("--points", nargs="+", default=None, metavar="SAMPLER:STEPS",
                    help="decode only these points (e.g. ddim:50 unipc:10) instead of samplers x steps")
    ap.add_argument("--cfg", nargs="+", type=float, default=[2.0], help="guidance scales (1.0 = no guidance)")
    ap.add_argument("--ref-steps", type=int, default=1000, help="reference DDIM steps (0: no reference)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--seed", type=int, default=0, help="random weights, condition and x_T")
    ap.add_argument("--repeats", type=int, default=1, help="decode each point this many times (best time)")
    ap.add_argument("--out", default="bench-out/sampler_study")
    args = ap.parse_args(argv)
    from bench.codecs.semanticodec import samplers
    from bench.codecs.semanticodec.ddim import ddim_timesteps

    if args.points:
        try:
            points = [(samplers.check_sampler(p.split(":")[0]), int(p.split(":")[1])) for p in args.points]
        except (IndexError, ValueError) as err:
            raise SystemExit(f"--points takes SAMPLER:STEPS items such as ddim:50 unipc:10 ({err})")
        args.samplers = list(dict.fromkeys(n for n, _ in points))
    else:
        points = [(samplers.check_sampler(n), s) for n in args.samplers for s in args.steps]
    torch.set_num_threads(args.threads)
    import diffusers

    for name in args.samplers:  # import diffusers' schedulers now: a one-off cost (torch._dynamo), not decode time
        if name != "ddim":
            samplers.diffusers_scheduler(name)
    dec = build_decoder(args)
    g = torch.Generator().manual_seed(args.seed + 1)
    cond = torch.randn(1, dec.cfg.window_tokens, dec.cfg.cond_dim, generator=g)
    x_t = torch.randn(1, *dec.latent_shape, generator=g)
    meta = {"cpu": cpu_model(), "threads": args.threads, "torch": torch.__version__, "diffusers": diffusers.__version__,
            "config": ("tiny" if args.tiny else "full-size") + f" decoder, token_rate={args.token_rate}",
            "window": "one 10.24 s window, latent [1, {}, {}, {}]".format(*dec.latent_shape), "seed": args.seed,
            "samplers": args.samplers, "steps": args.steps, "cfg": args.cfg, "ref_steps": args.ref_steps,
            "eta": 0.0, "load_before": os.getloadavg()[0]}
    print(f"# {meta['config']}, random weights (seed {args.seed}); {meta['window']}; {meta['cpu']}, "
          f"{args.threads} threads, torch {torch.__version__}, diffusers {diffusers.__version__}; "
          f"load {meta['load_before']:.1f}", flush=True)
    rows, refs = [], {}
    for cfg in args.cfg:
        ref = None
        if args.ref_steps:
            ref = reference(dec, cond, x_t, cfg, args.ref_steps)
            refs[cfg] = ref[3]
            print(f"reference DDIM-{args.ref_steps} (eta 0) cfg {cfg:g}: {ref[3]:.1f} s", flush=True)
        for name, steps in points:
            best = None
            for _ in range(max(1, args.repeats)):
                out = decode(dec, cond, x_t, name, steps, cfg)
                best = out if best is None or out[3] < best[3] else best
            latent, mel, wave, secs = best
            r = {"sampler": name, "steps": steps, "cfg": cfg, "unet_calls": len(ddim_timesteps(steps)),
                 "seconds": secs}
            if ref is not None:
                r.update(latent=rel(latent, ref[0]), mel=rel(mel, ref[1]), wave=rel(wave, ref[2]))
            rows.append(r)
            print(f"  {name:9s} {steps:3d} steps cfg {cfg:g}: {secs:6.2f} s"
                  + (f"  latent rel. L2 {r['latent']:.4f}" if ref is not None else ""), flush=True)
    for r in rows:
        base = [q for q in rows if q["sampler"] == "ddim" and q["steps"] == 50 and q["cfg"] == r["cfg"]]
        r["speedup_vs_ddim50"] = base[0]["seconds"] / r["seconds"] if base else None
    meta["load_after"] = os.getloadavg()[0]
    meta["reference_seconds"] = refs
    table = markdown(rows, meta)
    print()
    print(f"SemantiCodec samplers, {meta['config']}, random weights, {meta['window']}, same x_T and condition; "
          + (f"distance to DDIM eta=0 at {args.ref_steps} steps; " if args.ref_steps else "no reference; ")
          + f"{meta['cpu']}, {args.threads} threads; "
          f"load {meta['load_before']:.1f} -> {meta['load_after']:.1f}")
    print()
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "study.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    (out / "study.md").write_text(table + "\n")
    if args.ref_steps:
        plot(rows, out / "study.png", meta)
    print(f"\nwrote {out / 'study.json'}, {out / 'study.md'}" + (f", {out / 'study.png'}" if args.ref_steps else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
