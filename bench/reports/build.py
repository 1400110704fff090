"""`bench report`: the tables and plots of a workspace, written into it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from bench.reports.frame import summary_frame
from bench.reports.plots import plot_metrics
from bench.reports.tables import write_tables
from bench.store import ResultStore


def describe(store: ResultStore, frame) -> str:
    """How the numbers were measured: metrics and their rates, items, failures, weights."""
    import json

    lines = ["# bench report", "", f"Generated {dt.datetime.now().isoformat(timespec='seconds')} from `{store.path}`.", ""]
    metas = store.db.execute("SELECT identity, meta FROM metrics").fetchall()
    used = set(frame.metric) if not frame.empty else set()
    if metas:
        lines.append("Metrics (↑ higher is better, ↓ lower is better):")
        for identity, meta in metas:
            if identity not in used:
                continue
            m = json.loads(meta)
            rate = f"{m['sample_rate']} Hz" if m.get("sample_rate") else "per item / codec rate"
            lines.append(f"- `{identity}` at {rate}: {m.get('definition') or m.get('description') or ''}".rstrip(": "))
        lines.append("")
    if not frame.empty and frame.random_weights.any():
        lines += ["Rows marked [random weights] use untrained models: their numbers test the wiring, not the codec.", ""]
    lines += ["kbps is measured from the bitstreams produced (total bits / total seconds), not the nominal label. "
              "`failed` counts items recorded as failures (see failures.csv).", ""]
    return "\n".join(lines) + "\n"


def write_report(store: ResultStore, out_dir: Path | None = None, frame=None) -> dict[str, Path]:
    out_dir = Path(out_dir or store.root / "report")
    frame = summary_frame(store) if frame is None else frame
    paths = write_tables(frame, out_dir, header=describe(store, frame))
    import pandas as pd

    failures = pd.DataFrame(store.failures(), columns=["fingerprint", "task", "item", "stage", "metric", "error"])
    failures.to_csv(out_dir / "failures.csv", index=False)
    paths["failures"] = out_dir / "failures.csv"
    for i, p in enumerate(plot_metrics(frame, out_dir / "plots")):
        paths[f"plot{i}"] = p
    return paths
