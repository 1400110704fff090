"""SemantiCodec: our implementation vs the official one, same random weights, same inputs, one run.

    /path/to/venv-with-official/bin/python benchmarks/semanticodec.py                  # rate 100, 8 x 10 s, 5 steps
    python benchmarks/semanticodec.py --rate 50 --vocab 4096 --steps 50 --clips 8 --setup my_env_shim

The official package (`semanticodec`, haoheliu/SemantiCodec-inference) must be importable by the interpreter
that runs this script; `--setup MODULE` is imported first (for environment workarounds such as the ones its
spec section 7 describes). Without it only our side runs. Nothing of the official code is in this file: it
is called through its public API (`SemantiCodec(..., checkpoint_path=DIR)`, `.encode(path)`, `.decode(tokens)`).

Steps: (1) random full-size weights are written once in the official checkpoint_path layout (DIR/encoder.ckpt,
decoder.ckpt, codebook_idx/...); (2) each side runs in its own process (one full-size model in memory at a time;
peak RSS per side): loads DIR, encodes `--clips` clips of `--seconds` s (official: one file at a time; ours:
one batch; the fastest of `--repeats` runs), decodes the first clip's first 10.24 s window at `--steps` DDIM
steps with CFG 2.0 and eta 1.0 from the same global-RNG seed (so the initial and per-step noises are the same
draws); with `--windows N` the decode timing covers the first window of N clips (ours: one batch; official: one
call each) and that first window stays the parity check; (3) prints throughput (seconds of audio per second), the ratios, peak memory, the share of identical
tokens and the decoded-wave error. Timings on a shared or loaded machine are noisy: compare ratios from the same run only.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# this file is itself named semanticodec.py: drop its folder from the path so `import semanticodec` finds the
# official package, and put the repository root first so `bench` is ours
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import numpy as np  # noqa: E402


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def best_of(repeats: int, fn):
    """Run fn `repeats` times -> ((wall s, CPU s) of the fastest run, its result): the first run pays one-off costs."""
    best, result = None, None
    for _ in range(max(1, repeats)):
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        took = (time.perf_counter() - t0, time.process_time() - c0)
        best = took if best is None or took[0] < best[0] else best
    return best, result


def clips(n: int, seconds: float, seed: int = 0) -> np.ndarray:
    """Speech-like test signals `[n, T]` at 16 kHz: gliding harmonic tones with tremolo and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    out = []
    for i in range(n):
        f0 = 120 + 40 * i + 30 * np.sin(2 * np.pi * 0.3 * t)
        x = sum(0.25 / k * np.sin(2 * np.pi * k * np.cumsum(f0) / 16000) for k in range(1, 6))
        x = x * (0.55 + 0.45 * np.sin(2 * np.pi * (2 + i) * t)) + 0.01 * rng.standard_normal(t.size)
        out.append(x.astype(np.float32))
    return np.stack(out)


def make_weights(args) -> None:
    import torch

    from bench.codecs.semanticodec.codec import SemantiCodec
    from bench.codecs.semanticodec.weights import codebook_relpath

    codec = SemantiCodec(token_rate=args.rate, vocab=args.vocab, pretrained=False, seed=args.seed)
    d = Path(args.weights)
    (d / codebook_relpath(args.rate, args.vocab)).parent.mkdir(parents=True, exist_ok=True)
    torch.save(codec.encoder.state_dict(), d / "encoder.ckpt")
    torch.save(codec.decoder.state_dict(), d / "decoder.ckpt")
    np.save(d / codebook_relpath(args.rate, args.vocab), codec.encoder.centroids.numpy())


def run_ours(args, audio: np.ndarray, out: Path) -> dict:
    import torch

    from bench.codecs.semanticodec.codec import SemantiCodec, output_samples, overlap_add

    t0 = time.perf_counter()
    codec = SemantiCodec(token_rate=args.rate, vocab=args.vocab, weights=args.weights, ddim_steps=args.steps or 50,
                         batch_size=args.batch_size, precision=args.precision)
    load_s = time.perf_counter() - t0
    x = torch.from_numpy(audio)[:, None]
    (enc_s, enc_cpu), enc = best_of(args.repeats, lambda: codec.encode(x))
    tokens = enc.codes.transpose(1, 2).numpy()  # official layout [B, N, 2]
    np.save(out / "ours_tokens.npy", tokens)
    if not args.steps:
        return {"load_s": load_s, "encode_s": enc_s, "encode_cpu": enc_cpu, "peak_mb": max_rss_mb()}
    # decode the first clip's first window: conditions, then the decoder from a seeded global RNG, as official
    w = codec.cfg.encoder.window_tokens
    tok = torch.from_numpy(tokens[0, :w])
    cond, _ = codec.conditions([tok])
    compile_s = eager = None
    if args.compile:  # eager first (warmed up, same seed), then torch.compile of the UNet, compilation timed apart
        codec.decoder.decode_windows(cond, ddim_steps=args.steps, cfg_scale=2.0, eta=1.0, precision=args.precision)
        torch.manual_seed(args.seed)
        t0 = time.perf_counter()
        eager = codec.decoder.decode_windows(cond, ddim_steps=args.steps, cfg_scale=2.0, eta=1.0, generator=None,
                                             precision=args.precision)
        eager = (time.perf_counter() - t0, eager)
        codec.decoder.compile()
        t0 = time.perf_counter()
        codec.decoder.decode_windows(cond, ddim_steps=args.steps, cfg_scale=2.0, eta=1.0, precision=args.precision)
        compile_s = time.perf_counter() - t0
    torch.manual_seed(args.seed)
    t0, c0 = time.perf_counter(), time.process_time()
    wave = codec.decoder.decode_windows(cond, ddim_steps=args.steps, cfg_scale=2.0, eta=1.0, generator=None,
                                        precision=args.precision).numpy()
    dec_s, dec_cpu = time.perf_counter() - t0, time.process_time() - c0
    if args.windows > 1:  # throughput: the first window of `windows` clips in one batch (the above: parity only)
        conds, _ = codec.conditions([torch.from_numpy(tokens[i, :w]) for i in range(args.windows)])
        gens = [torch.Generator().manual_seed(args.seed + i) for i in range(args.windows)]
        t0, c0 = time.perf_counter(), time.process_time()
        codec.decoder.decode_windows(conds, ddim_steps=args.steps, cfg_scale=2.0, eta=1.0, generator=gens,
                                     batch_size=args.windows, precision=args.precision)
        dec_s, dec_cpu = time.perf_counter() - t0, time.process_time() - c0
    if eager is not None:
        print(f"ours, decode of one window at {args.steps} steps: eager {eager[0]:.2f} s, torch.compile {dec_s:.2f} s "
              f"({eager[0] / dec_s:.2f}x; compiling took {compile_s:.1f} s); max abs diff "
              f"{np.abs(eager[1].numpy() - wave).max():.3g}", flush=True)
    wave = overlap_add(wave)[: output_samples(len(tok), args.rate)]
    np.save(out / "ours_wave.npy", wave)
    return {"load_s": load_s, "encode_s": enc_s, "decode_s": dec_s, "encode_cpu": enc_cpu, "decode_cpu": dec_cpu,
            "peak_mb": max_rss_mb()}


def run_official(args, audio: np.ndarray, out: Path) -> dict:
    import soundfile as sf
    import torch

    if args.setup:
        importlib.import_module(args.setup)
    from semanticodec import SemantiCodec as Official

    t0 = time.perf_counter()
    codec = Official(token_rate=args.rate, semantic_vocab_size=args.vocab, ddim_sample_step=args.steps,
                     cfg_scale=2.0, checkpoint_path=args.weights)
    load_s = time.perf_counter() - t0
    paths = []
    for i, a in enumerate(audio):
        p = out / f"clip{i}.wav"
        sf.write(p, a, 16000, subtype="FLOAT")
        paths.append(str(p))
    with torch.no_grad():
        (enc_s, enc_cpu), tokens = best_of(args.repeats, lambda: [codec.encode(p) for p in paths])
    tokens = torch.cat(tokens).numpy()
    np.save(out / "official_tokens.npy", tokens)
    if not args.steps:
        return {"load_s": load_s, "encode_s": enc_s, "encode_cpu": enc_cpu, "peak_mb": max_rss_mb()}
    w = int(512 / codec.stack_factor_K)
    torch.manual_seed(args.seed)
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.no_grad():  # one window at a time, as its API takes one item (the first is the parity window)
        waves = [codec.decode(torch.from_numpy(tokens[i: i + 1, :w])) for i in range(args.windows)]
    dec_s, dec_cpu = time.perf_counter() - t0, time.process_time() - c0
    wave = waves[0]
    np.save(out / "official_wave.npy", np.asarray(wave).reshape(-1))
    return {"load_s": load_s, "encode_s": enc_s, "decode_s": dec_s, "encode_cpu": enc_cpu, "decode_cpu": dec_cpu,
            "peak_mb": max_rss_mb()}


def side(args) -> None:
    out = Path(args.out)
    audio = clips(args.clips, args.seconds, args.seed)
    res = run_ours(args, audio, out) if args.side == "ours" else run_official(args, audio, out)
    (out / f"{args.side}.json").write_text(json.dumps(res))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=int, default=100, choices=(25, 50, 100))
    ap.add_argument("--vocab", type=int, default=16384, choices=(4096, 8192, 16384, 32768))
    ap.add_argument("--clips", type=int, default=8, help="clips encoded (ours: one batch)")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each clip")
    ap.add_argument("--steps", type=int, default=5,
                    help="DDIM steps for the decode comparison (official default 50; 0: encode only)")
    ap.add_argument("--windows", type=int, default=1,
                    help="10.24 s windows decoded for the decode timing (ours: one batch; at most --clips)")
    ap.add_argument("--repeats", type=int, default=3, help="encode runs per side; the fastest is reported")
    ap.add_argument("--batch-size", type=int, default=None, help="our windows per forward pass (default: all)")
    ap.add_argument("--precision", default=None, help="our decoder autocast: bf16 / fp16 (default fp32)")
    ap.add_argument("--compile", action="store_true", help="our decoder: torch.compile the UNet (warm-up untimed)")
    ap.add_argument("--setup", default=None, help="module imported before the official package")
    ap.add_argument("--weights", default=None, help="random-weight folder (created if missing; default: a temp dir)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--side", choices=("ours", "official", "weights"), help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if not 1 <= args.windows <= args.clips:
        ap.error("--windows must be between 1 and --clips")
    if args.side == "weights":
        return make_weights(args)
    if args.side:
        return side(args)

    tmp = tempfile.TemporaryDirectory(prefix="sc-bench-")
    out = Path(args.out or tmp.name)
    out.mkdir(parents=True, exist_ok=True)
    args.weights = args.weights or str(out / "weights")
    base = [sys.executable, __file__, "--rate", str(args.rate), "--vocab", str(args.vocab), "--clips",
            str(args.clips), "--seconds", str(args.seconds), "--steps", str(args.steps), "--seed", str(args.seed),
            "--repeats", str(args.repeats), "--windows", str(args.windows), "--weights", args.weights, "--out", str(out)]
    if args.batch_size:
        base += ["--batch-size", str(args.batch_size)]
    if args.precision:
        base += ["--precision", args.precision]
    if args.compile:
        base += ["--compile"]
    if args.setup:
        base += ["--setup", args.setup]
    if not (Path(args.weights) / "encoder.ckpt").exists():
        print(f"writing random full-size weights (rate {args.rate}, V {args.vocab}) to {args.weights} ...", flush=True)
        subprocess.run(base + ["--side", "weights"], check=True)
    env = dict(os.environ)
    try:
        if args.setup:
            importlib.import_module(args.setup)
        have_official = hasattr(importlib.import_module("semanticodec"), "SemantiCodec")
        if not have_official:
            print("the importable `semanticodec` has no SemantiCodec: running our side only", flush=True)
    except ImportError as err:
        print(f"official package not importable ({err}): running our side only", flush=True)
        have_official = False
    results = {}
    for name in (["official"] if have_official else []) + ["ours"]:
        print(f"running {name} ...", flush=True)
        subprocess.run(base + ["--side", name], check=True, env=env)
        results[name] = json.loads((out / f"{name}.json").read_text())

    audio_s = args.clips * args.seconds
    window_s = 10.24 * args.windows
    print(f"\nSemantiCodec rate {args.rate}, V {args.vocab}: encode {args.clips} x {args.seconds:g} s (best of "
          f"{args.repeats}); "
          f"decode {args.windows} x 10.24 s window(s) at {args.steps} DDIM steps (CFG 2.0, eta 1.0; ours batched, "
          f"official one at a time); torch threads "
          f"{__import__('torch').get_num_threads()}")
    print(f"{'':10s} {'load s':>7s} {'encode s':>9s} {'(cpu s)':>8s} {'enc xRT':>8s} {'decode s':>9s} {'(cpu s)':>8s} "
          f"{'dec xRT':>8s} {'peak MB':>8s}")
    nan = float("nan")
    for name, r in results.items():
        d, dc = r.get("decode_s", nan), r.get("decode_cpu", nan)
        print(f"{name:10s} {r['load_s']:7.1f} {r['encode_s']:9.2f} {r['encode_cpu']:8.1f} {audio_s / r['encode_s']:8.2f} "
              f"{d:9.2f} {dc:8.1f} {window_s / d:8.3f} {r['peak_mb']:8.0f}")
    if have_official:
        o, u = results["official"], results["ours"]
        print(f"ratio ours/official throughput (wall): encode {o['encode_s'] / u['encode_s']:.2f}x, "
              f"decode {o.get('decode_s', nan) / u.get('decode_s', nan):.2f}x; by CPU time: encode "
              f"{o['encode_cpu'] / u['encode_cpu']:.2f}x, decode {o.get('decode_cpu', nan) / u.get('decode_cpu', nan):.2f}x; "
              f"peak memory {u['peak_mb'] / o['peak_mb']:.2f}x")
        to, tu = np.load(out / "official_tokens.npy"), np.load(out / "ours_tokens.npy")
        same = (to == tu[:, : to.shape[1]]).mean(axis=(0, 1)) if to.shape == tu.shape else None
        print(f"tokens: official {to.shape}, ours {tu.shape}; identical: "
              + ("shape differs" if same is None else f"semantic {same[0]:.4%}, acoustic {same[1]:.4%}"))
        if not args.steps:
            return
        wo, wu = np.load(out / "official_wave.npy"), np.load(out / "ours_wave.npy")
        n = min(len(wo), len(wu))
        print(f"decoded window: {len(wo)} vs {len(wu)} samples; max abs diff {np.abs(wo[:n] - wu[:n]).max():.3g} "
              f"(peak {np.abs(wo).max():.3g})")
    print("Timings on a loaded machine are unreliable (CPU seconds less so); compare ratios from one run.")


if __name__ == "__main__":
    main()
