"""PNG plots: each metric against measured bitrate, one line per codec, one panel per task/domain."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.reports import atomic
from bench.reports.headline import AUX
from bench.store import REFERENCE

# Rows drawn as horizontal lines rather than points: their "bitrate" is uncompressed PCM or none at all.
_LEVEL_CODECS = ("identity", REFERENCE)


def plot_metrics(frame: pd.DataFrame, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for metric, part in frame.groupby("metric", sort=False):
        tasks = list(dict.fromkeys(part.task))
        fig, axes = plt.subplots(1, len(tasks), figsize=(4.6 * len(tasks), 3.8), squeeze=False)
        for ax, task in zip(axes[0], tasks):
            sub = part[part.task == task]
            _panel(ax, sub, metric, task)
        title = part.metric_name.iloc[0] if part.metric_name.nunique() == 1 else metric
        if (frame.metric_name == title).any() and frame[frame.metric_name == title].metric.nunique() > 1:
            title = metric  # two variants of one metric: keep the files apart
        name = "".join(c if c.isalnum() or c in "-_" else "_" for c in title)
        paths += _save(fig, out_dir / f"{name}_vs_bitrate")
    return paths


def _save(fig, stem: Path) -> list[Path]:
    """PNG and PDF of `fig`, each written atomically (temp file in the folder, fsync, rename)."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    out = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    try:
        with atomic.replacing(out[0]) as tmp:
            fig.savefig(tmp, dpi=130, format="png")
        with atomic.replacing(out[1]) as tmp:
            fig.savefig(tmp, format="pdf")
    finally:
        plt.close(fig)
    return out


def metric_figure(part: pd.DataFrame, everything: pd.DataFrame, out_dir: Path, suffix: str, draw) -> list[Path]:
    """One figure for one metric's rows `part` (a panel per task), saved as `<metric>_<suffix>.png|pdf`.

    draw(ax, rows of one task, scale) plots the panel's data (scale: 100 for WER, shown in %, else 1) and sets the
    x axis; this sets the y label with the metric's direction, the title, grid and legend. The file takes the
    metric's short name unless two variants of it are in `everything` (then its full identity)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    metric = part.metric.iloc[0]
    tasks = list(dict.fromkeys(part.task))
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.8 * len(tasks), 3.8), squeeze=False)
    scale = 100.0 if str(metric).startswith("wer") else 1.0
    for ax, task in zip(axes[0], tasks):
        sub = part[part.task == task]
        draw(ax, sub, scale)
        arrow = "higher is better" if sub.higher_is_better.any() else "lower is better"
        ax.set_ylabel(f"{sub.metric_name.iloc[0]}{' %' if scale != 1 else ''} ({arrow})")
        ax.set_title(f"{task} ({sub.domain.iloc[0]})")
        ax.grid(True, alpha=0.3, which="both")
        ax.legend(fontsize=6)
    title = part.metric_name.iloc[0]
    if everything[everything.metric_name == title].metric.nunique() > 1:
        title = metric  # two variants of one metric: keep the files apart
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(title))
    return _save(fig, out_dir / f"{name}_{suffix}")


def remove_stale(out_dir: Path, keep: list[Path]) -> None:
    """Delete plots of an earlier report that this one did not write (a report describes the store as it is)."""
    keep_names = {p.name for p in keep}
    for pattern in ("*.png", "*.pdf"):
        for old in out_dir.glob(pattern):
            if old.name not in keep_names:
                old.unlink(missing_ok=True)


def paper_figures(frame: pd.DataFrame, table: pd.DataFrame, out_dir: Path) -> list[Path]:
    """The SemantiCodec paper's figures: ViSQOL per domain and WER against bitrate, accuracy against ViSQOL."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    visqol = frame[frame.metric_name == "visqol"]
    if not visqol.empty:
        domains = [d for d in ("speech", "music", "sound") if d in set(visqol.domain)]
        fig, axes = plt.subplots(1, len(domains), figsize=(4.6 * len(domains), 3.8), squeeze=False)
        for ax, domain in zip(axes[0], domains):
            sub = visqol[visqol.domain == domain]
            sub = sub.groupby(["fingerprint", "codec", "label"], as_index=False).agg(
                value=("value", "mean"), bitrate_kbps=("bitrate_kbps", "mean"), random_weights=("random_weights", "any"),
                higher_is_better=("higher_is_better", "first"), metric_name=("metric_name", "first"))
            sub["domain"] = domain
            _panel(ax, sub, "visqol", domain)
            ax.set_ylabel("ViSQOL MOS-LQO (higher is better)")
            ax.set_title(f"ViSQOL, {domain}")
        paths += _save(fig, out_dir / "paper_visqol_vs_bitrate")
    wer = frame[frame.metric_name == "wer"]
    if not wer.empty:
        fig, ax = plt.subplots(figsize=(5.2, 3.8))
        sub = wer.groupby(["fingerprint", "codec", "label"], as_index=False).agg(
            value=("value", "mean"), bitrate_kbps=("bitrate_kbps", "mean"), random_weights=("random_weights", "any"),
            higher_is_better=("higher_is_better", "first"), metric_name=("metric_name", "first"))
        sub["value"] *= 100
        sub["domain"] = "speech"
        _panel(ax, sub, "wer", "speech")
        ax.set_ylabel("WER % (lower is better)")
        ax.set_title("Word error rate after coding")
        paths += _save(fig, out_dir / "paper_wer_vs_bitrate")
    accuracy = [c for c in table.columns if c.startswith("Acc % (") and not c.endswith(AUX)] if not table.empty else []
    if accuracy and "ViSQOL avg" in table:
        fig, ax = plt.subplots(figsize=(5.2, 4.0))
        drawn = False
        for col, marker in zip(accuracy, "os^Dv"):  # one series per embedding kind: kinds are not comparable
            pts = table.dropna(subset=[col, "ViSQOL avg"])
            if pts.empty:
                continue
            drawn = True
            low, high = pts.get(f"{col} lo"), pts.get(f"{col} hi")
            yerr = None if low is None or low.isna().all() else [(pts[col] - low).fillna(0), (high - pts[col]).fillna(0)]
            ax.errorbar(pts["ViSQOL avg"], pts[col], yerr=yerr, fmt=marker, capsize=3,
                        label=col.removeprefix("Acc % ").replace("(", "", 1).replace(")", "", 1)
                        + ", 95 % interval")
            for _, r in pts.iterrows():
                ax.annotate(f"{r['codec']} ({r['kbps']:.3g} kbps)" if pd.notna(r["kbps"]) else r["codec"],
                            (r["ViSQOL avg"], r[col]), fontsize=6, xytext=(3, 3), textcoords="offset points")
        if drawn:
            ax.set_xlabel("ViSQOL average over domains (higher is better)")
            ax.set_ylabel("probe accuracy % (higher is better)")
            ax.set_title("What coding keeps: semantics vs quality")
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=7, title="embedding kind", title_fontsize=7)
            paths += _save(fig, out_dir / "paper_accuracy_vs_visqol")
        else:
            plt.close(fig)
    return paths


def _panel(ax, sub: pd.DataFrame, metric: str, task: str) -> None:
    points = sub[~sub.codec.isin(_LEVEL_CODECS) & sub.bitrate_kbps.notna() & sub.value.notna()]
    for codec, rows in points.groupby("codec"):
        rows = rows.sort_values("bitrate_kbps")
        label = codec + (" [random weights]" if rows.random_weights.any() else "")
        ax.plot(rows.bitrate_kbps, rows.value, marker="o", label=label)
    styles = {"identity": ("k", "--", "identity (uncoded)"), REFERENCE: ("grey", ":", "reference (uncoded)")}
    for codec, (colour, dash, label) in styles.items():
        level = sub[(sub.codec == codec) & sub.value.notna()]
        if not level.empty:
            ax.axhline(float(level.value.iloc[0]), color=colour, linestyle=dash, linewidth=1, label=label)
    if not points.empty and np.nanmin(points.bitrate_kbps) > 0:
        from matplotlib.ticker import FuncFormatter, LogLocator

        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    arrow = "higher is better" if sub.higher_is_better.any() else "lower is better"
    ax.set_xlabel("measured bitrate (kbps)")
    name = sub.metric_name.iloc[0] if "metric_name" in sub and len(sub) else metric
    ax.set_ylabel(f"{name} ({arrow})")
    ax.set_title(f"{task} ({sub.domain.iloc[0]})" if "domain" in sub and len(sub) else task)
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
