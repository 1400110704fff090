"""The long summary frame every report is built from: one row per codec, operating point, task, metric.

`metric` is the metric's display identity (`mel`, `visqol:mode=audio`: the metric description's
meta["identity"], else its stored key) and `metric_key` the stored key (`identity@digest`, which changes
with the metric's code version and backend). Where one codec and task hold two keys of one display
identity (an older code version, another backend), they are never mixed: the newest cell is shown when the
store gives cell times (`updated`), else each row shows its full key.

Probe (task-level) cells add `embedding_kind`, `primary` (the score in `value`), `n_test` (test items,
over all folds) and a 95 % interval `ci_low`/`ci_high` (Wilson, for accuracies; NaN for mAP).
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd

from bench.probe.scores import ACCURACY_SCORES, folds_interval
from bench.store import REFERENCE, ResultStore

log = logging.getLogger(__name__)

COLUMNS = ["codec", "options", "label", "bitrate_kbps", "nominal_kbps", "tokens_per_second", "task", "domain",
           "metric", "metric_name", "value", "n", "n_failed", "n_skipped", "higher_is_better", "random_weights",
           "fingerprint", "metric_key", "items_digest", "codec_version", "metric_version", "embedding_kind",
           "primary", "n_test", "ci_low", "ci_high"]


def _json(text) -> dict:
    if not isinstance(text, str) or not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _text(value) -> str | None:
    return value if isinstance(value, str) and value else None


def _probe_columns(extra: dict) -> dict:
    """embedding_kind, primary, n_test and the 95 % interval of a probe cell (NaN/None elsewhere)."""
    out = {"embedding_kind": None, "primary": None, "n_test": np.nan, "ci_low": np.nan, "ci_high": np.nan}
    if "embedding_kind" not in extra and "folds" not in extra:
        return out
    primary = extra.get("primary") or "top1_acc"
    out.update(embedding_kind=extra.get("embedding_kind"), primary=primary)
    folds = extra.get("folds") if isinstance(extra.get("folds"), list) else []
    n_test, low, high = folds_interval(folds, primary)
    if n_test:
        out["n_test"] = n_test
    if primary in ACCURACY_SCORES and n_test:
        out.update(ci_low=low, ci_high=high)
    return out


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
    if cells.empty:
        return pd.DataFrame(columns=COLUMNS)
    rates = store.bitrates()
    cells = cells.merge(rates[["fingerprint", "task", "bits_per_second", "tokens_per_second"]], on=["fingerprint", "task"], how="left")
    items = store.items_frame()
    # from the items that have a domain: a shard stores the other shards' items with only a signature
    domains = items.dropna(subset=["domain"]).groupby("task").domain.agg(
        lambda d: d.iloc[0] if d.nunique() == 1 else "mixed")
    rows, channel_versions = [], []
    for r in cells.to_dict("records"):
        codec_meta, metric_meta, extra = _json(r.get("codec_meta")), _json(r.get("metric_meta")), _json(r.get("extra"))
        channel = codec_meta.get("channel")
        channel_versions.append(str(channel["version"]) if isinstance(channel, dict) and "version" in channel
                                else None)
        reference = r["fingerprint"] == REFERENCE
        bps, tps = r.get("bits_per_second"), r.get("tokens_per_second")
        rows.append({
            "codec": r["codec"],
            "options": r["options"] if isinstance(r.get("options"), str) else "{}",
            "label": r["label"],
            "bitrate_kbps": (bps / 1000.0) if pd.notna(bps) and not reference else np.nan,
            "nominal_kbps": r.get("nominal_kbps"),
            "tokens_per_second": tps if pd.notna(tps) else np.nan,
            "task": r["task"],
            "domain": domains.get(r["task"], ""),
            "metric": _text(metric_meta.get("identity")) or r["metric"],
            "metric_name": _text(r.get("metric_name")) or r["metric"],
            "value": r["value"],
            "n": r["n"],
            "n_failed": r["n_failed"],
            "n_skipped": r["n_skipped"],
            "higher_is_better": bool(metric_meta.get("higher_is_better", False)),
            "random_weights": bool(codec_meta.get("random_weights", False)),
            "fingerprint": r["fingerprint"],
            "metric_key": r["metric"],
            "items_digest": _text(r.get("items_digest")),
            "codec_version": _text(r.get("codec_version")),
            "metric_version": _text(r.get("metric_version")) or _text(metric_meta.get("version")),
            **_probe_columns(extra),
        })
    frame = pd.DataFrame(rows, columns=COLUMNS)
    updated = cells["updated"].reset_index(drop=True) if "updated" in cells else None
    frame, updated = _current_only(frame, updated, channel_versions)
    frame = _newest_per_label(frame, updated)
    frame = _keep_variants_apart(frame, updated)
    if metrics is not None:
        frame = frame[frame.metric_key.isin(metrics) | frame.metric.isin(metrics)]
        if frame.empty:
            return pd.DataFrame(columns=COLUMNS)
    return frame.sort_values(["task", "metric", "codec", "bitrate_kbps"], na_position="first").reset_index(drop=True)


def _class_version(kind: str, name) -> str | None:
    """The code_version of the registered codec or metric class `name` now (None: not registered here)."""
    if not isinstance(name, str) or name == REFERENCE:
        return None
    from bench.codecs import CODECS
    from bench.metrics import METRICS

    registry = CODECS if kind == "codec" else METRICS
    if name not in registry:
        return None
    try:
        version = getattr(registry.get(name), "code_version", None)
    except Exception:  # noqa: BLE001 - a class that cannot be imported here: its rows cannot be judged
        return None
    return str(version) if version is not None else None


def _current_only(frame: pd.DataFrame, updated: pd.Series | None,
                  channel_versions: list[str | None] | None = None) -> tuple[pd.DataFrame, pd.Series | None]:
    """Leave out cells computed by another code version of their codec or metric than the one installed, or
    behind a packet-loss channel of another CHANNEL_VERSION (`channel_versions`, one per row, from the stored
    codec meta) (they are stale: a re-run recomputes them); frame.attrs["stale"] counts them."""
    if frame.empty:
        return frame, updated
    codec_now = {n: _class_version("codec", n) for n in frame.codec.dropna().unique()}
    metric_now = {n: _class_version("metric", n) for n in frame.metric_name.dropna().unique()}

    def stale(row) -> bool:
        c, m = codec_now.get(row.codec), metric_now.get(row.metric_name)
        # a cell that records no version (written through the API, not by a run) cannot be judged: kept
        return bool((c is not None and row.codec_version not in (None, c))
                    or (m is not None and row.metric_version not in (None, m)))

    mask = frame.apply(stale, axis=1).astype(bool)
    if channel_versions is not None and any(v is not None for v in channel_versions):
        from bench.channel import CHANNEL_VERSION

        mask |= np.array([v is not None and v != str(CHANNEL_VERSION) for v in channel_versions])
    if not mask.any():
        return frame, updated
    out = frame.loc[~mask].reset_index(drop=True)
    out.attrs = {**frame.attrs, "stale": int(mask.sum())}
    log.info("%d cell(s) computed by older code versions are left out; re-run bench run to recompute them",
             int(mask.sum()))
    return out, (updated[~mask.values].reset_index(drop=True) if updated is not None else None)


def _newest_per_label(frame: pd.DataFrame, updated: pd.Series | None) -> pd.DataFrame:
    """One row per (codec label, task, metric key): where several fingerprints share a label (the same weights
    folder with other content, an older run), the newest cell wins and the others are listed in
    frame.attrs["superseded"]. Codecs given other weights folders (`weights=DIR`, not in the label) are other
    checkpoints, never superseded: their labels get ` [weights=DIR]` where they would read alike."""
    if frame.empty:
        return frame
    weights = frame.options.map(lambda o: _text(_json(o).get("weights")) or "")
    key = ["label", "task", "metric_key", "_weights"]
    keyed = frame.assign(_weights=weights.values)
    if updated is not None and keyed.duplicated(key, keep=False).any():
        order = keyed.assign(_updated=updated.values).sort_values("_updated", kind="stable")
        newest = order.groupby(key, dropna=False).tail(1).index
        gone = frame.loc[~frame.index.isin(newest)]
        keyed = keyed.loc[keyed.index.isin(newest)]
        keyed.attrs = {**frame.attrs, "superseded": sorted(set(frame.attrs.get("superseded", [])) |
                                                           {f"{r.label} ({r.fingerprint})" for r in gone.itertuples()})}
    alike = keyed.groupby("label")._weights.transform("nunique") > 1  # per label: the same name in every table
    if alike.any():
        keyed = keyed.copy()
        named = alike & (keyed._weights != "")
        keyed.loc[named, "label"] = keyed.loc[named, "label"] + " [weights=" + keyed.loc[named, "_weights"] + "]"
    attrs = keyed.attrs
    out = keyed.drop(columns="_weights")
    out.attrs = {**frame.attrs, **attrs}
    return out


def _keep_variants_apart(frame: pd.DataFrame, updated: pd.Series | None = None) -> pd.DataFrame:
    """Rows of one (codec, task) sharing a display identity under several keys are never mixed.

    With the cells' `updated` times, the newest key wins (the others are older code versions or an earlier
    backend) and the superseded keys are listed in frame.attrs["superseded"]; without them, those rows
    show their full key.
    """
    keys = frame.groupby(["fingerprint", "task", "metric"]).metric_key.transform("nunique")
    clash = keys > 1
    if not clash.any():
        return frame
    if updated is not None:
        order = frame.assign(_updated=updated.values).sort_values("_updated", kind="stable")
        newest = order.groupby(["fingerprint", "task", "metric"]).tail(1).index
        superseded = sorted(set(frame.loc[~frame.index.isin(newest), "metric_key"]))
        log.info("reports show the newest of several keys per metric; superseded: %s", ", ".join(superseded))
        out = frame.loc[frame.index.isin(newest)].copy()
        out.attrs["superseded"] = superseded
        return out
    names = sorted(set(frame.loc[clash, "metric"]))
    log.info("metric(s) %s hold results under several keys (code versions or backends); shown by key",
             ", ".join(names))
    frame = frame.copy()
    frame.loc[frame.metric.isin(names), "metric"] = frame.loc[frame.metric.isin(names), "metric_key"]
    return frame
