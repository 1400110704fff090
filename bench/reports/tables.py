"""Markdown and CSV tables from the summary frame (see bench.reports.frame)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from bench.reports import atomic
from bench.store import REFERENCE


def _fmt(value: float, metric: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if metric.startswith("wer"):
        return f"{100 * value:.1f}%"
    return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"


def _row_label(r: pd.Series) -> str:
    if r.fingerprint == REFERENCE:
        return "reference (uncoded)"
    label = str(r.label)
    if r.random_weights:
        label += " [random weights]"
    return label


def cell_text(r) -> str:
    """One cell of a per-task table: the value; a probe score with its 95 % interval, test items and kind."""
    text = _fmt(r.value, r.metric)
    if getattr(r, "embedding_kind", None) or pd.notna(getattr(r, "n_test", float("nan"))):
        extra = []
        if pd.notna(getattr(r, "ci_low", float("nan"))) and pd.notna(r.value):
            text += f" [{r.ci_low:.3f}, {r.ci_high:.3f}]"
        if pd.notna(getattr(r, "n_test", float("nan"))):
            extra.append(f"{int(r.n_test)} test")
        if isinstance(getattr(r, "embedding_kind", None), str):
            extra.append(r.embedding_kind)
        if extra:
            text += f" ({', '.join(extra)})"
    return text


def task_tables(frame: pd.DataFrame) -> list[tuple[str, list[str], list[list[str]]]]:
    """Per task: (title, header, rows of text). A row per codec/operating point, a column per metric.

    `items`/`failed` are the row's largest counts; a cell over another number of items shows its own n.
    """
    out = []
    for task, part in frame.groupby("task", sort=False):
        # a metric that applies to no item of this task (WER on music: n=0, its items skipped) gets no column; one
        # that failed on every item it applies to (n=0, failures, none skipped) keeps it.
        by_metric = part.groupby("metric")
        kept = (by_metric.n.max() > 0) | ((by_metric.n_failed.max() > 0) & (by_metric.n_skipped.max() == 0))
        # `failed` counts every recorded failure of the row, a dropped metric's too (as failures.csv lists them)
        row_failed = part.groupby("fingerprint").n_failed.max()
        part = part[part.metric.map(kept)]
        # a row with no value but recorded failures (a codec that failed on every item) stays, showing them
        rows_of = part.groupby("fingerprint")
        part = part[(rows_of.n.transform("max") > 0) | (rows_of.n_failed.transform("max") > 0)]
        if part.empty:
            continue
        metrics = list(dict.fromkeys(part.metric))
        names = _short_names(part)
        arrows = {m: ("↑" if part[part.metric == m].higher_is_better.iloc[0] else "↓") for m in metrics}
        head = ["codec", "kbps"] + [f"{names[m]} {arrows[m]}" for m in metrics] + ["items", "failed"]
        rows_text = []
        for fp, rows in part.groupby("fingerprint", sort=False):
            first = rows.iloc[0]
            kbps = "-" if pd.isna(first.bitrate_kbps) else (
                f"{first.bitrate_kbps:.3g}" if first.bitrate_kbps < 100 else f"{first.bitrate_kbps:.0f}")
            values = {r.metric: r for r in rows.itertuples(index=False)}
            n = int(rows.n.max())
            cells = []
            for m in metrics:
                if m not in values:
                    cells.append("")
                    continue
                r = values[m]
                if int(r.n) == 0 and int(r.n_failed) > 0:
                    cells.append(f"{cell_text(r)} (n=0, {int(r.n_failed)} failed)")
                    continue
                cells.append(cell_text(r) + (f" (n={int(r.n)})" if int(r.n) != n else ""))
            failed = int(row_failed[fp])
            rows_text.append([_row_label(first), kbps] + cells + [str(n), str(failed)])
        out.append((f"{task} ({part.domain.iloc[0]})", head, rows_text))
    return out


def markdown_tables(frame: pd.DataFrame) -> str:
    """One table per task: a row per codec/operating point, a column per metric (with its direction)."""
    if frame.empty:
        return "_No results yet._\n"
    out = []
    for title, head, rows in task_tables(frame):
        lines = [f"### {title}", "", "| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


def _short_names(part: pd.DataFrame) -> dict[str, str]:
    """Column titles: the metric's name, or its full identity where two variants of one metric share a table."""
    pairs = part[["metric", "metric_name"]].drop_duplicates()
    counts = pairs.metric_name.value_counts()
    return {r.metric: (r.metric_name if counts[r.metric_name] == 1 else r.metric) for r in pairs.itertuples()}


def sort_for_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Reference first, then by codec and bitrate."""
    key = frame.fingerprint.eq(REFERENCE).map({True: 0, False: 1})
    return frame.assign(_k=key).sort_values(["task", "_k", "codec", "bitrate_kbps"]).drop(columns="_k")


def write_tables(frame: pd.DataFrame, out_dir: Path, header: str = "") -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = sort_for_table(frame)
    md = atomic.write_text(out_dir / "report.md", header + markdown_tables(frame))
    csv = atomic.write_csv(out_dir / "summary.csv", frame)
    return {"markdown": md, "csv": csv}
