"""PNG plots: each metric against measured bitrate, one line per codec, one panel per task/domain."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.store import REFERENCE

# Rows drawn as horizontal lines rather than points: their "bitrate" is uncompressed PCM or none at all.
_LEVEL_CODECS = ("identity", REFERENCE)


def plot_metrics(frame: pd.DataFrame, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    for pattern in ("*.png", "*.pdf"):  # a report describes the store as it is now
        for old in out_dir.glob(pattern):
            old.unlink()
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
    import matplotlib.pyplot as plt

    fig.tight_layout()
    out = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    fig.savefig(out[0], dpi=130)
    fig.savefig(out[1])
    plt.close(fig)
    return out


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
    if not table.empty and "Acc %" in table and "ViSQOL avg" in table:
        pts = table.dropna(subset=["Acc %", "ViSQOL avg"])
        if not pts.empty:
            fig, ax = plt.subplots(figsize=(5.2, 4.0))
            ax.scatter(pts["ViSQOL avg"], pts["Acc %"])
            for _, r in pts.iterrows():
                ax.annotate(f"{r['codec']} ({r['kbps']:.3g} kbps)" if pd.notna(r["kbps"]) else r["codec"],
                            (r["ViSQOL avg"], r["Acc %"]), fontsize=6, xytext=(3, 3), textcoords="offset points")
            ax.set_xlabel("ViSQOL average over domains (higher is better)")
            ax.set_ylabel("probe accuracy % (higher is better)")
            ax.set_title("What coding keeps: semantics vs quality")
            ax.grid(True, alpha=0.3)
            paths += _save(fig, out_dir / "paper_accuracy_vs_visqol")
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
