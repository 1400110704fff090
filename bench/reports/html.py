"""The listening page: one self-contained HTML file (tables, plots and audio embedded as data URIs).

For a few items per task it puts the reference beside every codec and operating point. A short script
counts the players whose audio the browser could load and shows it at the top ("12 of 12 audio clips
ready"): a reader sees at once whether the page is whole, and the browser test reads the same line.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from bench.reports import atomic
from bench.store import REFERENCE, ResultStore

ITEMS_PER_TASK = 3
EXCERPT_SECONDS = 8.0
FLAC_CHANNELS = 8  # FLAC holds at most 8 channels: wider items play their first 8 (the clip's label says so)

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}th,td{border-bottom:1px solid #ddd;padding:.3em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f4f4f4}img{max-width:100%;border:1px solid #eee;margin:.4em 0}
.clip{display:inline-block;margin:.3em .8em .3em 0;vertical-align:top}.clip span{display:block;font-size:.8em;color:#555}
audio{width:220px;height:32px}.note{color:#666;font-size:.9em}#audio-status{font-weight:600}
pre{background:#f7f7f7;padding:.6em;overflow-x:auto;font-size:.8em}
"""

_SCRIPT = """
(function(){
  var players = Array.prototype.slice.call(document.querySelectorAll('audio'));
  var status = document.getElementById('audio-status');
  function count(){
    var ready = players.filter(function(a){return a.readyState >= 2 && isFinite(a.duration) && a.duration > 0;}).length;
    var failed = players.filter(function(a){return a.error;}).length;
    status.textContent = ready + ' of ' + players.length + ' audio clips ready' + (failed ? ', ' + failed + ' failed' : '');
  }
  players.forEach(function(a){a.addEventListener('loadeddata', count); a.addEventListener('error', count); a.load();});
  count();
})();
"""


def _audio_uri(audio: np.ndarray, sample_rate: int) -> str:
    """float32 `[C, T]` -> a FLAC data URI (16-bit; the first EXCERPT_SECONDS, the first FLAC_CHANNELS)."""
    import soundfile as sf

    audio = np.clip(audio[:FLAC_CHANNELS, : int(EXCERPT_SECONDS * sample_rate)], -1.0, 1.0)
    buf = io.BytesIO()
    sf.write(buf, audio.T, sample_rate, format="FLAC", subtype="PCM_16")
    return "data:audio/flac;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _clip_name(name: str, audio: np.ndarray) -> str:
    channels = int(audio.shape[0])
    return name if channels <= FLAC_CHANNELS else f"{name} (first {FLAC_CHANNELS} of {channels} channels)"


def _image_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _table_html(table: pd.DataFrame, direction: dict[str, bool], notes: list[str]) -> str:
    from bench.reports.headline import cell_texts, column_titles, legend

    head = "".join(f"<th>{html.escape(t)}</th>" for t in column_titles(table, direction))
    rows = ["<tr>" + "".join(f"<td>{'<b>' + html.escape(t) + '</b>' if b else html.escape(t)}</td>" for t, b in cells)
            + "</tr>" for cells in cell_texts(table, direction)]
    under = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return (f"<table><tr>{head}</tr>{''.join(rows)}</table><p class=note>{html.escape(legend(table))}</p>"
            + (f"<ul class=note>{under}</ul>" if under else ""))


def _task_tables(frame: pd.DataFrame) -> str:
    from bench.reports.tables import task_tables

    out = []
    for title, head, rows in task_tables(frame):
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
        out.append(f"<h3>{html.escape(title)}</h3><table><tr>"
                   + "".join(f"<th>{html.escape(h)}</th>" for h in head) + f"</tr>{body}</table>")
    return "".join(out)


def _listening(store: ResultStore, frame: pd.DataFrame) -> str:
    labels = {fp: label for fp, label, _ in store.codec_rows() if fp != REFERENCE}
    items = store.items_frame()
    sections = []
    for task in dict.fromkeys(frame.task):
        task_fps = [fp for fp in dict.fromkeys(frame[frame.task == task].fingerprint) if fp in labels]
        rows = store.item_counts(task)
        blocks = []
        for item_id, _ in rows[:ITEMS_PER_TASK]:
            info = items[(items.task == task) & (items.item == item_id)]
            caption = ""
            clips = []
            if not info.empty:
                r = info.iloc[0]
                caption = next((str(v) for v in (r["text"], r["label"]) if isinstance(v, str) and v), "")
                if isinstance(r["path"], str) and Path(r["path"]).exists():
                    from bench.audio import load

                    ref, sr = load(r["path"])
                    clips.append((_clip_name("reference", ref), _audio_uri(ref, sr)))
            for fp in task_fps:
                enc = store.encode_row(fp, task, item_id)
                if enc and enc["path"] and Path(enc["path"]).exists():
                    out = store.load_output(Path(enc["path"]))
                    clips.append((_clip_name(labels[fp], out["audio"]), _audio_uri(out["audio"], out["sample_rate"])))
            players = "".join(f'<div class="clip"><span>{html.escape(name)}</span><audio controls preload="auto" '
                              f'src="{uri}"></audio></div>' for name, uri in clips)
            blocks.append(f"<h4>{html.escape(item_id)}</h4><p class=note>{html.escape(str(caption))}</p>{players}")
        if blocks:
            sections.append(f"<h3>{html.escape(task)}</h3>" + "".join(blocks))
    return "".join(sections) or "<p>No decoded audio in the cache.</p>"


def write_html(store: ResultStore, frame: pd.DataFrame, table: pd.DataFrame, direction: dict[str, bool],
               notes: list[str], plots: list[Path], path: Path, table_notes: list[str] = ()) -> Path:
    """The page, written atomically (temp file beside `path`, fsync, rename)."""
    from bench.reports.published import BLOCKS

    run = store.last_run() or {}
    published = "".join(
        f"<h3>{html.escape(b.source)}</h3><p class=note>{html.escape(b.note)}</p><table><tr>"
        + "".join(f"<th>{html.escape(c)}</th>" for c in b.columns) + "</tr>"
        + "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in b.rows)
        + "</table>" for b in BLOCKS)
    images = "".join(f'<img alt="{html.escape(p.stem)}" src="{_image_uri(p)}">' for p in plots if p.suffix == ".png")
    body = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>bench report</title>
<style>{_CSS}</style></head><body>
<h1>bench report</h1>
<p>Listening: <span id="audio-status">audio not checked yet</span></p>
<h2>Headline</h2>{_table_html(table, direction, list(table_notes)) if not table.empty else '<p>No results.</p>'}
<h2>Listen</h2><p class=note>Reference beside each codec and operating point (first {EXCERPT_SECONDS:g} s, 16-bit FLAC;
items with more than {FLAC_CHANNELS} channels play their first {FLAC_CHANNELS}, as each clip's label says).</p>
{_listening(store, frame)}
<h2>Plots</h2>{images}
<h2>Per task</h2>{_task_tables(frame) if not frame.empty else ''}
<h2>Published (reference rows, not measured here)</h2>{published}
<h2>How this was measured</h2><ul>{''.join(f'<li>{html.escape(n.lstrip("- "))}</li>' for n in notes)}</ul>
<h2>Run</h2><pre>{html.escape(json.dumps({k: run.get(k) for k in ('config', 'environment')}, indent=1, default=str))}</pre>
<script>{_SCRIPT}</script></body></html>"""
    return atomic.write_text(path, body)
