"""`bench export` and `bench compare`: versioned JSON summaries and a regression gate for CI.

A summary is {"schema": "bench-summary", "schema_version": 1, "bench_version", "created", "rows": [...]},
one row per (codec label, task, metric) with the value, its direction and the item counts (`n` scored,
`n_failed`). `compare` matches rows by (label, task, display metric identity) and calls a row a regression
when it is worse than the baseline, in the metric's own direction, by more than the tolerance; when it
scored fewer items (`n` dropped: a value over fewer items is not the same measurement) unless
allow_fewer_items; or when more items failed unless allow_failures. A codec that fails its hardest
items must not look better for it.
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


class SummaryError(ValueError):
    """A file given to `bench compare` is not a readable bench export; str() is one line saying what to do."""


def _number(value) -> float | None:
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def _text(value) -> str | None:
    return value if isinstance(value, str) and value else None


def export_summary(frame, environment: dict[str, Any] | None = None) -> dict[str, Any]:
    rows = []
    for r in frame.to_dict("records"):
        row = {
            "codec": r["codec"], "label": r["label"], "options": r["options"], "fingerprint": r["fingerprint"],
            "task": r["task"], "domain": _text(r["domain"]), "metric": r["metric"], "metric_name": r["metric_name"],
            "metric_key": _text(r.get("metric_key")) or r["metric"],
            "value": _number(r["value"]),
            "higher_is_better": bool(r["higher_is_better"]), "n": int(r["n"]), "n_failed": int(r["n_failed"]),
            "bitrate_kbps": _number(r["bitrate_kbps"]),
            "random_weights": bool(r["random_weights"]),
        }
        for key in ("items_digest", "codec_version", "metric_version", "embedding_kind"):
            if _text(r.get(key)):
                row[key] = r[key]
        for key in ("n_test", "ci_low", "ci_high"):
            if _number(r.get(key)) is not None:
                row[key] = _number(r[key])
        # never NaN in the JSON (json.dumps would write the bare token NaN, which is not JSON): null instead
        rows.append({k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()})
    import bench

    return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "bench_version": bench.__version__,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "environment": environment or {}, "rows": rows}


REQUIRED_ROW_KEYS = ("label", "task", "metric", "value", "higher_is_better")
FIX = "make it with `bench export`"


def load_summary(path: str | Path) -> dict[str, Any]:
    """Read and check a summary written by `bench export`; SummaryError (one line) when it is not one."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SummaryError(f"{path}: no such file; {FIX}") from None
    except IsADirectoryError:
        raise SummaryError(f"{path} is a folder, not a bench export; {FIX}") from None
    except UnicodeDecodeError as err:
        raise SummaryError(f"{path} is not a bench export (not UTF-8 text at byte {err.start}); {FIX}") from None
    except OSError as err:
        raise SummaryError(f"{path} cannot be read ({err.strerror}); check the path and its permissions") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise SummaryError(f"{path} is not a bench export (line {err.lineno}: {err.msg}); {FIX}") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise SummaryError(f"{path} is not a bench export (no \"schema\": \"{SCHEMA}\"); {FIX}")
    try:
        version = int(data.get("schema_version", 0))
    except (TypeError, ValueError):
        raise SummaryError(f"{path} has schema_version {data.get('schema_version')!r}, not a number; {FIX}") from None
    if version > SCHEMA_VERSION:
        raise SummaryError(f"{path} has schema version {version}; this bench reads up to {SCHEMA_VERSION}: "
                           "upgrade bench")
    rows = data.get("rows")
    if not isinstance(rows, list):
        raise SummaryError(f"{path} is not a bench export (no list of rows); {FIX}")
    for i, row in enumerate(rows):
        missing = [k for k in REQUIRED_ROW_KEYS if not isinstance(row, dict) or k not in row]
        if missing:
            raise SummaryError(f"{path}: row {i} lacks {', '.join(missing)}; {FIX}")
        if row["value"] is not None and _number(row["value"]) is None:
            raise SummaryError(f"{path}: row {i} has value {row['value']!r}, not a number; {FIX}")
        for key in ("n", "n_failed"):
            if row.get(key) is not None and not isinstance(row[key], int):
                raise SummaryError(f"{path}: row {i} has {key} {row[key]!r}, not a whole number; {FIX}")
    return data


@dataclass
class Diff:
    label: str
    task: str
    metric: str
    baseline: float | None
    current: float | None
    tolerance: str
    status: str  # "ok", "better", "missing", "new", "no value" (none on either side), or the problems
    # joined: "REGRESSION", "FEWER ITEMS", ...
    baseline_n: int | None = None
    current_n: int | None = None
    baseline_failed: int | None = None
    current_failed: int | None = None
    allowed: tuple[str, ...] = ()  # problems found but allowed by a flag (shown, not failing)

    @property
    def delta(self) -> float | None:
        if self.baseline is None or self.current is None:
            return None
        return self.current - self.baseline

    @property
    def regression(self) -> bool:
        return any(word in self.status for word in PROBLEMS)


PROBLEMS = ("REGRESSION", "FEWER ITEMS", "MORE FAILURES")


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
            allow_fewer_items: bool = False, allow_failures: bool = False) -> list[Diff]:
    """One Diff per (label, task, metric) of either summary.

    Problems: the value worse than the baseline beyond tolerance ("REGRESSION"); fewer items scored than
    the baseline ("FEWER ITEMS", unless allow_fewer_items); more failed items ("MORE FAILURES", unless
    allow_failures). An allowed problem is kept in Diff.allowed and shown, but does not fail.
    """
    tolerances = tolerances or dict(DEFAULT_TOLERANCES)
    key = lambda r: (r["label"], r["task"], r["metric"])  # noqa: E731
    base = {key(r): r for r in baseline["rows"]}
    cur = {key(r): r for r in current["rows"]}
    diffs = []
    for k in list(base) + [k for k in cur if k not in base]:
        b, c = base.get(k), cur.get(k)
        row = b or c
        name = row.get("metric_name") or row["metric"].split(":")[0].split("@")[0]
        kind, tol = tolerances.get(row["metric"], tolerances.get(name, FALLBACK_TOLERANCE))
        tol_text = f"{tol:g}" if kind == "abs" else f"{100 * tol:g}%"
        problems: list[str] = []
        allowed: list[str] = []
        if b is not None and c is not None and b["value"] is None and c["value"] is None:
            # no value on either side (WER on music: the metric applies to no item): nothing to compare, but
            # items that newly fail are still a problem
            if (c.get("n_failed") or 0) > (b.get("n_failed") or 0):
                (allowed if allow_failures else problems).append("MORE FAILURES")
            status = ", ".join(problems) if problems else "no value"
        elif c is None or c["value"] is None:
            status = "missing"
        elif b is None or b["value"] is None:
            status = "new"
        else:
            change = c["value"] - b["value"]
            worse = -change if row["higher_is_better"] else change
            limit = tol if kind == "abs" else tol * abs(b["value"])
            if worse > limit + 1e-12:
                problems.append("REGRESSION")
            if b.get("n") is not None and c.get("n") is not None and c["n"] < b["n"]:
                (allowed if allow_fewer_items else problems).append("FEWER ITEMS")
            if (c.get("n_failed") or 0) > (b.get("n_failed") or 0):
                (allowed if allow_failures else problems).append("MORE FAILURES")
            status = ", ".join(problems) if problems else ("better" if worse < -limit else "ok")
        diffs.append(Diff(k[0], k[1], k[2], b["value"] if b else None, c["value"] if c else None, tol_text, status,
                          b.get("n") if b else None, c.get("n") if c else None,
                          b.get("n_failed") if b else None, c.get("n_failed") if c else None, tuple(allowed)))
    return diffs


def diff_table(diffs: list[Diff]) -> str:
    head = ["codec", "task", "metric", "baseline", "current", "delta", "tolerance", "n", "failed", "status"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    fmt = lambda v: "-" if v is None else f"{v:.4g}"  # noqa: E731
    count = lambda v: "-" if v is None else str(v)  # noqa: E731
    for d in diffs:
        n = count(d.baseline_n) if d.baseline_n == d.current_n else f"{count(d.baseline_n)} → {count(d.current_n)}"
        failed = (count(d.baseline_failed) if d.baseline_failed == d.current_failed
                  else f"{count(d.baseline_failed)} → {count(d.current_failed)}")
        status = d.status + (f" (allowed: {', '.join(d.allowed).lower()})" if d.allowed else "")
        lines.append("| " + " | ".join([d.label, d.task, d.metric, fmt(d.baseline), fmt(d.current), fmt(d.delta),
                                         d.tolerance, n, failed, status]) + " |")
    return "\n".join(lines)
