"""`bench report`: every table, plot and the listening page of a workspace, written into `<out>/report/`.

    report.md          headline table, per-task tables, published reference rows, how it was measured
    headline.tex       booktabs, best value per column in bold;  published.tex  the published blocks
    headline.csv       the headline table;  summary.csv  the long frame (one row per cell)
    failures.csv       every recorded failure (item, stage, reason)
    plots/*.png|pdf    each metric against bitrate; ViSQOL/WER against bitrate; accuracy against ViSQOL;
                       each metric against packet-loss rate (`*_vs_loss`, when the workspace has channel rows)
                       each metric against decode time (`*_vs_decode_time`, where a codec has several rows)
    tokens.csv         token statistics of the neural codecs (bench/reports/tokens.py)
    speed.csv          encode and decode seconds per audio second, and where they were timed (bench/reports/speed.py)
    loss.csv           quality against packet loss (bench/reports/loss.py)
    index.html         the self-contained listening page

Each file is written to a temporary name in its folder, fsynced and renamed, so a reader never sees half a
file and a failed report leaves the previous one whole. Reports read the store through its accessors only.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from bench.reports.frame import summary_frame
from bench.reports.headline import headline_frame, headline_latex, headline_markdown
from bench.reports.loss import channel_rows, loss_frame, loss_markdown, plot_loss
from bench.reports.speed import plot_decode_time, speed_frame, speed_markdown
from bench.reports.tokens import token_frame, token_markdown
from bench.reports import atomic
from bench.reports.plots import paper_figures, plot_metrics, remove_stale
from bench.reports.published import published_latex, published_markdown
from bench.reports.tables import markdown_tables, sort_for_table
from bench.store import REFERENCE, ResultStore


def measurement_notes(store: ResultStore, frame: pd.DataFrame) -> list[str]:
    """How the numbers were measured: metrics with their rates, options and versions, items, weights."""
    lines = []
    for note in dict.fromkeys(n for run in store.runs() for n in run["config"].get("preset_notes") or []):
        lines.append(f"- {note}")  # a preset's protocol, with every choice its paper does not state
    used = set(frame.metric_key) if not frame.empty else set()
    for key, m in store.metric_rows():
        if key not in used:
            continue
        shown = m.get("identity") or key
        rate = f"{m['sample_rate']} Hz" if m.get("sample_rate") else "a rate chosen per item (see definition)"
        definition = m.get("definition") or m.get("description") or ""
        version = f" (key `{key}`, version {m['version']})" if m.get("version") else (
            f" (key `{key}`)" if key != shown else "")
        lines.append(f"- `{shown}` at {rate}{': ' + definition if definition else ''}{version}"
                     f"{_backend_text(m.get('backend'))}")
    if not frame.empty:
        counts = frame.groupby("task").n.max()
        lines.append("- items scored per task: " + ", ".join(f"{t} {int(n)}" for t, n in counts.items()))
        fingerprints = set(frame.fingerprint)
        for fp, label, m in store.codec_rows():
            if fp == REFERENCE or fp not in fingerprints:
                continue
            weights = m.get("weights", "none")
            tag = " **random weights**" if m.get("random_weights") else ""
            lines.append(f"- `{label}`: fingerprint {fp}, weights {weights}{tag}")
    stale = frame.attrs.get("stale")
    if stale:
        lines.append(f"- {stale} cell(s) computed by older code versions of their codec or metric are not shown; "
                     "run the same `bench run` again to recompute them")
    superseded = frame.attrs.get("superseded") if not frame.empty else None
    if superseded:
        lines.append("- older results under other keys (earlier code versions or backends) are in the store but "
                     "not shown: " + ", ".join(f"`{k}`" for k in superseded))
    lines.append("- kbps is measured from the bitstreams produced (total bits / total seconds), not the nominal "
                 "label; `failed` counts items recorded as failures (failures.csv).")
    lines.append("- probe accuracies are test-set scores with their test items and a 95 % Wilson interval; "
                 "codec-latent, decoded-logmel and logmel embeddings are different features and are never "
                 "ranked together.")
    return lines


def _backend_text(backend) -> str:
    """'; measured with speechmos 0.0.1.1, onnxruntime 1.32.0, ...': the packages and models behind a metric."""
    if not isinstance(backend, dict) or not backend:
        return ""
    parts = [f"{k} {v}" for k, v in backend.items() if isinstance(v, (str, int, float, bool)) and str(v)]
    return f"; measured with {', '.join(parts)}" if parts else ""


def write_report(store: ResultStore, out_dir: Path | None = None, frame=None, html: bool = True) -> dict[str, Path]:
    """Every report file, each written atomically (temp file in `out_dir`, fsync, rename)."""
    out_dir = Path(out_dir or store.root / "report")
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = summary_frame(store) if frame is None else frame
    frame = sort_for_table(frame) if not frame.empty else frame
    # rows coded through a packet-loss channel have their own section and plots, not the headline's ranking
    plain = frame[~frame.fingerprint.isin(list(channel_rows(store)))] if not frame.empty else frame
    table, direction, table_notes = headline_frame(plain)
    tokens = token_frame(store, set(frame.fingerprint) if not frame.empty else set())
    losses = loss_frame(store, frame)
    speed = speed_frame(store, plain)
    notes = measurement_notes(store, frame)
    now = dt.datetime.now().isoformat(timespec="seconds")
    md = "\n".join([
        "# bench report", "", f"Generated {now} from `{store.path}`.", "",
        "## Headline", "", headline_markdown(table, direction, table_notes),
        "## Per task", "", markdown_tables(frame),
        "## Token statistics", "", token_markdown(tokens),
        "## Speed", "", speed_markdown(speed),
        *(["## Packet loss", "", loss_markdown(losses)] if not losses.empty else []),
        "## Published (reference rows, not measured here)", "", published_markdown(),
        "## How this was measured", "", *notes, "",
    ])
    paths: dict[str, Path] = {}
    caption = "Measured with bench. " + " ".join(n.lstrip("- ").replace("`", "") for n in notes[:6])
    plots_dir = out_dir / "plots"
    plots = (plot_metrics(plain, plots_dir) + paper_figures(plain, table, plots_dir) + plot_loss(losses, plots_dir)
             + plot_decode_time(plain, speed, plots_dir))
    remove_stale(plots_dir, plots)
    for i, p in enumerate(plots):
        paths[f"plot{i}"] = p
    paths["latex"] = atomic.write_text(out_dir / "headline.tex",
                                       headline_latex(table, direction, caption) if not table.empty else "")
    paths["published_latex"] = atomic.write_text(out_dir / "published.tex", published_latex())
    paths["headline_csv"] = atomic.write_csv(out_dir / "headline.csv", table)
    paths["csv"] = atomic.write_csv(out_dir / "summary.csv", frame)
    paths["tokens_csv"] = atomic.write_csv(out_dir / "tokens.csv", tokens)
    paths["loss_csv"] = atomic.write_csv(out_dir / "loss.csv", losses)
    paths["speed_csv"] = atomic.write_csv(out_dir / "speed.csv", speed)
    failures = pd.DataFrame(store.failures(), columns=["fingerprint", "task", "item", "stage", "metric", "error"])
    paths["failures"] = atomic.write_csv(out_dir / "failures.csv", failures)
    if html:
        from bench.reports.html import write_html

        paths["html"] = write_html(store, frame, table, direction, notes, plots, out_dir / "index.html",
                                   table_notes)
    paths["markdown"] = atomic.write_text(out_dir / "report.md", md)  # last: its presence means the rest is there
    return paths
