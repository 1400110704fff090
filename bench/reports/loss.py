"""Quality against packet loss: the rows a packet-loss channel produced (bench/channel.py), beside the plain
codec's rows as loss 0, as a table per task and one plot per metric (a line per codec and channel setting).

Channel rows are recognised by the `channel` entry of their stored codec meta (loss, burst, concealment, the
inner codec's label). A series is one inner codec label with one (burst, seed, packet duration, concealment);
its loss-0 point is the plain codec's row of the same label, when the workspace has one.

Columns of `loss_frame`: series, codec (the inner label), loss, burst, conceal, packet_ms, task, domain,
metric, metric_name, value, n, higher_is_better, fingerprint.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from bench.store import ResultStore

COLUMNS = ["series", "codec", "loss", "burst", "conceal", "packet_ms", "task", "domain", "metric", "metric_name",
           "value", "n", "higher_is_better", "fingerprint"]


def channel_rows(store: ResultStore) -> dict[str, dict]:
    """fingerprint -> the channel description of every codec row coded through a channel."""
    return {fp: meta["channel"] for fp, _, meta in store.codec_rows() if isinstance(meta.get("channel"), dict)}


def _series(ch: dict) -> str:
    burst = "independent" if ch.get("burst") is None else f"burst {ch['burst']:g}"
    extra = [burst, f"conceal {ch.get('conceal')}"]
    if ch.get("packet_ms") not in (None, 20, 20.0):
        extra.append(f"{ch['packet_ms']:g} ms")
    if ch.get("seed"):
        extra.append(f"seed {ch['seed']}")
    return f"{ch.get('inner_label')} ({', '.join(extra)})"


def loss_frame(store: ResultStore, frame: pd.DataFrame) -> pd.DataFrame:
    """The summary frame's channel rows and their loss-0 partners, one row per (series, loss, task, metric)."""
    channels = channel_rows(store)
    if frame.empty or not channels:
        return pd.DataFrame(columns=COLUMNS)
    lossy = frame[frame.fingerprint.isin(list(channels))]
    if lossy.empty:
        return pd.DataFrame(columns=COLUMNS)
    rows = []
    series_of = {}  # inner label -> its series (with their settings)
    for r in lossy.itertuples(index=False):
        ch = channels[r.fingerprint]
        name = _series(ch)
        series_of.setdefault(ch.get("inner_label"), {})[name] = ch
        rows.append(_row(r, name, ch.get("inner_label"), ch))
    plain = frame[~frame.fingerprint.isin(list(channels)) & frame.label.isin(list(series_of))]
    for r in plain.itertuples(index=False):
        for name, ch in series_of[r.label].items():
            rows.append(_row(r, name, r.label, {**ch, "loss": 0.0}))
    out = pd.DataFrame(rows, columns=COLUMNS)
    return out.sort_values(["task", "metric", "series", "loss"]).reset_index(drop=True)


def _row(r, series: str, codec: str, ch: dict) -> dict:
    return {"series": series, "codec": codec, "loss": float(ch.get("loss", 0.0)), "burst": ch.get("burst"),
            "conceal": ch.get("conceal"), "packet_ms": ch.get("packet_ms"), "task": r.task, "domain": r.domain,
            "metric": r.metric, "metric_name": r.metric_name, "value": r.value, "n": r.n,
            "higher_is_better": bool(r.higher_is_better), "fingerprint": r.fingerprint}


def _fmt(v, metric: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if str(metric).startswith("wer"):
        return f"{100 * v:.1f}%"
    return f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}"


def loss_markdown(lf: pd.DataFrame) -> str:
    """Per task: a row per series and loss rate, a column per metric (n items beside each value)."""
    if lf.empty:
        return ""
    out = []
    for task, part in lf.groupby("task", sort=False):
        metrics = list(dict.fromkeys(part.metric))
        arrows = {m: "↑" if part[part.metric == m].higher_is_better.iloc[0] else "↓" for m in metrics}
        names = {m: part[part.metric == m].metric_name.iloc[0] for m in metrics}
        shown = {m: names[m] if list(names.values()).count(names[m]) == 1 else m for m in metrics}  # short, unless ambiguous
        head = ["codec and channel", "loss %"] + [f"{shown[m]} {arrows[m]}" for m in metrics] + ["items"]
        lines = [f"### {task} ({part.domain.iloc[0]})", "", "| " + " | ".join(head) + " |",
                 "|" + "|".join(["---"] * len(head)) + "|"]
        for (series, loss), rows in part.groupby(["series", "loss"], sort=True):
            values = {r.metric: r for r in rows.itertuples(index=False)}
            cells = [_fmt(values[m].value, m) if m in values else "" for m in metrics]
            lines.append("| " + " | ".join([series, f"{100 * loss:g}"] + cells + [str(int(rows.n.max()))]) + " |")
        out.append("\n".join(lines))
    note = ("Loss 0 is the plain codec (no channel). Losses: a seeded Gilbert-Elliott chain per item "
            "(bench/channel.py); concealment as named.")
    return "\n\n".join(out) + "\n\n" + note + "\n"


def plot_loss(lf: pd.DataFrame, out_dir: Path) -> list[Path]:
    """One figure per metric (a panel per task): metric against loss rate, a line per series. Drawn only for
    metrics where some series has two or more loss rates."""
    if lf.empty:
        return []
    from bench.reports.plots import metric_figure

    def draw(ax, sub: pd.DataFrame, scale: float) -> None:
        for series, rows in sub.groupby("series"):
            rows = rows.sort_values("loss")
            ax.plot(100 * rows.loss, scale * rows.value, marker="o", label=series)
        ax.set_xlabel("packet loss rate (%)")

    paths: list[Path] = []
    for metric, part in lf.groupby("metric", sort=False):
        if part.groupby(["task", "series"]).loss.nunique().max() >= 2:
            paths += metric_figure(part, lf, out_dir, "vs_loss", draw)
    return paths
