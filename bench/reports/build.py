"""`bench report`: every table, plot and the listening page of a workspace, written into `<out>/report/`.

    report.md          headline table, per-task tables, published reference rows, how it was measured
    headline.tex       booktabs, best value per column in bold;  published.tex  the published blocks
    headline.csv       the headline table;  summary.csv  the long frame (one row per cell)
    failures.csv       every recorded failure (item, stage, reason)
    plots/*.png|pdf    each metric against bitrate; ViSQOL/WER against bitrate; accuracy against ViSQOL
    index.html         the self-contained listening page
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd

from bench.reports.frame import summary_frame
from bench.reports.headline import headline_frame, headline_latex, headline_markdown
from bench.reports.plots import paper_figures, plot_metrics
from bench.reports.published import published_latex, published_markdown
from bench.reports.tables import markdown_tables, sort_for_table
from bench.store import REFERENCE, ResultStore


def measurement_notes(store: ResultStore, frame: pd.DataFrame) -> list[str]:
    """How the numbers were measured: metrics with their rates and options, items, weights."""
    lines = []
    used = set(frame.metric) if not frame.empty else set()
    for identity, meta in store.db.execute("SELECT identity, meta FROM metrics ORDER BY identity").fetchall():
        if identity not in used:
            continue
        m = json.loads(meta)
        rate = f"{m['sample_rate']} Hz" if m.get("sample_rate") else "a rate chosen per item (see definition)"
        definition = m.get("definition") or m.get("description") or ""
        lines.append(f"- `{identity}` at {rate}{': ' + definition if definition else ''}")
    if not frame.empty:
        counts = frame.groupby("task").n.max()
        lines.append("- items scored per task: " + ", ".join(f"{t} {int(n)}" for t, n in counts.items()))
        codecs = store.db.execute("SELECT fingerprint, label, meta FROM codecs").fetchall()
        for fp, label, meta in codecs:
            if fp == REFERENCE or fp not in set(frame.fingerprint):
                continue
            m = json.loads(meta)
            weights = m.get("weights", "none")
            tag = " **random weights**" if m.get("random_weights") else ""
            lines.append(f"- `{label}`: fingerprint {fp}, weights {weights}{tag}")
    lines.append("- kbps is measured from the bitstreams produced (total bits / total seconds), not the nominal "
                 "label; `failed` counts items recorded as failures (failures.csv).")
    return lines


def write_report(store: ResultStore, out_dir: Path | None = None, frame=None, html: bool = True) -> dict[str, Path]:
    out_dir = Path(out_dir or store.root / "report")
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = summary_frame(store) if frame is None else frame
    frame = sort_for_table(frame) if not frame.empty else frame
    table, direction = headline_frame(frame)
    notes = measurement_notes(store, frame)
    now = dt.datetime.now().isoformat(timespec="seconds")
    random_note = ("\nRows marked [random weights] use untrained models: they test the wiring, not the codec.\n"
                   if not frame.empty and frame.random_weights.any() else "")
    md = "\n".join([
        "# bench report", "", f"Generated {now} from `{store.path}`.", "",
        "## Headline", "", headline_markdown(table, direction), random_note,
        "## Per task", "", markdown_tables(frame),
        "## Published (reference rows, not measured here)", "", published_markdown(),
        "## How this was measured", "", *notes, "",
    ])
    paths: dict[str, Path] = {}
    paths["markdown"] = out_dir / "report.md"
    paths["markdown"].write_text(md, encoding="utf-8")
    paths["latex"] = out_dir / "headline.tex"
    caption = "Measured with bench. " + " ".join(n.lstrip("- ").replace("`", "") for n in notes[:6])
    paths["latex"].write_text(headline_latex(table, direction, caption) if not table.empty else "", encoding="utf-8")
    (out_dir / "published.tex").write_text(published_latex(), encoding="utf-8")
    paths["headline_csv"] = out_dir / "headline.csv"
    table.to_csv(paths["headline_csv"], index=False)
    paths["csv"] = out_dir / "summary.csv"
    frame.to_csv(paths["csv"], index=False)
    failures = pd.DataFrame(store.failures(), columns=["fingerprint", "task", "item", "stage", "metric", "error"])
    paths["failures"] = out_dir / "failures.csv"
    failures.to_csv(paths["failures"], index=False)
    plots = plot_metrics(frame, out_dir / "plots") + paper_figures(frame, table, out_dir / "plots")
    for i, p in enumerate(plots):
        paths[f"plot{i}"] = p
    if html:
        from bench.reports.html import write_html

        paths["html"] = write_html(store, frame, table, direction, notes, plots, out_dir / "index.html")
    return paths
