"""The paper-style headline table: one row per codec operating point, across tasks.

Columns (those with data): kbps (measured), tokens/s, ViSQOL per domain and their average, WER (with the
uncoded reference's WER as the ASR floor), mel and STFT distance (mean over tasks), probe accuracy (mean
over tasks, as the SemantiCodec paper averages its semantic tasks).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench.store import REFERENCE

DOMAINS = ("speech", "music", "sound")


def headline_frame(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, bool]]:
    """(table, higher_is_better per column). Rows: codec operating points, the uncoded reference last."""
    if frame.empty:
        return pd.DataFrame(), {}
    direction: dict[str, bool] = {}
    rows = []
    for fp, part in frame.groupby("fingerprint", sort=False):
        first = part.iloc[0]
        row: dict[str, object] = {"codec": _label(first), "fingerprint": fp, "_name": str(first.codec)}
        kbps = part.drop_duplicates("task").bitrate_kbps.dropna()
        row["kbps"] = float(kbps.mean()) if len(kbps) else np.nan
        tps = part.drop_duplicates("task").tokens_per_second.dropna()
        row["tokens/s"] = float(tps.mean()) if len(tps) else np.nan
        visqol = part[part.metric_name == "visqol"]
        if not visqol.empty:
            per_domain = visqol.groupby("domain").value.mean()
            for d in DOMAINS:
                if d in per_domain:
                    row[f"ViSQOL {d}"] = float(per_domain[d])
                    direction[f"ViSQOL {d}"] = True
            row["ViSQOL avg"] = float(per_domain.mean())
            direction["ViSQOL avg"] = True
        for name, column in (("wer", "WER %"), ("mel", "mel"), ("stft", "STFT"), ("probe", "Acc %")):
            sub = part[part.metric_name == name]
            if not sub.empty:
                value = float(sub.value.mean())
                row[column] = 100 * value if column.endswith("%") else value
                direction[column] = bool(sub.higher_is_better.iloc[0])
        row["random_weights"] = bool(part.random_weights.any())
        row["reference"] = fp == REFERENCE
        row["ceiling"] = fp == REFERENCE or first.codec == "identity"  # uncoded: shown, never "best"
        rows.append(row)
    table = pd.DataFrame(rows)
    ordered = ["codec", "kbps", "tokens/s"] + [c for c in _ORDER if c in table.columns]
    table = table.sort_values(["reference", "_name", "kbps"], na_position="last")
    return table[ordered + HIDDEN].reset_index(drop=True), direction


HIDDEN = ["fingerprint", "random_weights", "reference", "ceiling"]


_ORDER = ["ViSQOL speech", "ViSQOL music", "ViSQOL sound", "ViSQOL avg", "WER %", "mel", "STFT", "Acc %"]


def _label(r) -> str:
    if r.fingerprint == REFERENCE:
        return "reference (uncoded)"
    return str(r.label) + (" [random weights]" if r.random_weights else "")


def _best(table: pd.DataFrame, direction: dict[str, bool]) -> dict[str, float]:
    """Best value per column among coded rows (identity and the reference are ceilings, not competitors)."""
    coded = table[~table.ceiling]
    best = {}
    for col, higher in direction.items():
        values = coded[col].dropna() if col in coded else []
        if len(values):
            best[col] = float(values.max() if higher else values.min())
    return best


def _fmt(v, col: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if col == "kbps":
        return f"{v:.3g}" if v < 100 else f"{v:.0f}"
    if col == "tokens/s":
        return f"{v:.0f}"
    if col.endswith("%"):
        return f"{v:.1f}"
    return f"{v:.2f}" if col.startswith("ViSQOL") else f"{v:.3f}"


def headline_markdown(table: pd.DataFrame, direction: dict[str, bool]) -> str:
    if table.empty:
        return "_No results yet._\n"
    cols = [c for c in table.columns if c not in HIDDEN]
    best = _best(table, direction)
    head = [c + (" ↑" if direction.get(c) else " ↓" if c in direction else "") for c in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(cols)) + "|"]
    for r in table.itertuples(index=False):
        cells = []
        for c in cols:
            v = getattr(r, _attr(table, c))
            text = v if c == "codec" else _fmt(v, c)
            if c in best and isinstance(v, float) and not math.isnan(v) and math.isclose(v, best[c]) \
                    and not r.ceiling:
                text = f"**{text}**"
            cells.append(str(text))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def headline_latex(table: pd.DataFrame, direction: dict[str, bool], caption: str) -> str:
    """A booktabs table, best value per column in bold."""
    from bench.reports.published import _tex

    cols = [c for c in table.columns if c not in HIDDEN]
    best = _best(table, direction)
    head = " & ".join(_tex(c) + ("$\\uparrow$" if direction.get(c) else "$\\downarrow$" if c in direction else "")
                      for c in cols)
    body = []
    for r in table.itertuples(index=False):
        cells = []
        for c in cols:
            v = getattr(r, _attr(table, c))
            text = _tex(str(v)) if c == "codec" else _tex(_fmt(v, c))
            if c in best and isinstance(v, float) and not math.isnan(v) and math.isclose(v, best[c]) \
                    and not r.ceiling:
                text = f"\\textbf{{{text}}}"
            cells.append(text)
        body.append(" & ".join(cells) + " \\\\")
    spec = "l" + "r" * (len(cols) - 1)
    return ("\\begin{table}[t]\n\\centering\n\\small\n"
            f"\\begin{{tabular}}{{{spec}}}\n\\toprule\n{head} \\\\\n\\midrule\n" + "\n".join(body)
            + f"\n\\bottomrule\n\\end{{tabular}}\n\\caption{{{_tex(caption)}}}\n\\end{{table}}\n")


def _attr(table: pd.DataFrame, col: str) -> str:
    """itertuples renames columns that are not identifiers to _N."""
    names = list(table.columns)
    i = names.index(col)
    return col if col.isidentifier() else f"_{i}"
