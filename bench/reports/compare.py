"""`bench export` and `bench compare`: versioned JSON summaries and a regression gate for CI.

A summary is {"schema": "bench-summary", "schema_version": 1, "bench_version", "created", "rows": [...]},
one row per (codec label, task, metric) with the value, its direction and the item counts. `compare`
matches rows by (label, task, metric) and calls a row a regression when it is worse than the baseline,
in the metric's own direction, by more than the tolerance.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = "bench-summary"
SCHEMA_VERSION = 1

# Tolerances by metric name: ("abs", x) compares differences, ("rel", x) compares differences / |baseline|.
DEFAULT_TOLERANCES: dict[str, tuple[str, float]] = {
    "wer": ("abs", 0.02),       # 2 points of WER
    "visqol": ("abs", 0.05),    # MOS-LQO
    "pesq": ("abs", 0.05),
    "stoi": ("abs", 0.01),
    "estoi": ("abs", 0.01),
    "sisdr": ("abs", 0.3),      # dB
    "probe": ("abs", 0.02),     # accuracy
    "mel": ("rel", 0.02),
    "mel-dac": ("rel", 0.02),
    "stft": ("rel", 0.02),
}
FALLBACK_TOLERANCE = ("rel", 0.02)


def export_summary(frame, environment: dict[str, Any] | None = None) -> dict[str, Any]:
    rows = []
    for r in frame.itertuples(index=False):
        rows.append({
            "codec": r.codec, "label": r.label, "options": r.options, "fingerprint": r.fingerprint,
            "task": r.task, "domain": r.domain, "metric": r.metric, "metric_name": r.metric_name,
            "value": None if r.value is None or (isinstance(r.value, float) and math.isnan(r.value)) else float(r.value),
            "higher_is_better": bool(r.higher_is_better), "n": int(r.n), "n_failed": int(r.n_failed),
            "bitrate_kbps": None if r.bitrate_kbps is None or math.isnan(r.bitrate_kbps) else float(r.bitrate_kbps),
            "random_weights": bool(r.random_weights),
        })
    import bench

    return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "bench_version": bench.__version__,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "environment": environment or {}, "rows": rows}


def load_summary(path: str | Path) -> dict[str, Any]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if data.get("schema") != SCHEMA:
        raise ValueError(f"{path} is not a bench summary (write one with `bench export`)")
    if int(data.get("schema_version", 0)) > SCHEMA_VERSION:
        raise ValueError(f"{path} has schema version {data['schema_version']}; this bench reads up to "
                         f"{SCHEMA_VERSION}: upgrade bench")
    return data


@dataclass
class Diff:
    label: str
    task: str
    metric: str
    baseline: float | None
    current: float | None
    tolerance: str
    status: str  # "ok", "better", "REGRESSION", "missing", "new"

    @property
    def delta(self) -> float | None:
        if self.baseline is None or self.current is None:
            return None
        return self.current - self.baseline


def parse_tolerances(items: list[str] | None) -> dict[str, tuple[str, float]]:
    """`["wer=0.01", "mel=5%"]` -> {"wer": ("abs", 0.01), "mel": ("rel", 0.05)}."""
    out = dict(DEFAULT_TOLERANCES)
    for text in items or []:
        name, sep, value = text.partition("=")
        if not sep:
            raise ValueError(f"--tolerance takes METRIC=VALUE or METRIC=PCT%, got {text!r}")
        value = value.strip()
        out[name.strip()] = ("rel", float(value[:-1]) / 100) if value.endswith("%") else ("abs", float(value))
    return out


def compare(baseline: dict[str, Any], current: dict[str, Any], tolerances: dict[str, tuple[str, float]] | None = None,
            ) -> list[Diff]:
    tolerances = tolerances or dict(DEFAULT_TOLERANCES)
    key = lambda r: (r["label"], r["task"], r["metric"])  # noqa: E731
    base = {key(r): r for r in baseline["rows"]}
    cur = {key(r): r for r in current["rows"]}
    diffs = []
    for k in list(base) + [k for k in cur if k not in base]:
        b, c = base.get(k), cur.get(k)
        row = b or c
        name = row.get("metric_name") or row["metric"].split(":")[0]
        kind, tol = tolerances.get(row["metric"], tolerances.get(name, FALLBACK_TOLERANCE))
        tol_text = f"{tol:g}" if kind == "abs" else f"{100 * tol:g}%"
        if c is None or c["value"] is None:
            status = "missing"
        elif b is None or b["value"] is None:
            status = "new"
        else:
            change = c["value"] - b["value"]
            worse = -change if row["higher_is_better"] else change
            limit = tol if kind == "abs" else tol * abs(b["value"])
            status = "REGRESSION" if worse > limit + 1e-12 else ("better" if worse < -limit else "ok")
        diffs.append(Diff(k[0], k[1], k[2], b["value"] if b else None, c["value"] if c else None, tol_text, status))
    return diffs


def diff_table(diffs: list[Diff]) -> str:
    head = ["codec", "task", "metric", "baseline", "current", "delta", "tolerance", "status"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    fmt = lambda v: "-" if v is None else f"{v:.4g}"  # noqa: E731
    for d in diffs:
        lines.append("| " + " | ".join([d.label, d.task, d.metric, fmt(d.baseline), fmt(d.current), fmt(d.delta),
                                         d.tolerance, d.status]) + " |")
    return "\n".join(lines)
