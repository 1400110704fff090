"""ResultStore: every score, failure and codec output of a workspace, in one SQLite database.

Rows are keyed by (codec fingerprint, task, item, metric key), so a re-run computes only what is
missing. Each item's results are committed in one transaction (WAL journal): a run killed at any
moment, SIGKILL included, loses at most the item in flight. Decoded audio and codes live next to the
database as one `.npz` per item, named by a digest of (fingerprint, task, item id, item content), written
to a temporary name, fsynced and renamed, so a file that exists is complete; one that cannot be read
anyway (a disk fault, a copy cut short) is discarded and recomputed.

This is the only module that speaks SQL.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import tempfile
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from bench.fsutil import share

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3
# the oldest schema a read-only open accepts: 2 -> 3 only added a column that readers do without
READABLE_FROM = 2
REFERENCE = "reference"  # pseudo-codec fingerprint: metrics scored on the uncoded audio (e.g. the ASR floor)

_TABLES = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, started REAL, finished REAL, config TEXT, environment TEXT);
CREATE TABLE codecs (
    fingerprint TEXT PRIMARY KEY, name TEXT, options TEXT, label TEXT, nominal_kbps REAL, meta TEXT);
CREATE TABLE metrics (
    identity TEXT PRIMARY KEY, name TEXT, key TEXT, meta TEXT);
CREATE TABLE items (
    task TEXT, item TEXT, domain TEXT, sample_rate INTEGER, seconds REAL, text TEXT, label TEXT, path TEXT,
    signature TEXT, PRIMARY KEY (task, item));
CREATE TABLE encodes (
    fingerprint TEXT, task TEXT, item TEXT, bits_per_second REAL, seconds REAL, encode_s REAL, decode_s REAL,
    sample_rate INTEGER, path TEXT, tokens_per_second REAL, timed_on TEXT, PRIMARY KEY (fingerprint, task, item));
CREATE TABLE scores (
    fingerprint TEXT, task TEXT, item TEXT, metric TEXT, key TEXT, value REAL,
    PRIMARY KEY (fingerprint, task, item, metric, key));
CREATE TABLE failures (
    fingerprint TEXT, task TEXT, item TEXT, stage TEXT, metric TEXT, error TEXT, created REAL,
    PRIMARY KEY (fingerprint, task, item, stage, metric));
CREATE TABLE cells (
    fingerprint TEXT, task TEXT, metric TEXT, value REAL, n INTEGER, n_failed INTEGER, n_skipped INTEGER,
    extra TEXT, updated REAL, items_digest TEXT, codec_version TEXT, metric_version TEXT, items TEXT,
    PRIMARY KEY (fingerprint, task, metric));
"""


def _migrate_1_to_2(db: sqlite3.Connection) -> None:
    """Schema 1 -> 2: items carry a content signature, cells the item set and code versions they cover.

    Schema-1 cells cannot say which items or code produced them, so they are dropped (the next run
    recomputes them from the stored per-item scores); per-item rows are kept.
    """
    db.execute("ALTER TABLE items ADD COLUMN signature TEXT")
    for column in ("items_digest", "codec_version", "metric_version", "items"):
        db.execute(f"ALTER TABLE cells ADD COLUMN {column} TEXT")
    db.execute("DELETE FROM cells")


def _migrate_2_to_3(db: sqlite3.Connection) -> None:
    """Schema 2 -> 3: each encodes row says where its timings were taken (`timed_on`, JSON: CPU, device,
    threads, batch, load). Older rows keep NULL: their timings are shown as taken on an unrecorded machine."""
    db.execute("ALTER TABLE encodes ADD COLUMN timed_on TEXT")


# version -> the step that upgrades a store of that version to the next one
_MIGRATIONS = {1: _migrate_1_to_2, 2: _migrate_2_to_3}


def _timed_on_text(value) -> str | None:
    """An encodes row's `timed_on` as stored: JSON text (a dict is dumped; missing or NaN: NULL)."""
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return value if isinstance(value, str) and value else None


class StoreError(RuntimeError):
    """A workspace that cannot be used; the one-line message says what to do."""


class StoreVersionError(StoreError):
    pass


class StoreCorruptError(StoreError):
    pass


class StoreLockedError(StoreError):
    pass


class StoreReadOnlyError(StoreError):
    pass


def items_digest(pairs: list[tuple[str, str]]) -> str:
    """Digest of a set of (item id, content signature) pairs: which items, with which content, a cell covers."""
    h = hashlib.sha256()
    for item, signature in sorted(pairs):
        h.update(f"{item}\0{signature}\n".encode())
    return h.hexdigest()[:16]


def _audio_part(signature: str) -> str:
    """The audio content of an item signature `AUDIO[#ANNOTATIONS]` (what a codec's output depends on)."""
    return signature.partition("#")[0]


class ResultStore:
    """One workspace's results. `root` is the workspace folder (default `bench-out`).

    readonly=True opens an existing workspace for reading only (reports, exports, archived folders):
    nothing is created or written.
    """

    def __init__(self, root: str | Path = "bench-out", readonly: bool = False):
        self.root = Path(root)
        self.path = self.root / "results.sqlite"
        self.cache_dir = self.root / "cache"
        self.readonly = readonly
        self._lock_fd: int | None = None
        self.db = self._open_readonly() if readonly else self._open_writable()
        try:
            self._check_schema()
        except BaseException:
            self.db.close()
            raise

    # -- opening ----------------------------------------------------------------------------------

    def _open_writable(self) -> sqlite3.Connection:
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"--out {self.root} is a file, not a folder; give a folder for the workspace")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreReadOnlyError(f"cannot create the workspace {self.root} ({err.strerror}); "
                                     "give a writable --out folder") from None
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StoreReadOnlyError(f"the workspace {self.root} is not writable; give a writable --out folder "
                                     "(bench report and bench export can read it as it is)")
        try:
            db = sqlite3.connect(self.path, timeout=60)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.DatabaseError as err:
            raise self._corrupt(err) from None
        return db

    def _open_readonly(self) -> sqlite3.Connection:
        if not self.path.is_file():
            raise StoreError(f"no results in {self.root} (no results.sqlite); run `bench run --out {self.root}` first")
        uri = self.path.resolve().as_uri()
        try:
            db = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=60)
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return db
        except sqlite3.DatabaseError as err:
            if "not a database" in str(err) or "malformed" in str(err):
                raise self._corrupt(err) from None
        # A WAL database in a folder we may not write (an archive): read the checkpointed file as it is.
        try:
            db = sqlite3.connect(f"{uri}?immutable=1", uri=True)
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return db
        except sqlite3.DatabaseError as err:
            raise self._corrupt(err) from None

    def _corrupt(self, err: Exception) -> StoreCorruptError:
        return StoreCorruptError(
            f"{self.path} cannot be read ({err}); move it away (mv {self.path} {self.path}.broken) and run the "
            "same bench run again: decoded audio and codes in the cache are reused, only the scores are recomputed")

    def _check_schema(self) -> None:
        """Check the version before anything is written; create a new store; migrate an older one."""
        try:
            tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if tables and self.db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("database disk image is malformed")
            if "meta" in tables:
                row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                version = int(row[0]) if row else None
            else:
                version = None
        except sqlite3.DatabaseError as err:
            raise self._corrupt(err) from None
        if version is None and tables:
            raise StoreCorruptError(f"{self.path} is not a bench workspace (tables {', '.join(sorted(tables))}); "
                                    "give another --out folder")
        if version is not None and version > SCHEMA_VERSION:
            raise StoreVersionError(
                f"{self.path} was written by a newer bench (schema {version}; this bench reads up to "
                f"{SCHEMA_VERSION}): upgrade bench (pip install -U -e .) or use another --out folder")
        if self.readonly:
            if version is None or version < READABLE_FROM:
                raise StoreVersionError(f"{self.path} has schema {version}, this bench reads {SCHEMA_VERSION}; "
                                        "run `bench run --out` on it once (that upgrades it) or use an older bench")
            return
        if version is None:  # a new workspace: every table and the version in one transaction
            self.db.executescript(f"BEGIN; {_TABLES} INSERT INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}'); "
                                  "COMMIT;")
            return
        while version < SCHEMA_VERSION:
            with self.db:
                _MIGRATIONS[version](self.db)
                version += 1
                self.db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(version),))
            log.info("upgraded %s to schema %d", self.path, version)

    def close(self) -> None:
        if not self.readonly:
            try:
                self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the file alone is complete (archives)
            except sqlite3.DatabaseError:
                pass
        self.db.close()
        self._release_lock()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.db:
            yield self.db

    @contextmanager
    def writer(self) -> Iterator["ResultStore"]:
        """Hold the workspace's writer lock: a second `bench run` on the same folder stops with one line."""
        self._acquire_lock()
        try:
            yield self
        finally:
            self._release_lock()

    def _acquire_lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # no flock (Windows): one writer is the user's to ensure
            return
        lock = self.root / "lock"
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise StoreLockedError(f"another bench run (pid {holder}) is writing {self.root}; wait for it to "
                                   "finish or use another --out folder") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

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
        """identity: the metric's storage key (`Metric.fingerprint()`); meta["identity"]: its display name."""
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?)",
                            (identity, name, key, json.dumps(meta, default=str)))

    def add_item(self, task: str, item: str, domain: str, sample_rate: int | None, seconds: float | None,
                 text: str | None, label: str | None, path: str | None = None, signature: str | None = None) -> None:
        with self.db:
            if signature is None:
                row = self.db.execute("SELECT signature FROM items WHERE task=? AND item=?", (task, item)).fetchone()
                signature = row[0] if row else None
            self.db.execute("INSERT OR REPLACE INTO items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (task, item, domain, sample_rate, seconds, text, label, path, signature))

    def sync_item(self, task: str, item: str, signature: str) -> bool:
        """Record an item's content signature; if it differs from the stored one, forget everything
        computed from the old content (scores, failures, encodes of every codec, and their cached outputs).

        A signature is `AUDIO` or `AUDIO#ANNOTATIONS` (`bench.runner.item_signature`: the transcript and
        label a metric may read). When only the annotations changed, the codec's outputs (which depend on the
        audio alone) are kept and only the scores and metric failures are forgotten.

        Returns True when old results were discarded.
        """
        row = self.db.execute("SELECT signature FROM items WHERE task=? AND item=?", (task, item)).fetchone()
        if row is not None and row[0] == signature:
            return False
        stale = row is not None
        if stale and row[0] is not None and _audio_part(row[0]) == _audio_part(signature):
            with self.db:
                self.db.execute("DELETE FROM scores WHERE task=? AND item=?", (task, item))
                self.db.execute("DELETE FROM failures WHERE task=? AND item=? AND stage='metric'", (task, item))
                self.db.execute("UPDATE items SET signature=? WHERE task=? AND item=?", (signature, task, item))
            log.info("%s / %s: its transcript or label changed: its scores are recomputed", task, item)
            return True
        with self.db:
            if stale:
                paths = [r[0] for r in self.db.execute(
                    "SELECT path FROM encodes WHERE task=? AND item=? AND path IS NOT NULL", (task, item))]
                for table in ("encodes", "scores", "failures"):
                    self.db.execute(f"DELETE FROM {table} WHERE task=? AND item=?", (task, item))
                self.db.execute("UPDATE items SET signature=? WHERE task=? AND item=?", (signature, task, item))
            else:
                self.db.execute("INSERT INTO items (task, item, signature) VALUES (?, ?, ?)", (task, item, signature))
        if stale:
            for p in paths:
                Path(p).unlink(missing_ok=True)
            log.info("%s / %s changed on disk: its old results were discarded", task, item)
        return stale

    # -- per-item results -------------------------------------------------------------------------

    def cache_path(self, fingerprint: str, task: str, item: str, signature: str = "") -> Path:
        """Where one item's decoded audio and codes live: a digest of (task, item id, content), never a
        sanitised name (two ids must never share a file)."""
        digest = hashlib.sha256(f"{task}\0{item}\0{signature}".encode()).hexdigest()[:32]
        return self.cache_dir / fingerprint / digest[:2] / f"{digest}.npz"

    @staticmethod
    def save_output(path: Path, audio: np.ndarray, codes: np.ndarray | None, sample_rate: int,
                    bits_per_second: float) -> None:
        """Write decoded audio `[C, T]` and codes atomically (temp file, fsync, rename)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        share(fd)  # readable as an open() would make it, not 0600
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, audio=audio.astype(np.float32),
                         codes=codes if codes is not None else np.zeros((0,), np.int64),
                         sample_rate=np.int64(sample_rate), bits_per_second=np.float64(bits_per_second))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        try:  # the rename itself survives a power cut only once the folder is synced
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError:
            pass

    @staticmethod
    def load_output(path: Path) -> dict[str, Any] | None:
        """A cached output, or None when there is none or it cannot be read (then the file is removed,
        so the caller recomputes it)."""
        try:
            with np.load(path) as z:
                out = {"audio": z["audio"], "codes": z["codes"], "sample_rate": int(z["sample_rate"]),
                       "bits_per_second": float(z["bits_per_second"])}
            if out["audio"].ndim != 2:
                raise ValueError(f"audio has shape {out['audio'].shape}, expected [C, T]")
            return out
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            log.warning("cached output %s is unreadable (%s): discarded, recomputing", path, err)
            Path(path).unlink(missing_ok=True)
            return None

    def encode_row(self, fingerprint: str, task: str, item: str) -> dict[str, Any] | None:
        cur = self.db.execute("SELECT * FROM encodes WHERE fingerprint=? AND task=? AND item=?",
                              (fingerprint, task, item))
        row = cur.fetchone()
        if row is None:
            return None
        out = dict(zip([c[0] for c in cur.description], row))
        for key in ("fingerprint", "task", "item"):
            out.pop(key, None)
        return out

    def record_item(self, fingerprint: str, task: str, item: str, *, encode: dict[str, Any] | None = None,
                    scores: dict[str, dict[str, float]] | None = None,
                    failures: list[tuple[str, str, str]] | None = None) -> None:
        """Commit everything one item produced in one transaction.

        encode: the encodes row; scores: metric key -> {key: value}; failures: (stage, metric, error).
        """
        with self.db:
            if encode is not None:
                self.db.execute(
                    "INSERT OR REPLACE INTO encodes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (fingerprint, task, item, encode["bits_per_second"], encode["seconds"], encode.get("encode_s"),
                     encode.get("decode_s"), encode["sample_rate"], encode.get("path"), encode.get("tokens_per_second"),
                     _timed_on_text(encode.get("timed_on"))))
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

    def clear_failures(self, fingerprint: str, task: str, item: str | None = None, stage: str | None = None) -> None:
        """Forget the failures of (codec, task), or of one item, or of one stage of it."""
        sql, args = "DELETE FROM failures WHERE fingerprint=? AND task=?", [fingerprint, task]
        if item is not None:
            sql, args = sql + " AND item=?", args + [item]
        if stage is not None:
            sql, args = sql + " AND stage=?", args + [stage]
        with self.db:
            self.db.execute(sql, args)

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
                   n_skipped: int, extra: dict[str, Any] | None = None, *, items_digest: str | None = None,
                   codec_version: str | None = None, metric_version: str | None = None,
                   items: list[tuple[str, str]] | None = None) -> None:
        """One summary value of (codec, task, metric) with the item set and code versions it covers.

        items: the (item id, content signature) pairs it summarises (`bench merge` unites shards' sets).
        """
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO cells VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (fingerprint, task, metric, value, n, n_failed, n_skipped,
                             json.dumps(extra or {}, default=str), time.time(), items_digest, codec_version,
                             metric_version, json.dumps(items) if items is not None else None))

    def cell(self, fingerprint: str, task: str, metric: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT value, n, n_failed, n_skipped, extra, items_digest, codec_version, "
                              "metric_version, items FROM cells WHERE fingerprint=? AND task=? AND metric=?",
                              (fingerprint, task, metric)).fetchone()
        if row is None:
            return None
        cols = ("value", "n", "n_failed", "n_skipped", "extra", "items_digest", "codec_version", "metric_version",
                "items")
        out = dict(zip(cols, row))
        out["extra"] = json.loads(out["extra"] or "{}")
        out["items"] = [tuple(p) for p in json.loads(out["items"])] if out["items"] else None
        return out

    def cells(self):
        """Every summary cell joined with its codec and metric description, as a pandas DataFrame."""
        import pandas as pd

        sql = """
            SELECT c.fingerprint, c.task, c.metric, c.value, c.n, c.n_failed, c.n_skipped, c.extra,
                   c.items_digest, c.codec_version, c.metric_version, c.updated, c.items,
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

    def scores_frame(self):
        """Every per-item score: fingerprint, task, item, metric (key), key (value name), value."""
        import pandas as pd

        return pd.read_sql_query("SELECT * FROM scores", self.db)

    def encodes_frame(self):
        """Every item's encodes row: measured bits/s, seconds, timings, cache path."""
        import pandas as pd

        return pd.read_sql_query("SELECT * FROM encodes", self.db)

    # -- descriptions for reports -------------------------------------------------------------------

    def metric_rows(self) -> list[tuple[str, dict[str, Any]]]:
        """(metric key, meta) of every metric the workspace has seen, by key."""
        rows = self.db.execute("SELECT identity, meta FROM metrics ORDER BY identity").fetchall()
        return [(key, json.loads(meta or "{}")) for key, meta in rows]

    def codec_rows(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(fingerprint, label, meta) of every codec the workspace has seen."""
        rows = self.db.execute("SELECT fingerprint, label, meta FROM codecs ORDER BY label").fetchall()
        return [(fp, label, json.loads(meta or "{}")) for fp, label, meta in rows]

    def codec_records(self) -> list[dict[str, Any]]:
        """Every codec row whole: fingerprint, name, options (dict), label, nominal_kbps, meta (dict)."""
        cols = ("fingerprint", "name", "options", "label", "nominal_kbps", "meta")
        out = [dict(zip(cols, r)) for r in self.db.execute(f"SELECT {', '.join(cols)} FROM codecs")]
        for r in out:
            r["options"], r["meta"] = json.loads(r["options"] or "{}"), json.loads(r["meta"] or "{}")
        return out

    def metric_records(self) -> list[dict[str, Any]]:
        """Every metric row whole: identity (the storage key), name, key (primary value), meta (dict)."""
        cols = ("identity", "name", "key", "meta")
        out = [dict(zip(cols, r)) for r in self.db.execute(f"SELECT {', '.join(cols)} FROM metrics")]
        for r in out:
            r["meta"] = json.loads(r["meta"] or "{}")
        return out

    def runs(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT id, started, finished, config, environment FROM runs ORDER BY id").fetchall()
        return [{"id": r[0], "started": r[1], "finished": r[2], "config": json.loads(r[3] or "{}"),
                 "environment": json.loads(r[4] or "{}")} for r in rows]

    def item_counts(self, task: str) -> list[tuple[str, int]]:
        """(item, number of codecs that coded it) for one task, most-coded first."""
        return [(r[0], int(r[1])) for r in self.db.execute(
            "SELECT item, COUNT(*) c FROM encodes WHERE task=? GROUP BY item ORDER BY c DESC, item", (task,))]
