"""Coding speed: per codec row and task, the encode and decode seconds per second of audio, from each item's
`encodes` row, with the machine they were timed on; and each metric against decode time (`*_vs_decode_time`
plots: the speed-quality trade-off of a sweep, e.g. SemantiCodec's samplers and step counts).

Timings are what the run that first coded an item measured (a cached output keeps its original timing); a
batch's time is shared among its items in proportion to length (bench/coding.py). Each row's `timed_on`
(bench/machine.py `timing_context`: CPU model, device, threads, batch, load average) says where: rows timed on
other machines, or with the CPUs busy with other work, are marked, since their times do not compare.

Columns of `speed_frame`: codec (label), name, task, items, timed (items with an encode time), audio_s,
encode_s, decode_s, encode_rtf and decode_rtf (seconds per second of audio; lower is faster), timed_on (one
line), busy (the load average exceeded the logical CPUs while timing), random_weights, fingerprint.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from bench.reports.frame import _json
from bench.store import REFERENCE, ResultStore

COLUMNS = ["codec", "name", "task", "items", "timed", "audio_s", "encode_s", "decode_s", "encode_rtf",
           "decode_rtf", "timed_on", "busy", "random_weights", "fingerprint"]


def _describe(ctx: dict) -> str:
    """'AMD EPYC, cpu, 2 threads, batch 8' (the GPU's name instead of the CPU's on CUDA)."""
    if not ctx:
        return "not recorded"
    where = ctx.get("gpu") if ctx.get("device") == "cuda" and ctx.get("gpu") else ctx.get("cpu", "?")
    parts = [str(where), str(ctx.get("device", "cpu"))]
    if ctx.get("threads"):
        parts.append(f"{ctx['threads']} thread{'s' if ctx['threads'] != 1 else ''}")
    if ctx.get("batch", 1) != 1:
        parts.append(f"batch {ctx['batch']}")
    return ", ".join(parts)


def _busy(ctx: dict) -> bool:
    load, cpus = ctx.get("load"), ctx.get("cpus")
    return isinstance(load, (int, float)) and isinstance(cpus, int) and cpus > 0 and load > cpus


def speed_frame(store: ResultStore, frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (codec row, task) of the summary frame's codecs: total audio and coding seconds."""
    if frame.empty:
        return pd.DataFrame(columns=COLUMNS)
    rows_of = frame[frame.fingerprint != REFERENCE].drop_duplicates(["fingerprint", "task"])
    if rows_of.empty:
        return pd.DataFrame(columns=COLUMNS)
    enc = store.encodes_frame()
    if "timed_on" not in enc:
        enc["timed_on"] = None  # a schema-2 workspace opened read-only: its timings have no machine
    enc = enc.merge(rows_of[["fingerprint", "task", "label", "codec", "random_weights"]], on=["fingerprint", "task"])
    out = []
    for (fp, task), part in enc.groupby(["fingerprint", "task"], sort=False):
        timed = part[part.encode_s.notna() & (part.seconds > 0)]
        contexts = [_json(t) for t in timed.timed_on]
        described = list(dict.fromkeys(_describe(c) for c in contexts))
        audio = float(timed.seconds.sum())
        decoded = timed[timed.decode_s.notna()]
        out.append({
            "codec": part.label.iloc[0], "name": part.codec.iloc[0], "task": task, "items": len(part),
            "timed": len(timed), "audio_s": audio, "encode_s": float(timed.encode_s.sum()),
            "decode_s": float(decoded.decode_s.sum()) if len(decoded) else np.nan,
            "encode_rtf": float(timed.encode_s.sum()) / audio if audio else np.nan,
            "decode_rtf": (float(decoded.decode_s.sum()) / float(decoded.seconds.sum())
                           if len(decoded) and decoded.seconds.sum() > 0 else np.nan),
            "timed_on": "; ".join(described) if described else "-",
            "busy": any(_busy(c) for c in contexts), "random_weights": bool(part.random_weights.iloc[0]),
            "fingerprint": fp})
    return pd.DataFrame(out, columns=COLUMNS).sort_values(["task", "codec"]).reset_index(drop=True)


def _num(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.3g}" if v < 1000 else f"{v:.0f}"


def _times(rtf: float) -> str:
    """Real-time factor as 'x faster than real time' (1 / rtf)."""
    if rtf is None or (isinstance(rtf, float) and (math.isnan(rtf) or rtf <= 0)):
        return "-"
    return f"{1 / rtf:.3g}x"


def speed_markdown(sf: pd.DataFrame) -> str:
    """A row per codec row and task: seconds per second of audio, x real time, where timed."""
    if sf.empty:
        return "_No timed codec runs in this workspace._\n"
    head = ["codec", "task", "items timed", "audio s", "encode s / audio s", "decode s / audio s",
            "x real time (enc / dec)", "timed on"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for r in sf.itertuples(index=False):
        label = r.codec + (" [random weights]" if r.random_weights else "")
        where = r.timed_on + (" (busy)" if r.busy else "")
        lines.append("| " + " | ".join([
            label, r.task, f"{r.timed}/{r.items}", _num(r.audio_s), _num(r.encode_rtf), _num(r.decode_rtf),
            f"{_times(r.encode_rtf)} / {_times(r.decode_rtf)}", where]) + " |")
    machines = {m for t in sf.timed_on for m in t.split("; ")} - {"-"}
    notes = ["", "Seconds of codec time per second of audio (lower is faster; x real time is its inverse), as "
             "measured when each item was first coded: a cached output keeps the timing of the run that made it, "
             "a batch's time is shared among its items by length, and the first call of a process (kernel "
             "creation, first touch of memory; not model loading) falls on its first items."]
    if len(machines) > 1:
        notes.append("Rows were timed on different machines or settings (timed on): compare rows with the same "
                     "entry only.")
    if sf.busy.any():
        notes.append("(busy): timed while the 1-minute load average exceeded the logical CPUs, so other work "
                     "slowed it; re-run on an idle machine (in a fresh --out, or after removing the cached outputs) "
                     "for figures to quote.")
    return "\n".join(lines + notes) + "\n"


def plot_decode_time(frame: pd.DataFrame, sf: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Each metric against decode seconds per audio second (log x), a panel per task, a line per codec name
    through its rows (operating points, samplers, step counts). Drawn for the metrics where some codec has two
    or more timed rows in a task: the trade-off a sweep measures."""
    if frame.empty or sf.empty:
        return []
    timed = sf[sf.decode_rtf.notna() & (sf.decode_rtf > 0)][["fingerprint", "task", "decode_rtf", "timed_on"]]
    data = frame.merge(timed, on=["fingerprint", "task"])
    data = data[data.value.notna()]
    if data.empty:
        return []
    from bench.reports.plots import metric_figure

    def draw(ax, sub: pd.DataFrame, scale: float) -> None:
        for name, rows in sub.groupby("codec"):
            rows = rows.sort_values("decode_rtf")
            ax.plot(rows.decode_rtf, scale * rows.value, marker="o", label=name)
            for r, text in zip(rows.itertuples(index=False), point_labels(rows)):
                ax.annotate(text, (r.decode_rtf, scale * r.value), fontsize=6, xytext=(3, 3),
                            textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("decode s per audio s (log; lower is faster)")

    paths: list[Path] = []
    for metric, part in data.groupby("metric", sort=False):
        if part.groupby(["task", "codec"]).fingerprint.nunique().max() >= 2:
            paths += metric_figure(part, data, out_dir, "vs_decode_time", draw)
    return paths


def point_labels(rows: pd.DataFrame) -> list[str]:
    """Each row's annotation: the options in which one codec's rows differ ('ddim_steps=10,sampler=unipc'), the
    ones they share left out; a row's label where its options cannot be read."""
    options = [_json(o) for o in rows.options]
    keys = sorted({k for o in options for k in o})
    differ = [k for k in keys if len({json_text(o.get(k)) for o in options}) > 1]
    if not differ or not all(options):
        return [str(label) for label in rows.label]
    return [",".join(f"{k}={o[k]}" for k in differ if k in o) for o in options]


def json_text(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)
