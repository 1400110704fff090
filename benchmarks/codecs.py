"""Real-time factor and peak memory of the neural codecs (Encodec, DAC, Mimi, X-Codec, X-Codec2, NeuCodec, WavTokenizer,
Higgs) per operating point.

    python benchmarks/codecs.py                      # CPU, full-size random-weight models, 5 s clips
    python benchmarks/codecs.py --all --seconds 10   # every operating point (DAC has 53)
    python benchmarks/codecs.py --long 60,120        # peak memory of long files: flat when chunking works
    python benchmarks/codecs.py --only mimi,xcodec,xcodec2 --tiny   # the zoo's wiring, tests' tiny configs

Random weights cost the same time as trained ones (same shapes). RTF = processing seconds / audio seconds
(< 1 is faster than real time). Peak memory is the process's resident-set high-water mark above its level
once the model and clip are loaded (each point runs in a fresh process). "vs port" is our wrapper's time over
a direct call of the transformers model on the same clip (the reference): ~1.0 means the wrapper adds nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench.codecs.dac import DAC  # noqa: E402
from bench.codecs.encodec import Encodec  # noqa: E402
from bench.codecs.mimi import Mimi  # noqa: E402
from bench.codecs.xcodec import XCodec  # noqa: E402
from bench.codecs.xcodec2 import XCodec2  # noqa: E402
from bench.codecs.higgs import Higgs  # noqa: E402
from bench.codecs.neucodec import NeuCodec  # noqa: E402
from bench.codecs.wavtokenizer import WavTokenizer  # noqa: E402

CLASSES = {c.name: c for c in (Encodec, DAC, Mimi, XCodec, XCodec2, NeuCodec, WavTokenizer, Higgs)}


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def reference_seconds(codec, x: torch.Tensor) -> float:
    """Encode + decode with the transformers model called directly (no chunking, no wrapper)."""
    m = codec.model
    t0 = time.perf_counter()
    with torch.inference_mode():
        if isinstance(codec, Encodec):
            enc = m.encode(x, bandwidth=codec.bandwidth)
            m.decode(enc.audio_codes, enc.audio_scales, last_frame_pad_length=enc.last_frame_pad_length)
        elif isinstance(codec, Mimi):
            m.decode(m.encode(x, num_quantizers=codec.n_codebooks).audio_codes)
        elif isinstance(codec, XCodec):
            pad = (-x.shape[-1]) % codec.hop
            m.decode(m.encode(torch.nn.functional.pad(x, (0, pad)), bandwidth=codec.bandwidth, return_dict=False))
        elif isinstance(codec, XCodec2):  # the semantic features are part of the reference's work too
            values, feats = codec.inputs(x)
            mask = torch.ones(feats.shape[:2], dtype=torch.long)
            m.decode(audio_codes=m.encode(values, feats, input_features_mask=mask).audio_codes)
        elif isinstance(codec, NeuCodec):  # features included, as the reference's feature extractor computes them
            values, feats = codec._inputs(x)
            m.decode(audio_codes=m.encode(values, input_features=feats).audio_codes)
        elif isinstance(codec, WavTokenizer):
            m.decode(m.encode(x).audio_codes)
        elif isinstance(codec, Higgs):  # the full quantizer, as the model's encode runs it
            pad = (-x.shape[-1]) % codec.hop
            m.decode(m.encode(torch.nn.functional.pad(x, (0, pad)), return_dict=False)[:, : codec.n_codebooks],
                     return_dict=False)
        else:
            pad = (-x.shape[-1]) % codec.hop
            enc = m.encode(torch.nn.functional.pad(x, (0, pad)), n_quantizers=codec.n_codebooks)
            m.decode(audio_codes=enc.audio_codes)
    return time.perf_counter() - t0


def points(all_points: bool) -> list[tuple[str, dict, str]]:
    """(codec name, options, label) to measure: every point with --all, else each variant's ends and middle."""
    chosen = []
    for cls in CLASSES.values():
        by_variant: dict = {}
        for p in cls.operating_points():
            by_variant.setdefault(p.options.get("sample_rate", p.options.get("variant")), []).append(p)
        for pts in by_variant.values():
            keep = pts if all_points or len(pts) <= 5 else [pts[0], pts[len(pts) // 2], pts[-1]]
            chosen += [(cls.name, p.options, p.label) for p in keep]
    return chosen


def child(job: dict) -> dict:
    """One measurement in a fresh process, so that the RSS high-water mark belongs to this clip alone."""
    if job.get("threads"):
        torch.set_num_threads(job["threads"])
    cls = CLASSES[job["codec"]]
    codec = cls(pretrained=False, device=job["device"], tiny=job.get("tiny", False), **job["options"])
    sr, ch, seconds = codec.meta.sample_rate, codec.meta.channels, job["seconds"]
    x = 0.1 * torch.randn(1, ch, int(seconds * sr), generator=torch.Generator().manual_seed(0))
    codec.decode(codec.encode(x[..., : sr // 4]))  # warm-up on 0.25 s (kernels, allocator)
    base = rss_mb()  # the model and the clip are loaded: what follows is the work's own memory
    t_enc, t_dec, peak = [], [], None
    for _ in range(job.get("repeats", 1)):  # the fastest of N: other load on the machine only slows runs down
        t0 = time.perf_counter()
        enc = codec.encode(x)
        t1 = time.perf_counter()
        codec.decode(enc)
        t_enc.append(t1 - t0)
        t_dec.append(time.perf_counter() - t1)
        peak = max_rss_mb() - base if peak is None else peak
    row = {"codec": job["label"], "seconds": seconds, "kbps": enc.kbps, "enc_rtf": min(t_enc) / seconds,
           "dec_rtf": min(t_dec) / seconds, "peak_mb": peak, "vs_port": None}
    if job.get("reference"):
        ref = min(reference_seconds(codec, x) for _ in range(job.get("repeats", 1)))
        row["vs_port"] = (min(t_enc) + min(t_dec)) / ref
    return row


def spawn(job: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(job)], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{job['label']}: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def print_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> None:
    head = [c[1] for c in columns]
    body = [[("-" if r[k] is None else format(r[k], f)) for k, _, f in columns] for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for b in body:
        print("| " + " | ".join(v.ljust(w) for v, w in zip(b, widths)) + " |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="clip length per operating point")
    ap.add_argument("--all", action="store_true", help="every operating point (default: ends and middle)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--repeats", type=int, default=3, help="timings are the fastest of this many runs")
    ap.add_argument("--no-reference", action="store_true", help="skip the direct transformers timing")
    ap.add_argument("--long", default="", help="comma-separated long clip lengths in seconds, e.g. 60,120")
    ap.add_argument("--only", default="", help="comma-separated codec names to measure (" + ", ".join(CLASSES) + ")")
    ap.add_argument("--tiny", action="store_true", help="the tests' tiny random configurations (wiring, not speed)")
    ap.add_argument("--json", help="also write the rows here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    only = set(filter(None, args.only.split(",")))
    print(f"# torch {torch.__version__}, device {args.device}, {args.threads or torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; clips of {args.seconds:g} s, fastest of "
          f"{args.repeats}; {'TINY' if args.tiny else 'full-size'} models, random weights")
    common = {"device": args.device, "threads": args.threads, "repeats": args.repeats, "tiny": args.tiny}
    rows = [spawn({**common, "codec": name, "options": opts, "label": label, "seconds": args.seconds,
                   "reference": not args.no_reference})
            for name, opts, label in points(args.all) if not only or name in only]
    print_table(rows, [("codec", "operating point", "s"), ("kbps", "measured kbps", ".3f"),
                       ("enc_rtf", "encode RTF", ".3f"), ("dec_rtf", "decode RTF", ".3f"),
                       ("peak_mb", "peak MiB", ".0f"), ("vs_port", "vs port", ".2f")])
    long_rows = []
    if args.long:
        heavy = [("encodec", {"sample_rate": 24000, "bandwidth": 24.0}, "encodec 24kHz 24 kbps"),
                 ("dac", {"sample_rate": 16000, "n_codebooks": 12}, "dac 16kHz 6 kbps")]
        for name, opts, label in heavy:
            if only and name not in only:
                continue
            for seconds in [float(v) for v in args.long.split(",")]:
                long_rows.append(spawn({**common, "repeats": 1, "codec": name, "options": opts, "label": label,
                                        "seconds": seconds, "reference": False}))
        print()
        print_table(long_rows, [("codec", "long clip", "s"), ("seconds", "seconds", ".0f"),
                                ("enc_rtf", "encode RTF", ".3f"), ("dec_rtf", "decode RTF", ".3f"),
                                ("peak_mb", "peak MiB", ".0f")])
    if args.json:
        Path(args.json).write_text(json.dumps({"points": rows, "long": long_rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
