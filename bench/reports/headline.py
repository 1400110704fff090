"""The paper-style headline table: one row per codec operating point, across tasks.

Columns (those with data): kbps (measured), tokens/s, ViSQOL per domain and their average, WER (with the
uncoded reference's WER as the ASR floor), mel and STFT distance (mean over tasks), probe accuracy (mean
over tasks, as the SemantiCodec paper averages its semantic tasks), one column per embedding kind:
"codec-latent", "decoded-logmel" and "logmel" features are different inputs to one probe, not comparable.

What makes the table fair:

- every row of a column is averaged over the same tasks and the same items. A row that lacks a task
  the others have is left out of that column ("-†") and a note under the table says what it lacks; a row
  whose cells cover other items (fewer after failures or a --limit, or other content) is marked "*" with
  its own n, and is never ranked;
- the best value of a column is bold only among trained, coded, complete rows (at least two of them):
  never a random-weights row, the uncoded reference or the identity codec (ceilings), nor a marked cell;
- each column title carries its n (items; test items for accuracies), and each accuracy its 95 % interval.

`headline_frame(frame) -> (table, direction, notes)`; the table holds, per value column C, the hidden
columns "C n", "C lo", "C hi" (interval) and "C mark" ("" complete, "*" other items, "†" lacks a task).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.probe.scores import ACCURACY_SCORES, mean_interval
from bench.store import REFERENCE

DOMAINS = ("speech", "music", "sound")
HIDDEN = ["fingerprint", "random_weights", "reference", "ceiling"]
AUX = (" n", " lo", " hi", " mark")
LACKS, OTHER_ITEMS = "†", "*"


@dataclass
class _Column:
    title: str
    rows: pd.DataFrame  # the frame's cells that feed this column (every codec)
    percent: bool = False
    accuracy: bool = False


def _variants(part: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(suffix, rows) per metric identity: the suffix names the identity only where a name has several."""
    ids = list(dict.fromkeys(part.metric))
    return [("" if len(ids) == 1 else f" [{m}]", part[part.metric == m]) for m in ids]


def _columns(frame: pd.DataFrame) -> list[_Column]:
    cols: list[_Column] = []
    for suffix, rows in _variants(frame[frame.metric_name == "visqol"]):
        for d in DOMAINS:
            if (rows.domain == d).any():
                cols.append(_Column(f"ViSQOL {d}{suffix}", rows[rows.domain == d]))
    for name, title, percent in (("wer", "WER %", True), ("mel", "mel", False), ("stft", "STFT", False)):
        for suffix, rows in _variants(frame[frame.metric_name == name]):
            cols.append(_Column(title + suffix, rows, percent=percent))
    probe = frame[frame.metric_name == "probe"]
    for suffix, rows in _variants(probe):
        kinds = rows.embedding_kind.fillna("unknown kind")
        primaries = rows.primary.fillna("top1_acc")
        for (kind, primary), sub in rows.groupby([kinds, primaries], sort=True):
            score = "Acc" if primary in ACCURACY_SCORES else primary
            cols.append(_Column(f"{score} % ({kind}){suffix}", sub, percent=True,
                                accuracy=primary in ACCURACY_SCORES))
    return cols


def _signature(r) -> tuple:
    return (r.items_digest if isinstance(r.items_digest, str) else None, int(r.n))


def _expected(rows: pd.DataFrame) -> dict[str, tuple]:
    """Per task, the item set most rows share (ties: the larger n)."""
    out = {}
    for task, sub in rows.groupby("task", sort=True):
        counts = Counter(_signature(r) for r in sub.itertuples(index=False))
        out[task] = max(counts, key=lambda s: (counts[s], s[1]))
    return out


class _Notes:
    """Under-table notes, one line per (row, reason) listing every column it concerns."""

    def __init__(self):
        self.lacks: dict[tuple, list[str]] = {}
        self.other: dict[tuple, list[str]] = {}

    def lines(self) -> list[str]:
        out = [f"{LACKS} `{codec}` has no {', '.join(cols)} on {', '.join(missing)}, which the other rows "
               f"average over ({', '.join(tasks)}): left out, never averaged over fewer tasks."
               for (codec, missing, tasks), cols in self.lacks.items()]
        out += [f"{OTHER_ITEMS} `{codec}`: {', '.join(cols)} on {task} cover other items than the other rows "
                f"(n={n}{f', {failed} failed' if failed else ''}; the others n={n_exp}): shown with their n, "
                "not ranked." for (codec, task, n, failed, n_exp), cols in self.other.items()]
        return out


def _fill(column: _Column, table_rows: dict[str, dict], notes: _Notes) -> None:
    rows = column.rows[column.rows.value.notna() & (column.rows.n > 0)]
    if rows.empty:
        return
    tasks = sorted(set(rows.task))
    expected = _expected(rows)
    c = column.title
    for fp, part in rows.groupby("fingerprint", sort=False):
        if fp not in table_rows:
            continue
        row = table_rows[fp]
        by_task = {r.task: r for r in part.itertuples(index=False)}
        missing = [t for t in tasks if t not in by_task]
        if missing:
            row.update({c: np.nan, f"{c} mark": LACKS})
            notes.lacks.setdefault((row["codec"], tuple(missing), tuple(tasks)), []).append(c)
            continue
        cells = [by_task[t] for t in tasks]
        value = float(np.mean([r.value for r in cells]))
        row[c] = 100 * value if column.percent else value
        other = [r for r in cells if _signature(r) != expected[r.task]]
        row[f"{c} mark"] = OTHER_ITEMS if other else ""
        if column.accuracy:
            ns = [int(r.n_test) if pd.notna(r.n_test) else 0 for r in cells]
            row[f"{c} n"] = sum(ns)
            low, high = mean_interval([float(r.value) for r in cells], ns)
            row[f"{c} lo"], row[f"{c} hi"] = 100 * low, 100 * high
        else:
            row[f"{c} n"] = int(sum(r.n for r in cells))
        for r in other:
            key = (row["codec"], r.task, int(r.n), int(r.n_failed or 0), expected[r.task][1])
            notes.other.setdefault(key, []).append(c)


def _visqol_average(table_rows: dict[str, dict], columns: list[_Column], notes: _Notes) -> list[str]:
    """"ViSQOL avg" per identity: the mean of its domain columns, only where a row has all of them."""
    titles = []
    groups: dict[str, list[str]] = {}
    for col in columns:
        if col.title.startswith("ViSQOL "):
            suffix = col.title.split(" ", 2)[2] if col.title.count(" ") > 1 else ""
            groups.setdefault(suffix, []).append(col.title)
    for suffix, domain_cols in groups.items():
        title = "ViSQOL avg" + (" " + suffix if suffix else "")
        titles.append(title)
        for row in table_rows.values():
            values = [row.get(c, np.nan) for c in domain_cols]
            if not any(pd.notna(v) for v in values):
                continue
            marks = [row.get(f"{c} mark", "") for c in domain_cols]
            if any(pd.isna(v) for v in values):
                row.update({title: np.nan, f"{title} mark": LACKS})
                absent = [c.split(" ")[1] for c, v in zip(domain_cols, values) if pd.isna(v)]
                notes.lacks.setdefault((row["codec"], tuple(absent), tuple(c.split(" ")[1] for c in domain_cols)),
                                       []).append(title)
                continue
            row[title] = float(np.mean(values))
            row[f"{title} n"] = int(sum(row.get(f"{c} n", 0) for c in domain_cols))
            row[f"{title} mark"] = OTHER_ITEMS if OTHER_ITEMS in marks else ""
    return titles


def headline_frame(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, bool], list[str]]:
    """(table, higher_is_better per value column, notes). Rows: codec operating points, the reference last."""
    if frame.empty:
        return pd.DataFrame(), {}, []
    table_rows: dict[str, dict] = {}
    for fp, part in frame.groupby("fingerprint", sort=False):
        first = part.iloc[0]
        per_task = part.drop_duplicates("task")
        kbps, tps = per_task.bitrate_kbps.dropna(), per_task.tokens_per_second.dropna()
        table_rows[fp] = {
            "codec": _label(first), "fingerprint": fp, "_name": str(first.codec),
            "kbps": float(kbps.mean()) if len(kbps) else np.nan,
            "tokens/s": float(tps.mean()) if len(tps) else np.nan,
            "random_weights": bool(part.random_weights.any()), "reference": fp == REFERENCE,
            "ceiling": fp == REFERENCE or first.codec == "identity",  # uncoded: shown, never "best"
        }
    columns = _columns(frame)
    notes = _Notes()
    direction: dict[str, bool] = {}
    for col in columns:
        _fill(col, table_rows, notes)
        direction[col.title] = bool(col.rows.higher_is_better.iloc[0]) if len(col.rows) else False
    titles = [c.title for c in columns]
    for title in _visqol_average(table_rows, columns, notes):
        direction[title] = True
        domains = [t for t in titles if t.startswith("ViSQOL ") and t.endswith(title[len("ViSQOL avg"):])]
        titles.insert(titles.index(domains[-1]) + 1, title)
    titles = [t for t in titles if any(pd.notna(r.get(t)) or r.get(f"{t} mark") for r in table_rows.values())]
    table = pd.DataFrame(list(table_rows.values()))
    for t in titles:
        for suffix, default in zip(AUX, (np.nan, np.nan, np.nan, "")):
            if t + suffix not in table:
                table[t + suffix] = default
        if t not in table:
            table[t] = np.nan
        table[t + " mark"] = table[t + " mark"].fillna("")
    table = table.sort_values(["reference", "_name", "kbps"], na_position="last")
    aux = [t + s for t in titles for s in AUX]
    lines = notes.lines()
    if any(r["random_weights"] for r in table_rows.values()):
        lines.append("Rows marked [random weights] use untrained models: they test the wiring, not the codec; "
                     "shown, never bold.")
    return table[["codec", "kbps", "tokens/s"] + titles + aux + HIDDEN].reset_index(drop=True), direction, lines


def _label(r) -> str:
    if r.fingerprint == REFERENCE:
        return "reference (uncoded)"
    return str(r.label) + (" [random weights]" if r.random_weights else "")


def visible_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c not in HIDDEN and not c.endswith(AUX)]


def _rankable(table: pd.DataFrame) -> pd.Series:
    return ~(table.ceiling.astype(bool) | table.random_weights.astype(bool))


def _best(table: pd.DataFrame, direction: dict[str, bool]) -> dict[str, float]:
    """Best value per column among rankable rows (trained, coded, complete: no mark), where two or more compete."""
    best = {}
    for col, higher in direction.items():
        if col not in table:
            continue
        ok = _rankable(table) & table[col].notna()
        if f"{col} mark" in table:
            ok &= table[f"{col} mark"].fillna("") == ""
        values = table.loc[ok, col]
        if len(values) >= 2:
            best[col] = float(values.max() if higher else values.min())
    return best


def _fmt(v, col: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if col == "kbps":
        return f"{v:.3g}" if v < 100 else f"{v:.0f}"
    if col == "tokens/s":
        return f"{v:.0f}"
    if "%" in col:
        return f"{v:.1f}"
    return f"{v:.2f}" if col.startswith("ViSQOL") else f"{v:.3f}"


def column_n(table: pd.DataFrame, col: str) -> int | None:
    """The n shared by the complete rows of a column (None for kbps, tokens/s or an empty column)."""
    if f"{col} n" not in table:
        return None
    ok = table[col].notna() & (table[f"{col} mark"].fillna("") == "")
    ns = table.loc[ok, f"{col} n"].dropna()
    return int(ns.mode().iloc[0]) if len(ns) else None


def column_titles(table: pd.DataFrame, direction: dict[str, bool]) -> list[str]:
    out = []
    for c in visible_columns(table):
        arrow = " ↑" if direction.get(c) else " ↓" if c in direction else ""
        n = column_n(table, c)
        out.append(c + arrow + (f" (n={n})" if n is not None else ""))
    return out


def cell_texts(table: pd.DataFrame, direction: dict[str, bool]) -> list[list[tuple[str, bool]]]:
    """Per row, per visible column: (text, is the column's best). Accuracies carry [low, high]."""
    best = _best(table, direction)
    rankable = _rankable(table)
    out = []
    for i, r in table.iterrows():
        cells = []
        for c in visible_columns(table):
            v = r[c]
            if c == "codec":
                cells.append((str(v), False))
                continue
            text = _fmt(v, c)
            mark = str(r.get(f"{c} mark", "") or "")
            if pd.notna(r.get(f"{c} lo", np.nan)) and pd.notna(v):
                text += f" [{_fmt(r[f'{c} lo'], c)}, {_fmt(r[f'{c} hi'], c)}]"
            if mark == OTHER_ITEMS and pd.notna(r.get(f"{c} n", np.nan)):
                text += f"{OTHER_ITEMS} (n={int(r[f'{c} n'])})"
            elif mark:
                text += mark
            is_best = (c in best and bool(rankable[i]) and not mark and isinstance(v, float)
                       and not math.isnan(v) and math.isclose(v, best[c]))
            cells.append((text, is_best))
        out.append(cells)
    return out


def legend(table: pd.DataFrame) -> str:
    """What n and the brackets mean (one sentence under the table)."""
    text = "n: the items each column averages, the same for every row that is not marked"
    if any(table[f"{c} lo"].notna().any() for c in visible_columns(table) if f"{c} lo" in table):
        text += ("; accuracies: test items, with a 95 % interval [low, high] (Wilson; over several tasks, "
                 "a normal approximation of the mean)")
    return text + "."


def headline_markdown(table: pd.DataFrame, direction: dict[str, bool], notes: list[str] | None = None) -> str:
    if table.empty:
        return "_No results yet._\n"
    head = column_titles(table, direction)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for cells in cell_texts(table, direction):
        lines.append("| " + " | ".join(f"**{t}**" if b else t for t, b in cells) + " |")
    text = "\n".join(lines) + "\n" + f"\n{legend(table)}\n"
    if notes:
        text += "\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    return text


def headline_latex(table: pd.DataFrame, direction: dict[str, bool], caption: str) -> str:
    """A booktabs table, best value per column in bold."""
    from bench.reports.published import _tex

    head = " & ".join(_tex(t).replace(" ↑", "$\\uparrow$").replace(" ↓", "$\\downarrow$")
                      for t in column_titles(table, direction))
    def tex(text: str) -> str:
        return _tex(text).replace(LACKS, "\\dag{}")

    body = [" & ".join(f"\\textbf{{{tex(t)}}}" if b else tex(t) for t, b in cells) + " \\\\"
            for cells in cell_texts(table, direction)]
    spec = "l" + "r" * (len(visible_columns(table)) - 1)
    return ("\\begin{table}[t]\n\\centering\n\\small\n"
            f"\\begin{{tabular}}{{{spec}}}\n\\toprule\n{head} \\\\\n\\midrule\n" + "\n".join(body)
            + f"\n\\bottomrule\n\\end{{tabular}}\n\\caption{{{_tex(caption)}}}\n\\end{{table}}\n")
