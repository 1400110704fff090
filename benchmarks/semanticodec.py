"""SemantiCodec: our implementation vs the official one, same random weights, same inputs, cold and warm.

    /path/to/venv-with-official/bin/python benchmarks/semanticodec.py                  # rate 100, 8 x 10 s, 5 steps
    python benchmarks/semanticodec.py --rate 100 --clips 8 --steps 50 --repeats 3 --setup my_env_shim

The official package (`semanticodec`, haoheliu/SemantiCodec-inference) must be importable by the interpreter
that runs this script; `--setup MODULE` is imported first (for environment workarounds such as the ones its
spec section 7 describes). Without it only our side runs. Nothing of the official code is in this file: it
is called through its public API (`SemantiCodec(..., checkpoint_path=DIR)`, `.encode(path)`, `.decode(tokens)`).

Steps: (1) random full-size weights are written once in the official checkpoint_path layout (DIR/encoder.ckpt,
decoder.ckpt, codebook_idx/...); (2) each side runs in its own fresh process (one full-size model in memory at a
time; peak RSS per side): loads DIR, encodes `--clips` clips of `--seconds` s `--repeats` times, then decodes
`--repeats` times the first clip's first 10.24 s window at `--steps` DDIM steps with CFG 2.0 and eta 1.0 from the
same global-RNG seed (so the initial and per-step noises are the same draws on both sides); with `--windows N`
the decode timing covers the first window of N clips (ours: one batch; official: one call each) and the first
window is decoded once more, untimed, as the parity check. (3) prints, for encode and decode separately, the
COLD figure (the first call in the fresh process: it pays every one-off cost - weight packing, kernel creation,
first touch of fresh memory) and the WARM figure (the fastest of the later calls), as wall s, CPU s and minor
page faults, the ratios, peak memory, the share of identical tokens and the decoded-wave error.

What each side is fed: ours takes the clips as one in-memory float32 tensor `[clips, 1, T]` (one batch of
windows); the official API takes a file path per clip, so each clip is written once as a float WAV and, by
default (`--official-feed memory`), the official `torchaudio.load` call is answered from memory with the
already-read array (no disk or WAV decoding in its timing; `--official-feed file` reads the file each time).
Timings on a shared or loaded machine are noisy: compare ratios from the same run only; the load average is
printed beside each side.

`--profile` finds one-off costs: our cold encode runs under cProfile (top functions by own time) and our side
runs with ONEDNN_VERBOSE=profile_create (every oneDNN primitive it creates, with its creation time). On a GPU:
`--device cuda` (ours; the official code takes a visible GPU by itself, and with `--device cpu` both sides run
with CUDA hidden), `--precision bf16`, `--compile [--compile-mode reduce-overhead]` (CUDA graphs), `--windows N`
(a batch of N windows); timings synchronise CUDA and the peak GPU memory is printed.
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
from bench.machine import cpu_model  # noqa: E402

import numpy as np


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_gpu_mb() -> float | None:
    """Peak CUDA memory allocated by this process (MiB), None without CUDA."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return torch.cuda.max_memory_allocated() / 2**20
    return None


def load_average() -> float:
    """1-minute load average (how busy the machine was), NaN where unavailable."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def _sync() -> None:
    """Wait for queued GPU work, so a timing covers it (no-op without CUDA)."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def timed(fn) -> tuple[dict, object]:
    """Run fn once -> ({wall, cpu (process CPU s, all threads), faults (minor page faults)}, its result).
    On CUDA the clock stops after the GPU has finished (synchronised before and after)."""
    _sync()
    r0, t0, c0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter(), time.process_time()
    result = fn()
    _sync()
    took = {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0,
            "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0.ru_minflt}
    return took, result


def cold_warm(repeats: int, fn, before=None) -> tuple[dict, object]:
    """Call fn `repeats` times -> ({"cold": the first call, "warm": the fastest later call or None}, first result).

    `before` (untimed) runs before every call, e.g. re-seeding the global RNG."""
    runs, first = [], None
    for i in range(max(1, repeats)):
        if before is not None:
            before()
        took, result = timed(fn)
        runs.append(took)
        first = result if i == 0 else first
    warm = min(runs[1:], key=lambda r: r["wall"]) if len(runs) > 1 else None
    return {"cold": runs[0], "warm": warm, "runs": len(runs)}, first


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


def profiled_first(fn, out: Path, enabled: bool):
    """fn, whose first call (the cold one) runs under cProfile when `enabled` (stats in out/ours_cold_encode.prof)."""
    if not enabled:
        return fn
    import cProfile

    calls = []

    def wrapper():
        calls.append(1)
        if len(calls) > 1:
            return fn()
        prof = cProfile.Profile()
        prof.enable()
        try:
            return fn()
        finally:
            prof.disable()
            prof.dump_stats(out / "ours_cold_encode.prof")

    return wrapper


def profile_summary(out: Path) -> None:
    """Where our cold encode spent its time: the top Python functions (cProfile, by own time) and the oneDNN
    primitives created (ONEDNN_VERBOSE=profile_create lines of our side's output: count and milliseconds)."""
    import pstats

    prof = out / "ours_cold_encode.prof"
    if prof.exists():
        print("\nours, cold encode under cProfile (top 15 by own time; profiling slows it):")
        pstats.Stats(str(prof)).sort_stats("tottime").print_stats(15)
    log = out / "ours_stdout.txt"
    created = []
    for line in (log.read_text(errors="replace").splitlines() if log.exists() else []):
        parts = line.split(",")
        if line.startswith("onednn_verbose") and any(p.startswith("create:") for p in parts):
            try:
                created.append((float(parts[-1]), next(p for p in parts if p.startswith("create:")), line))
            except ValueError:
                continue
    if created:
        kinds = {}
        for ms, kind, _ in created:
            n, total = kinds.get(kind, (0, 0.0))
            kinds[kind] = (n + 1, total + ms)
        print("oneDNN primitive creation in our process (all phases): " + ", ".join(
            f"{kind} {n} primitives, {total / 1000:.2f} s" for kind, (n, total) in kinds.items()))
        for ms, _, line in sorted(created, reverse=True)[:5]:
            print(f"  {ms:9.1f} ms  {line[:160]}")
    elif log.exists():
        print("no oneDNN primitive-creation lines in our side's output (ONEDNN_VERBOSE unsupported by this build?)")


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

    from bench.codecs.semanticodec.codec import (
        SemantiCodec,
        output_samples,
        overlap_add,
    )

    t0 = time.perf_counter()
    codec = SemantiCodec(token_rate=args.rate, vocab=args.vocab, weights=args.weights, ddim_steps=args.steps or 50,
                         batch_size=args.batch_size, precision=args.precision, device=args.device)
    res = {"load_s": time.perf_counter() - t0, "load": load_average()}
    x = torch.from_numpy(audio)[:, None]
    res["encode"], enc = cold_warm(args.repeats, profiled_first(lambda: codec.encode(x), out, args.profile))
    tokens = enc.codes.transpose(1, 2).cpu().numpy()  # official layout [B, N, 2]
    np.save(out / "ours_tokens.npy", tokens)
    if not args.steps:
        return res | {"peak_mb": max_rss_mb()}
    # decode: the first window of the first `windows` clips; conditions first, then the decoder from a seeded global RNG
    w = codec.cfg.encoder.window_tokens
    tok = torch.from_numpy(tokens[0, :w])
    cond, _ = codec.conditions([tok])
    seed = lambda: torch.manual_seed(args.seed)  # seeds CUDA's generators too

    def parity():
        return codec.decoder.decode_windows(cond, ddim_steps=args.steps, cfg_scale=2.0, eta=1.0, generator=None,
                                            precision=args.precision)

    if args.compile:  # eager first (same seed), then torch.compile of the UNet: its first call (compiling) timed apart
        seed()
        eager = timed(parity)
        codec.decoder.compile(**({"mode": args.compile_mode} if args.compile_mode else {}))
        res["compile_s"] = timed(parity)[0]["wall"]
        res["eager_decode_s"] = eager[0]["wall"]
    if args.windows > 1:  # throughput: the first window of `windows` clips in one batch; parity decoded afterwards
        conds, _ = codec.conditions([torch.from_numpy(tokens[i, :w]) for i in range(args.windows)])
        gens = lambda: [torch.Generator(device=codec.device).manual_seed(args.seed + i) for i in range(args.windows)]
        res["decode"], _ = cold_warm(args.repeats, lambda: codec.decoder.decode_windows(
            conds, ddim_steps=args.steps, cfg_scale=2.0, eta=1.0, generator=gens(), batch_size=args.windows,
            precision=args.precision))
        seed()
        wave = parity()
    else:
        res["decode"], wave = cold_warm(args.repeats, parity, before=seed)
    if args.compile:
        print(f"ours, decode of one window at {args.steps} steps: eager {res['eager_decode_s']:.2f} s, torch.compile "
              f"{res['decode']['cold']['wall']:.2f} s (compiling took {res['compile_s']:.1f} s); max abs diff "
              f"{np.abs(eager[1].cpu().numpy() - wave.cpu().numpy()).max():.3g}", flush=True)
    wave = overlap_add(wave.cpu().numpy())[: output_samples(len(tok), args.rate)]
    np.save(out / "ours_wave.npy", wave)
    return res | {"peak_mb": max_rss_mb(), "peak_gpu_mb": peak_gpu_mb()}


def run_official(args, audio: np.ndarray, out: Path) -> dict:
    import soundfile as sf
    import torch

    if args.setup:
        importlib.import_module(args.setup)
    import semanticodec.main as official_main
    from semanticodec import SemantiCodec as Official

    t0 = time.perf_counter()
    codec = Official(token_rate=args.rate, semantic_vocab_size=args.vocab, ddim_sample_step=args.steps or 50,
                     cfg_scale=2.0, checkpoint_path=args.weights)
    res = {"load_s": time.perf_counter() - t0, "load": load_average()}
    paths = []
    for i, a in enumerate(audio):
        p = out / f"clip{i}.wav"
        sf.write(p, a, 16000, subtype="FLOAT")
        paths.append(str(p))
    if args.official_feed == "memory":  # answer its torchaudio.load from memory: the same array ours gets
        in_memory = {p: (torch.from_numpy(sf.read(p, dtype="float32")[0][None].copy()), 16000) for p in paths}
        file_load = official_main.torchaudio.load
        official_main.torchaudio.load = lambda p, *a, **k: (
            (in_memory[p][0].clone(), in_memory[p][1]) if p in in_memory else file_load(p, *a, **k))
    with torch.no_grad():
        res["encode"], tokens = cold_warm(args.repeats, lambda: [codec.encode(p) for p in paths])
    tokens = torch.cat(tokens).numpy()
    np.save(out / "official_tokens.npy", tokens)
    if not args.steps:
        return res | {"peak_mb": max_rss_mb()}
    w = int(512 / codec.stack_factor_K)

    def decode():  # one window at a time, as its API takes one item (the first is the parity window)
        with torch.no_grad():
            return [codec.decode(torch.from_numpy(tokens[i: i + 1, :w])) for i in range(args.windows)]

    res["decode"], waves = cold_warm(args.repeats, decode, before=lambda: torch.manual_seed(args.seed))
    np.save(out / "official_wave.npy", np.asarray(waves[0]).reshape(-1))
    return res | {"peak_mb": max_rss_mb(), "peak_gpu_mb": peak_gpu_mb(), "device": str(codec.device)}


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
    ap.add_argument("--repeats", type=int, default=3,
                    help="encode and decode calls per side: the first is reported as cold, the fastest later one as warm")
    ap.add_argument("--official-feed", choices=("memory", "file"), default="memory",
                    help="official encode input: its torchaudio.load answered from memory (default) or the WAV file")
    ap.add_argument("--batch-size", type=int, default=None, help="our windows per forward pass (default: all)")
    ap.add_argument("--precision", default=None, help="our decoder autocast: bf16 / fp16 (default fp32)")
    ap.add_argument("--compile", action="store_true", help="our decoder: torch.compile the UNet (warm-up untimed)")
    ap.add_argument("--compile-mode", default=None,
                    help="torch.compile mode with --compile: reduce-overhead (CUDA graphs), max-autotune")
    ap.add_argument("--device", default="cpu",
                    help="ours: cpu or cuda. The official code takes CUDA whenever it sees a GPU, so with --device "
                         "cpu on a GPU machine both sides run with CUDA_VISIBLE_DEVICES hidden")
    ap.add_argument("--profile", action="store_true",
                    help="profile our cold encode (cProfile) and list the oneDNN primitives our side creates")
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
            "--repeats", str(args.repeats), "--windows", str(args.windows), "--official-feed", args.official_feed,
            "--weights", args.weights, "--out", str(out), "--device", args.device]
    if args.batch_size:
        base += ["--batch-size", str(args.batch_size)]
    if args.precision:
        base += ["--precision", args.precision]
    if args.compile:
        base += ["--compile"] + (["--compile-mode", args.compile_mode] if args.compile_mode else [])
    if args.setup:
        base += ["--setup", args.setup]
    if not (Path(args.weights) / "encoder.ckpt").exists():
        print(f"writing random full-size weights (rate {args.rate}, V {args.vocab}) to {args.weights} ...", flush=True)
        subprocess.run(base + ["--side", "weights"], check=True)
    env = dict(os.environ)
    if args.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""  # the official side would take a visible GPU on its own
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
        if name == "ours" and args.profile:  # oneDNN says what it creates and how long each took
            with open(out / "ours_stdout.txt", "w") as log:
                subprocess.run(base + ["--side", name, "--profile"], check=True,
                               env={**env, "ONEDNN_VERBOSE": "profile_create"}, stdout=log)
        else:
            subprocess.run(base + ["--side", name], check=True, env=env)
        results[name] = json.loads((out / f"{name}.json").read_text())

    report(args, results, out)
    if args.profile:
        profile_summary(out)


def _sysfs(name: str) -> str:
    """The selected value of /sys/kernel/mm/transparent_hugepage/<name> ('madvise'), or 'unknown'."""
    try:
        text = Path(f"/sys/kernel/mm/transparent_hugepage/{name}").read_text()
    except OSError:
        return "unknown"
    chosen = [w.strip("[]") for w in text.split() if w.startswith("[")]
    return chosen[0] if chosen else text.strip()


def report(args, results: dict, out: Path) -> None:
    import torch

    nan = float("nan")
    audio_s, window_s = args.clips * args.seconds, 10.24 * args.windows
    print(f"\nSemantiCodec rate {args.rate}, V {args.vocab}, random full-size weights; CPU {cpu_model()} "
          f"({os.cpu_count()} logical CPUs), torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{'fp32' if not args.precision else args.precision}")
    print(f"transparent huge pages: enabled {_sysfs('enabled')}, defrag {_sysfs('defrag')} (the kernel's handling of "
          "large allocations; a cold-start suspect on machines where the first touch of memory is slow)")
    print(f"encode: {args.clips} x {args.seconds:g} s (ours: one in-memory batch of {args.clips} items, "
          f"{args.batch_size or 16} windows per pass; official: one call per clip, audio from "
          f"{'memory' if args.official_feed == 'memory' else 'WAV files'}); decode: {args.windows} x 10.24 s "
          f"window(s) at {args.steps} DDIM steps, CFG 2.0, eta 1.0 (ours batched, official one at a time); "
          f"{args.repeats} calls each: cold = the first call in a fresh process, warm = the fastest later call")
    print(f"{'':9s} {'load s':>6s} {'phase':7s} {'cold s':>7s} {'(cpu s)':>8s} {'faults':>8s} {'warm s':>7s} "
          f"{'(cpu s)':>8s} {'faults':>8s} {'warm xRT':>8s} {'peak MB':>8s} {'load avg':>8s}")
    for name, r in results.items():
        for phase, secs in (("encode", audio_s), ("decode", window_s)):
            if phase not in r:
                continue
            c, w = r[phase]["cold"], r[phase]["warm"] or {"wall": nan, "cpu": nan, "faults": nan}
            print(f"{name if phase == 'encode' else '':9s} {r['load_s'] if phase == 'encode' else nan:6.1f} "
                  f"{phase:7s} {c['wall']:7.2f} {c['cpu']:8.1f} {c['faults']:8.0f} {w['wall']:7.2f} {w['cpu']:8.1f} "
                  f"{w['faults']:8.0f} {secs / w['wall']:8.3f} {r['peak_mb'] if phase == 'encode' else nan:8.0f} "
                  f"{r['load'] if phase == 'encode' else nan:8.2f}")
    for name, r in results.items():
        gpu = f", peak GPU memory {r['peak_gpu_mb']:.0f} MiB" if r.get("peak_gpu_mb") is not None else ""
        where = r.get("device") or args.device
        if where.startswith("cuda") and torch.cuda.is_available():
            where += f" ({torch.cuda.get_device_name()})"
        print(f"{name}: device {where}{gpu}")
    for name, r in results.items():
        e = r["encode"]
        if e["warm"]:
            print(f"{name}: one-off encode cost (cold - warm): {e['cold']['wall'] - e['warm']['wall']:.1f} s wall, "
                  f"{e['cold']['cpu'] - e['warm']['cpu']:.1f} CPU s")
    if "official" in results:
        o, u = results["official"], results["ours"]
        for kind in ("cold", "warm"):
            parts = []
            for phase in ("encode", "decode"):
                if phase in o and phase in u and o[phase][kind] and u[phase][kind]:
                    oo, uu = o[phase][kind], u[phase][kind]
                    parts.append(f"{phase} {oo['wall'] / uu['wall']:.2f}x wall ({oo['cpu'] / uu['cpu']:.2f}x CPU)")
            if parts:
                print(f"ratio official time / ours, {kind}: " + ", ".join(parts))
        print(f"peak memory ours / official {u['peak_mb'] / o['peak_mb']:.2f}x")
        to, tu = np.load(out / "official_tokens.npy"), np.load(out / "ours_tokens.npy")
        same = (to == tu[:, : to.shape[1]]).mean(axis=(0, 1)) if to.shape == tu.shape else None
        print(f"tokens: official {to.shape}, ours {tu.shape}; identical: "
              + ("shape differs" if same is None else f"semantic {same[0]:.4%}, acoustic {same[1]:.4%}"))
        if args.steps:
            wo, wu = np.load(out / "official_wave.npy"), np.load(out / "ours_wave.npy")
            n = min(len(wo), len(wu))
            print(f"decoded window: {len(wo)} vs {len(wu)} samples; max abs diff {np.abs(wo[:n] - wu[:n]).max():.3g} "
                  f"(peak {np.abs(wo).max():.3g})")
    print("Timings on a loaded machine are unreliable (CPU seconds less so); compare ratios from one run.")


if __name__ == "__main__":
    main()
