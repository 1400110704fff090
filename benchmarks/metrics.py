"""Metric throughput: seconds of audio scored per CPU second, on 10 s clips, cold and warm.

    python benchmarks/metrics.py                     # every registered item-level metric
    python benchmarks/metrics.py --metric visqol --metric wer --repeats 5

Each metric runs in fresh processes (so "cold" really is the first call):

- cold, empty cache: import + model load + first score with an empty numba cache (ViSQOL's one-time JIT compile);
- cold: the same with the persistent cache in place (what every later `bench run` worker pays once);
- warm: the median of `--repeats` further scores in the second process.

CPU seconds are the process's user+system time over all its threads (numba, CTranslate2 and BLAS threads
included), so the figure is comparable across metrics on a loaded machine; wall time is shown too. Speech metrics
score a 10 s speech clip (shipped demo sentences joined, else a synthetic voice), the others a 10 s music clip
(shipped demo music, else a synthetic harmonic tone), each against a 4 kHz low-passed, slightly noisy copy.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without `pip install -e .`

SECONDS = 10.0


def _synthetic(sr: int, seconds: float, voiced: bool) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    phase = 2 * np.pi * np.cumsum(120 + 40 * np.sin(2 * np.pi * 0.5 * t)) / sr
    top = 4000 if voiced else sr / 2
    x = sum(np.sin(k * phase) / k**0.7 for k in range(1, 400) if k * 160 < top)
    x = x * np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None) ** 0.5
    return (0.3 * x / np.abs(x).max()).astype(np.float32)[None]


def make_clips(folder: Path) -> dict[str, dict]:
    """Write the speech and music reference/degraded pairs as WAV; returns {domain: {ref, deg, sr, text}}."""
    from scipy.signal import butter, sosfiltfilt

    from bench import audio as au

    clips: dict[str, dict] = {}
    speech, text, sr = None, "", 16000
    try:
        from bench.tasks.demo import DemoSpeech

        parts, words = [], []
        for item in DemoSpeech().items():
            if not item.text:
                continue
            audio, item_sr = item.load()
            parts.append(au.to_channels(au.resample(audio, item_sr, sr), 1))
            words.append(item.text)
            if sum(p.shape[-1] for p in parts) >= SECONDS * sr:
                break
        if parts and sum(p.shape[-1] for p in parts) >= SECONDS * sr:
            speech, text = np.concatenate(parts, axis=1)[:, : int(SECONDS * sr)], " ".join(words)
    except Exception:  # noqa: BLE001 - no corpus: synthetic
        speech = None
    if speech is None:
        speech, text = _synthetic(sr, SECONDS, voiced=True), "synthetic voice"
    music, msr = None, 48000
    try:
        from bench.tasks.demo import DemoMusic

        for item in DemoMusic().items():
            audio, item_sr = item.load()
            if audio.shape[-1] >= SECONDS * item_sr:
                music = au.to_channels(au.resample(audio, item_sr, msr), 1)[:, : int(SECONDS * msr)]
                break
    except Exception:  # noqa: BLE001
        music = None
    if music is None:
        music = _synthetic(msr, SECONDS, voiced=False)
    rng = np.random.default_rng(0)
    for domain, ref, rate in (("speech", speech, sr), ("music", music, msr)):
        deg = sosfiltfilt(butter(8, 4000, fs=rate, output="sos"), ref) + 0.003 * rng.standard_normal(ref.shape)
        paths = {k: folder / f"{domain}-{k}.wav" for k in ("ref", "deg")}
        au.save(paths["ref"], ref, rate, subtype="FLOAT")
        au.save(paths["deg"], deg.astype(np.float32), rate, subtype="FLOAT")
        clips[domain] = {"ref": str(paths["ref"]), "deg": str(paths["deg"]), "sr": rate, "text": text,
                         "domain": domain}
    return clips


def child(spec: str, clip: dict, repeats: int) -> dict:
    """Runs in a fresh process: time import+load+first score, then `repeats` warm scores."""
    c0, w0 = time.process_time(), time.perf_counter()
    from bench import audio as au
    from bench.metrics import load_metric
    from bench.tasks.base import Item

    ref, sr = au.load(clip["ref"])
    deg, _ = au.load(clip["deg"])
    item = Item(id="bench", domain=clip["domain"], text=clip["text"])
    metric = load_metric(spec)
    rate = metric.rate_for_item(item) if hasattr(metric, "rate_for_item") else metric.rate_for(sr)
    # the runner hands metrics audio at their own rate: resample outside the timed region, as it does
    ref, deg = au.resample(ref, sr, rate), au.resample(deg, sr, rate)
    value = metric.score(ref, deg, rate, item=item)
    cold_cpu, cold_wall = time.process_time() - c0, time.perf_counter() - w0
    warm_cpu, warm_wall = [], []
    for _ in range(repeats):
        c, w = time.process_time(), time.perf_counter()
        metric.score(ref, deg, rate, item=item)
        warm_cpu.append(time.process_time() - c)
        warm_wall.append(time.perf_counter() - w)
    return {"cold_cpu": cold_cpu, "cold_wall": cold_wall,
            "warm_cpu": float(np.median(warm_cpu)) if warm_cpu else float("nan"),
            "warm_wall": float(np.median(warm_wall)) if warm_wall else float("nan"),
            "value": float(value[metric.key]), "key": metric.key, "rate": rate}


def run_child(spec: str, clip: dict, repeats: int, env: dict) -> dict:
    cmd = [sys.executable, __file__, "--child", spec, "--clip", json.dumps(clip), "--repeats", str(repeats)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode or not lines:
        tail = (out.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": tail[:120]}
    return json.loads(lines[-1])


def default_specs() -> list[str]:
    from bench.metrics import METRICS

    specs = []
    for entry in METRICS.entries():
        if entry.meta.get("level", "item") != "item":
            continue
        if entry.name == "visqol":
            specs += ["visqol:mode=speech", "visqol:mode=audio"]
        elif entry.name == "pesq":
            specs += ["pesq", "pesq:band=nb"]
        else:
            specs.append(entry.name)
    return specs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--metric", action="append", help="metric spec (repeatable); default: all item metrics")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--clip", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, json.loads(args.clip), args.repeats)))
        return

    from bench.metrics import load_metric

    specs = args.metric or default_specs()
    with tempfile.TemporaryDirectory() as tmp:
        clips = make_clips(Path(tmp))
        rows = []
        for spec in specs:
            try:
                meta = load_metric(spec).meta
                speechy = "speech" in meta.domains or spec.endswith("mode=speech")
            except Exception as err:  # noqa: BLE001
                rows.append((spec, {"error": str(err)[:120]}, {}))
                continue
            clip = clips["speech" if speechy else "music"]
            env_empty = {**os.environ, "NUMBA_CACHE_DIR": str(Path(tmp) / f"numba-{len(rows)}")}
            first = run_child(spec, clip, 0, env_empty)
            second = run_child(spec, clip, args.repeats, dict(os.environ))
            rows.append((spec, first, second))

    print(f"\nMetric throughput on {SECONDS:g} s clips: seconds of audio per CPU second (higher is faster); "
          f"CPU s and wall s per clip in brackets. {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} at the end.\n")
    head = ["metric", "value", "cold, empty numba cache", "cold", "warm"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))

    def cell(cpu: float, wall: float) -> str:
        return f"{SECONDS / cpu:.1f} ({cpu:.2f} / {wall:.2f})" if cpu == cpu and cpu > 0 else "-"

    for spec, first, second in rows:
        if "error" in first or "error" in second:
            print(f"| {spec} | failed: {first.get('error') or second.get('error')} | | | |")
            continue
        print(f"| {spec} | {second['key']}={second['value']:.3f} @ {second['rate'] // 1000} kHz "
              f"| {cell(first['cold_cpu'], first['cold_wall'])} | {cell(second['cold_cpu'], second['cold_wall'])} "
              f"| {cell(second['warm_cpu'], second['warm_wall'])} |")


if __name__ == "__main__":
    main()
