"""The long summary frame every report is built from: one row per codec, operating point, task, metric."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from bench.store import REFERENCE, ResultStore

COLUMNS = ["codec", "options", "label", "bitrate_kbps", "nominal_kbps", "tokens_per_second", "task", "domain", "metric", "metric_name",
           "value", "n", "n_failed", "n_skipped", "higher_is_better", "random_weights", "fingerprint"]


def summary_frame(store: ResultStore, fingerprints: list[str] | None = None, tasks: list[str] | None = None,
                  metrics: list[str] | None = None) -> pd.DataFrame:
    """Cells of the store (optionally restricted) with measured bitrate and descriptive columns.

    bitrate_kbps is measured: total bits produced over total seconds of the task's items.
    """
    cells = store.cells()
    if fingerprints is not None:
        cells = cells[cells.fingerprint.isin(fingerprints)]
    if tasks is not None:
        cells = cells[cells.task.isin(tasks)]
    if metrics is not None:
        cells = cells[cells.metric.isin(metrics)]
    if cells.empty:
        return pd.DataFrame(columns=COLUMNS)
    rates = store.bitrates()
    cells = cells.merge(rates[["fingerprint", "task", "bits_per_second", "tokens_per_second"]], on=["fingerprint", "task"], how="left")
    items = store.items_frame()
    domains = items.groupby("task").domain.agg(lambda d: d.iloc[0] if d.nunique() == 1 else "mixed")
    rows = []
    for r in cells.itertuples(index=False):
        codec_meta = json.loads(r.codec_meta) if isinstance(r.codec_meta, str) else {}
        metric_meta = json.loads(r.metric_meta) if isinstance(r.metric_meta, str) else {}
        reference = r.fingerprint == REFERENCE
        rows.append({
            "codec": r.codec,
            "options": r.options if isinstance(r.options, str) else "{}",
            "label": r.label,
            "bitrate_kbps": (r.bits_per_second / 1000.0) if pd.notna(r.bits_per_second) and not reference else np.nan,
            "nominal_kbps": r.nominal_kbps,
            "tokens_per_second": r.tokens_per_second if pd.notna(r.tokens_per_second) else np.nan,
            "task": r.task,
            "domain": domains.get(r.task, ""),
            "metric": r.metric,
            "metric_name": r.metric_name or r.metric,
            "value": r.value,
            "n": r.n,
            "n_failed": r.n_failed,
            "n_skipped": r.n_skipped,
            "higher_is_better": bool(metric_meta.get("higher_is_better", False)),
            "random_weights": bool(codec_meta.get("random_weights", False)),
            "fingerprint": r.fingerprint,
        })
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.sort_values(["task", "metric", "codec", "bitrate_kbps"], na_position="first").reset_index(drop=True)
