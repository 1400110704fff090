"""ResultStore: every score, failure and codec output of a workspace, in one SQLite database.

Rows are keyed by (codec fingerprint, task, item, metric identity), so a re-run computes only what is
missing. Each item's results are committed in one transaction (WAL journal): a run killed at any
moment, SIGKILL included, loses at most the item in flight. Decoded audio and codes live next to the
database as one `.npz` per item, written to a temporary name and renamed, so a file that exists is
complete.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

SCHEMA_VERSION = 1
REFERENCE = "reference"  # pseudo-codec fingerprint: metrics scored on the uncoded audio (e.g. the ASR floor)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, started REAL, finished REAL, config TEXT, environment TEXT);
CREATE TABLE IF NOT EXISTS codecs (
    fingerprint TEXT PRIMARY KEY, name TEXT, options TEXT, label TEXT, nominal_kbps REAL, meta TEXT);
CREATE TABLE IF NOT EXISTS metrics (
    identity TEXT PRIMARY KEY, name TEXT, key TEXT, meta TEXT);
CREATE TABLE IF NOT EXISTS items (
    task TEXT, item TEXT, domain TEXT, sample_rate INTEGER, seconds REAL, text TEXT, label TEXT, path TEXT,
    PRIMARY KEY (task, item));
CREATE TABLE IF NOT EXISTS encodes (
    fingerprint TEXT, task TEXT, item TEXT, bits_per_second REAL, seconds REAL, encode_s REAL, decode_s REAL,
    sample_rate INTEGER, path TEXT, tokens_per_second REAL, PRIMARY KEY (fingerprint, task, item));
CREATE TABLE IF NOT EXISTS scores (
    fingerprint TEXT, task TEXT, item TEXT, metric TEXT, key TEXT, value REAL,
    PRIMARY KEY (fingerprint, task, item, metric, key));
CREATE TABLE IF NOT EXISTS failures (
    fingerprint TEXT, task TEXT, item TEXT, stage TEXT, metric TEXT, error TEXT, created REAL,
    PRIMARY KEY (fingerprint, task, item, stage, metric));
CREATE TABLE IF NOT EXISTS cells (
    fingerprint TEXT, task TEXT, metric TEXT, value REAL, n INTEGER, n_failed INTEGER, n_skipped INTEGER,
    extra TEXT, updated REAL, PRIMARY KEY (fingerprint, task, metric));
"""


class StoreVersionError(RuntimeError):
    pass


class ResultStore:
    """One workspace's results. `root` is the workspace folder (default `bench-out`)."""

    def __init__(self, root: str | Path = "bench-out"):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = self.root / "results.sqlite"
        self.cache_dir = self.root / "cache"
        self.db = sqlite3.connect(self.path, timeout=60)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            with self.db:
                self.db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) != SCHEMA_VERSION:
            raise StoreVersionError(
                f"{self.path} has schema version {row[0]}, this bench writes {SCHEMA_VERSION}; "
                "use a new --out folder or delete the old one"
            )

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.db:
            yield self.db

    # -- runs and descriptions --------------------------------------------------------------------

    def start_run(self, config: dict[str, Any], environment: dict[str, Any]) -> int:
        with self.db:
            cur = self.db.execute("INSERT INTO runs (started, config, environment) VALUES (?, ?, ?)",
                                  (time.time(), json.dumps(config, default=str), json.dumps(environment, default=str)))
        return int(cur.lastrowid)

    def finish_run(self, run_id: int) -> None:
        with self.db:
            self.db.execute("UPDATE runs SET finished=? WHERE id=?", (time.time(), run_id))

    def last_run(self) -> dict[str, Any] | None:
        row = self.db.execute("SELECT id, started, finished, config, environment FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        if row is None:
            return None
        return {"id": row[0], "started": row[1], "finished": row[2], "config": json.loads(row[3] or "{}"),
                "environment": json.loads(row[4] or "{}")}

    def add_codec(self, fingerprint: str, name: str, options: dict, label: str, nominal_kbps: float | None,
                  meta: dict[str, Any]) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO codecs VALUES (?, ?, ?, ?, ?, ?)",
                            (fingerprint, name, json.dumps(options, sort_keys=True, default=str), label,
                             nominal_kbps, json.dumps(meta, default=str)))

    def add_metric(self, identity: str, name: str, key: str, meta: dict[str, Any]) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?)",
                            (identity, name, key, json.dumps(meta, default=str)))

    def add_item(self, task: str, item: str, domain: str, sample_rate: int | None, seconds: float | None,
                 text: str | None, label: str | None, path: str | None = None) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO items VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (task, item, domain, sample_rate, seconds, text, label, path))

    # -- per-item results -------------------------------------------------------------------------

    def cache_path(self, fingerprint: str, task: str, item: str) -> Path:
        safe_task = "".join(c if c.isalnum() or c in "-_." else "_" for c in task)[-80:]
        safe_item = "".join(c if c.isalnum() or c in "-_." else "_" for c in item)
        return self.cache_dir / fingerprint / safe_task / f"{safe_item}.npz"

    @staticmethod
    def save_output(path: Path, audio: np.ndarray, codes: np.ndarray | None, sample_rate: int,
                    bits_per_second: float) -> None:
        """Write decoded audio `[C, T]` and codes atomically (temp file + rename)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, audio=audio.astype(np.float32),
                         codes=codes if codes is not None else np.zeros((0,), np.int64),
                         sample_rate=np.int64(sample_rate), bits_per_second=np.float64(bits_per_second))
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    @staticmethod
    def load_output(path: Path) -> dict[str, Any]:
        with np.load(path) as z:
            return {"audio": z["audio"], "codes": z["codes"], "sample_rate": int(z["sample_rate"]),
                    "bits_per_second": float(z["bits_per_second"])}

    def encode_row(self, fingerprint: str, task: str, item: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT bits_per_second, seconds, encode_s, decode_s, sample_rate, path FROM encodes "
            "WHERE fingerprint=? AND task=? AND item=?", (fingerprint, task, item)).fetchone()
        if row is None:
            return None
        return dict(zip(("bits_per_second", "seconds", "encode_s", "decode_s", "sample_rate", "path"), row))

    def record_item(self, fingerprint: str, task: str, item: str, *, encode: dict[str, Any] | None = None,
                    scores: dict[str, dict[str, float]] | None = None,
                    failures: list[tuple[str, str, str]] | None = None) -> None:
        """Commit everything one item produced in one transaction.

        encode: the encodes row; scores: metric identity -> {key: value}; failures: (stage, metric, error).
        """
        with self.db:
            if encode is not None:
                self.db.execute(
                    "INSERT OR REPLACE INTO encodes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (fingerprint, task, item, encode["bits_per_second"], encode["seconds"], encode.get("encode_s"),
                     encode.get("decode_s"), encode["sample_rate"], encode.get("path"), encode.get("tokens_per_second")))
            for metric, values in (scores or {}).items():
                self.db.execute("DELETE FROM failures WHERE fingerprint=? AND task=? AND item=? AND metric=?",
                                (fingerprint, task, item, metric))
                self.db.executemany(
                    "INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?, ?, ?)",
                    [(fingerprint, task, item, metric, k, float(v)) for k, v in values.items()])
            for stage, metric, error in failures or []:
                self.db.execute("INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?, ?, ?)",
                                (fingerprint, task, item, stage, metric, error, time.time()))

    def scored_metrics(self, fingerprint: str, task: str, item: str) -> set[str]:
        rows = self.db.execute("SELECT DISTINCT metric FROM scores WHERE fingerprint=? AND task=? AND item=?",
                               (fingerprint, task, item))
        return {r[0] for r in rows}

    def failed(self, fingerprint: str, task: str, item: str) -> dict[tuple[str, str], str]:
        rows = self.db.execute("SELECT stage, metric, error FROM failures WHERE fingerprint=? AND task=? AND item=?",
                               (fingerprint, task, item))
        return {(r[0], r[1]): r[2] for r in rows}

    def clear_failures(self, fingerprint: str, task: str) -> None:
        with self.db:
            self.db.execute("DELETE FROM failures WHERE fingerprint=? AND task=?", (fingerprint, task))

    def item_scores(self, fingerprint: str, task: str, metric: str, items: list[str] | None = None
                    ) -> dict[str, dict[str, float]]:
        rows = self.db.execute("SELECT item, key, value FROM scores WHERE fingerprint=? AND task=? AND metric=?",
                               (fingerprint, task, metric))
        out: dict[str, dict[str, float]] = {}
        wanted = set(items) if items is not None else None
        for item, key, value in rows:
            if wanted is None or item in wanted:
                out.setdefault(item, {})[key] = value
        return out

    def failures(self, fingerprint: str | None = None, task: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT fingerprint, task, item, stage, metric, error FROM failures WHERE 1=1"
        args: list[Any] = []
        if fingerprint:
            sql += " AND fingerprint=?"
            args.append(fingerprint)
        if task:
            sql += " AND task=?"
            args.append(task)
        cols = ("fingerprint", "task", "item", "stage", "metric", "error")
        return [dict(zip(cols, r)) for r in self.db.execute(sql + " ORDER BY task, item", args)]

    # -- task-level summaries -----------------------------------------------------------------------

    def write_cell(self, fingerprint: str, task: str, metric: str, value: float, n: int, n_failed: int,
                   n_skipped: int, extra: dict[str, Any] | None = None) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO cells VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (fingerprint, task, metric, value, n, n_failed, n_skipped,
                             json.dumps(extra or {}, default=str), time.time()))

    def cells(self):
        """Every summary cell joined with its codec and metric description, as a pandas DataFrame."""
        import pandas as pd

        sql = """
            SELECT c.fingerprint, c.task, c.metric, c.value, c.n, c.n_failed, c.n_skipped, c.extra,
                   k.name AS codec, k.options, k.label, k.nominal_kbps, k.meta AS codec_meta,
                   m.name AS metric_name, m.meta AS metric_meta
            FROM cells c LEFT JOIN codecs k ON k.fingerprint = c.fingerprint
                         LEFT JOIN metrics m ON m.identity = c.metric
        """
        return pd.read_sql_query(sql, self.db)

    def bitrates(self):
        """Measured bits/s per (fingerprint, task): total bits over total seconds."""
        import pandas as pd

        sql = """SELECT fingerprint, task, SUM(bits_per_second * seconds) / SUM(seconds) AS bits_per_second,
                        SUM(tokens_per_second * seconds) / SUM(seconds) AS tokens_per_second,
                        SUM(seconds) AS seconds, SUM(encode_s) AS encode_s, SUM(decode_s) AS decode_s, COUNT(*) AS n
                 FROM encodes GROUP BY fingerprint, task"""
        return pd.read_sql_query(sql, self.db)

    def items_frame(self):
        import pandas as pd

        return pd.read_sql_query("SELECT * FROM items", self.db)
