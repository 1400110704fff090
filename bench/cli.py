"""Command line: `bench run | report | list | weights`. Logging and progress bars are set up here only.

Nothing heavy is imported at module level: `bench --help` and `bench list ...` never import torch.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
import time
from pathlib import Path

log = logging.getLogger("bench")

DEFAULT_TASKS = ("demo-speech", "demo-music", "demo-sound")

# Operating points of the default run (kbps; None = the codec's only/default point). Codecs that need
# weights join only when their weights are present.
DEFAULT_POINTS: dict[str, tuple[float | None, ...]] = {
    "identity": (None,),
    "opus": (6, 12),
    "mp3": (16, 32),
    "codec2": (1.2, 3.2),
    "encodec": (1.5, 6),
    "dac": (1.0,),
    "semanticodec": (0.63, 1.4),
}


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `bench: error: MESSAGE (see `bench run --help`)`, exit 2 (no usage dump)."""

    def error(self, message: str):  # noqa: D102 - argparse's hook
        print(f"bench: error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(2)


def positive_kbps(value) -> float:
    """A bitrate in kbps: a finite number > 0 (NaN, inf, 0 and negatives would pick a default point silently)."""
    try:
        kbps = float(value)
    except (TypeError, ValueError):
        kbps = math.nan
    if not (math.isfinite(kbps) and kbps > 0):
        raise ValueError(f"--bitrate must be a positive number of kbps, got {value}")
    return kbps


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


class _CodecAction(argparse.Action):
    """--codec NAME appends a codec; --bitrate K attaches to the --codec before it (several may follow)."""

    def __call__(self, parser, namespace, values, option_string=None):
        plan = getattr(namespace, "plan", None)
        if plan is None:
            plan = []
            namespace.plan = plan
        if option_string == "--codec":
            for spec in _split_codecs(values):
                plan.append([spec, []])
        else:
            if not plan:
                parser.error("--bitrate must follow a --codec (e.g. --codec opus --bitrate 6)")
            for v in values.split(","):
                try:
                    plan[-1][1].append(positive_kbps(v.strip()))
                except ValueError as err:
                    parser.error(str(err))


def _split_codecs(text: str) -> list[str]:
    """Split "opus,codec2" but keep "encodec:bandwidth=6,sample_rate=24000" whole."""
    if ":" in text:
        return [text]
    return [t for t in text.split(",") if t]


def _listish(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    out: list[str] = []
    for v in values:
        out.extend(p for p in v.split(",") if p) if ":" not in v else out.append(v)
    return out


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="bench", description="Evaluate low-bitrate neural audio codecs.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run codecs over tasks and score them (default: everything available)")
    r.add_argument("--codec", action=_CodecAction, metavar="NAME[:OPTS]",
                   help="codec, e.g. opus, encodec:bandwidth=6, semanticodec:token_rate=50 (repeatable)")
    r.add_argument("--bitrate", action=_CodecAction, metavar="KBPS",
                   help="operating point for the --codec before it; nearest supported is used (repeatable)")
    r.add_argument("--task", action="append", metavar="NAME", help="task, e.g. demo-speech or files:DIR (repeatable)")
    r.add_argument("--metric", action="append", metavar="NAME", help="metric, e.g. mel, wer, visqol (repeatable)")
    r.add_argument("--out", default="bench-out", help="workspace folder (results.sqlite, cache, report)")
    r.add_argument("--limit", type=int, help="use N items of each task (the first N; see --subset-seed)")
    r.add_argument("--device", default="cpu", help="torch device for neural codecs (cpu, cuda, cuda:1)")
    r.add_argument("--jobs", type=int, help="worker processes (default: 2 for weight-free codecs, 1 for neural ones, "
                   "which then take several items per call where they can, e.g. semanticodec 8; on Ray with "
                   "--gpus-per-worker: one actor per GPU share)")
    r.add_argument("--weights", metavar="PATH", help="checkpoint file or folder for the neural codec(s)")
    r.add_argument("--retry-failed", action="store_true", help="retry items recorded as failures")
    r.add_argument("--max-seconds", type=_positive_seconds, metavar="S",
                   help="longest item scored (default 600); longer items are recorded as failures")
    r.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    r.add_argument("--preset", metavar="NAME", help="a paper's protocol: semanticodec-paper (codecs with weights "
                                                    "here, dataset tasks under $BENCH_DATA, metrics); --codec, "
                                                    "--task and --metric replace its parts")
    r.add_argument("--subset-seed", type=int, metavar="S", help="with --limit N: N items drawn with seed S "
                                                                "(the same on every machine) instead of the first N")
    r.add_argument("--shard", metavar="K/N", help="run the K-th of N disjoint parts of the items into this --out "
                                                  "(array jobs); unite them with bench merge")
    r.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local: worker processes here (default); ray: Ray actors (pip install -e '.[ray]')")
    r.add_argument("--address", help="with --executor ray: a running Ray cluster (auto, or ray://HOST:10001)")
    r.add_argument("--gpus-per-worker", type=float, default=0.0, metavar="G",
                   help="with --executor ray: GPUs per actor (1: one actor per GPU)")
    r.add_argument("--channel", action="append", metavar="SPEC",
                   help="packet-loss channel loss=P[,burst=B,seed=S,packet_ms=M,conceal=auto|repeat|zero|plc|silence]"
                        "; repeatable; the plain codec (loss 0) always runs too")

    mg = sub.add_parser("merge", help="unite the workspaces of bench run --shard K/N into the results of one run")
    mg.add_argument("workspaces", nargs="+", metavar="WS", help="shard workspaces")
    mg.add_argument("--out", required=True, help="the merged workspace (a new folder)")
    mg.add_argument("--allow-partial", action="store_true", help="merge even when shards are missing (marked)")
    mg.add_argument("--no-report", action="store_true", help="do not write the report of the merged workspace")

    rep = sub.add_parser("report", help="write tables and plots of a workspace (read only: archives work)")
    rep.add_argument("--out", default="bench-out", help="workspace folder")
    rep.add_argument("--dest", help="folder for the report files (default: OUT/report)")

    ex = sub.add_parser("export", help="write a workspace's summary as versioned JSON (for bench compare)")
    ex.add_argument("--out", default="bench-out", help="workspace folder")
    ex.add_argument("-o", "--output", default="-", help="file to write (default: standard output)")

    cp = sub.add_parser("compare", help="compare two summaries; exit 1 on a regression beyond tolerance")
    cp.add_argument("baseline", help="summary JSON written by bench export")
    cp.add_argument("current", nargs="?", help="summary JSON (default: export the workspace given by --out)")
    cp.add_argument("--out", default="bench-out", help="workspace to export when CURRENT is not given")
    cp.add_argument("--tolerance", action="append", metavar="METRIC=VALUE",
                    help="absolute (wer=0.01) or relative (mel=5%%) tolerance; repeatable")
    cp.add_argument("--allow-missing", action="store_true", help="rows absent from CURRENT are not a failure")
    cp.add_argument("--allow-fewer-items", action="store_true",
                    help="a row that scored fewer items than the baseline (n dropped) is not a failure")
    cp.add_argument("--allow-failures", action="store_true",
                    help="a row with more failed items than the baseline is not a failure")

    ls = sub.add_parser("list", help="list codecs, metrics or tasks (with metadata)")
    ls.add_argument("what", choices=["codecs", "metrics", "tasks"])

    w = sub.add_parser("weights", help="download or list model weights")
    wsub = w.add_subparsers(dest="weights_command", required=True)
    wf = wsub.add_parser("fetch", help="download the official checkpoints of a codec (needs a network)")
    wf.add_argument("name", help="codec name: semanticodec, encodec, dac")
    wf.add_argument("--dest", help="folder to download into (default: the bench cache)")
    wf.add_argument("--variant", help="one variant only (e.g. 24khz, 16khz, tokenrate_100)")
    wf.add_argument("--trust-unpinned", action="store_true",
                    help="download files that have no pinned sha256 (main, as it is now) and record their digests")
    wsub.add_parser("list", help="which weights are present in the cache")
    wr = wsub.add_parser("random", help="write RANDOM weights in a codec's official layout (wiring tests only)")
    wr.add_argument("name", choices=["encodec", "dac", "semanticodec", "mimi", "xcodec", "xcodec2", "neucodec",
                                     "wavtokenizer", "higgs"])
    wr.add_argument("--dest", required=True, help="folder to write into; then run with --weights DEST")
    wr.add_argument("--variant", help="encodec: 24000|48000; dac: 16000|24000|44100; semanticodec: RATE/VOCAB "
                                      "(default 50/4096); xcodec: speech|general")
    wr.add_argument("--tiny", action="store_true", help="tiny configuration (semanticodec: load with :tiny)")

    from bench.train.cli import add_train_parser  # argparse only: no torch at --help time

    add_train_parser(sub)  # bench train semanticodec codebook|...
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s" if args.verbose else "bench: %(message)s")
    if not args.verbose:
        for noisy in ("numba", "matplotlib", "faster_whisper", "httpx", "urllib3", "torch"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    previous = _on_sigterm_interrupt()
    try:
        return {"run": cmd_run, "merge": cmd_merge, "report": cmd_report, "list": cmd_list, "weights": cmd_weights,
                "export": cmd_export, "compare": cmd_compare, "train": cmd_train}[args.command](args)
    except KeyboardInterrupt:
        print(_interrupted_line(getattr(args, "finished", None)), file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - user-facing errors: one line, what to do
        line = _error_line(err)
        if line is None or args.verbose:
            raise
        print(f"bench: error: {line}", file=sys.stderr)
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _on_sigterm_interrupt():
    """SIGTERM (kill, a scheduler's stop, `timeout`) takes the Ctrl-C path: KeyboardInterrupt, the same cleanup
    and message. A second SIGTERM while cleaning up ends the process at once. Returns the previous handler."""

    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (an embedding application): leave signals alone
        return None


def _interrupted_line(finished: "_Finished | None") -> str:
    if finished is None:
        return "bench: interrupted"
    n = finished.count
    items = "1 item finished is stored" if n == 1 else f"{n} items finished are stored"
    return f"bench: interrupted: {items}; run the same command again to resume"


def _error_line(err: BaseException) -> str | None:
    """The one line printed for an error a user can act on; None for a bug (the traceback is shown)."""
    import pickle

    from bench.audio import AudioError
    from bench.codecs.base import CodecError, WeightsMissingError
    from bench.registry import UnknownNameError
    from bench.store import StoreError

    if isinstance(err, pickle.UnpicklingError):  # torch.load(weights_only=True) refused a file
        return ("a weights file is not a checkpoint in the official layout, or is damaged (the safe loader refused "
                "it); fetch it again with `bench weights fetch NAME`, or check the file given to --weights")
    if isinstance(err, PermissionError):
        where = f" {err.filename}" if err.filename else ""
        return (f"permission denied:{where}; make it readable (and its folder writable for a workspace), or choose "
                "another --out folder")
    if isinstance(err, OSError) and not isinstance(err, FileNotFoundError):
        where = f": {err.filename}" if err.filename else ""
        return f"{err.strerror or err}{where}"
    if isinstance(err, (StoreError, UnknownNameError, CodecError, WeightsMissingError, FileNotFoundError, AudioError,
                        ValueError, ImportError)):
        return " ".join(str(err).split("\n")[0].split()) or type(err).__name__
    return None


class _Finished:
    """Counts the items a run has finished (stored or found stored), for the interrupted line; wraps the
    progress bar when there is one."""

    def __init__(self, bar_factory=None):
        self.count = 0
        self._factory = bar_factory

    def __call__(self, total: int, desc: str):
        bar = self._factory(total, desc) if self._factory else None
        counter = self

        class _Bar:
            def update(self, n: int = 1) -> None:
                counter.count += n
                if bar is not None:
                    bar.update(n)

            def close(self) -> None:
                if bar is not None:
                    bar.close()

        return _Bar()


def _check_workspace(out: str) -> None:
    """A usable --out for `bench run`, checked before any codec is built: a folder (made if missing) that this
    process may write."""
    p = Path(out)
    if p.exists() and not p.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder; give a folder for the workspace (it is created if "
                         "missing)")
    if p.is_dir() and not os.access(p, os.W_OK | os.X_OK):
        raise ValueError(f"the workspace {out} is not writable; give a writable --out folder (bench report and "
                         "bench export can read it as it is)")


# -- run --------------------------------------------------------------------------------------------

def default_plan() -> list[str]:
    """Every registered codec whose weights are present, at the default operating points."""
    from bench.codecs import CODECS

    specs = []
    for name, points in DEFAULT_POINTS.items():
        if name not in CODECS:
            continue
        try:
            cls = CODECS.get(name)
        except ImportError as err:  # a broken optional install must not stop the weight-free codecs
            log.warning("%s: cannot be imported (%s); left out of the default run", name, err)
            continue
        available = getattr(cls, "weights_available", None)
        if available is not None and not available():
            log.info("%s: weights not present, left out of the default run (bench weights fetch %s)", name, name)
            continue
        specs += [name if p is None else f"{name}:bitrate={p:g}" for p in points]
    return specs


def _plan_specs(plan: list[list], weights: str | None) -> list[str]:
    from bench.codecs import CODECS
    from bench.registry import format_spec, parse_spec

    specs = []
    for spec, bitrates in plan:
        name, options = parse_spec(spec)
        entry = CODECS.entry(name)  # unknown names fail here, before any work
        if "bitrate" in options:  # NAME:bitrate=K is the same as --codec NAME --bitrate K
            options["bitrate"] = positive_kbps(options["bitrate"])
        if weights and entry.meta.get("needs_weights"):
            options.setdefault("weights", weights)
        for b in bitrates or [None]:
            opts = dict(options)
            if b is not None:
                opts["bitrate"] = b
            specs.append(format_spec(name, opts))
    return specs


def cmd_run(args) -> int:
    from bench.runner import run

    _check_workspace(args.out)
    plan = getattr(args, "plan", None)
    preset = args.preset
    if preset:  # the preset fills in what is not named; its codecs are those with weights here
        from bench.tasks.presets import available_codecs, get_preset

        codecs = _plan_specs(plan, args.weights) if plan else available_codecs(get_preset(preset), args.weights)
        tasks, metrics = _listish(args.task), _listish(args.metric)
    else:
        codecs = _plan_specs(plan, args.weights) if plan else default_plan()
        tasks = _listish(args.task) or list(DEFAULT_TASKS)
        metrics = _listish(args.metric)
    log.info("codecs: %s", ", ".join(codecs))
    log.info("tasks: %s; metrics: %s", ", ".join(tasks or ["the preset's"]),
             ", ".join(metrics) if metrics else "the preset's" if preset else "every applicable default")
    started = time.perf_counter()
    args.finished = _Finished(_tqdm_factory())
    res = run(codecs=codecs, tasks=tasks, metrics=metrics, out=args.out, preset=preset, limit=args.limit,
              subset_seed=args.subset_seed, shard=args.shard, device=args.device, jobs=args.jobs,
              executor=args.executor, address=args.address, gpus_per_worker=args.gpus_per_worker,
              progress=args.finished, retry_failed=args.retry_failed, channel=args.channel,
              max_seconds=args.max_seconds)  # None: the runner's default, bench.audio.DEFAULT_MAX_SECONDS
    try:
        frame = res.to_frame()
        from bench.reports.tables import markdown_tables, sort_for_table

        if not frame.empty:
            print(markdown_tables(sort_for_table(frame)))
        n_fail = len(res.failures())
        wall = time.perf_counter() - started
        print(f"{res.codec_work} item(s) ran through a codec (the rest came from the cache); "
              f"{n_fail} failure(s) recorded; wall time {wall:.1f} s")
        if not args.no_report:
            from bench.reports.build import write_report

            paths = write_report(res.store)
            print(f"report: {paths['markdown']} (plots in {paths['markdown'].parent / 'plots'}, "
                  f"summary {paths['csv']}, failures {paths['failures']})")
    finally:
        res.store.close()  # checkpointed: results.sqlite alone is the whole workspace (copies, archives)
    return 0


def _tqdm_factory():
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return lambda total, desc: tqdm(total=total, desc=desc, unit="item", leave=False)


def cmd_train(args) -> int:
    from bench.train.cli import cmd_train as run_stage

    return run_stage(args)


def cmd_merge(args) -> int:
    from bench.merge import merge

    summary = merge(args.workspaces, args.out, allow_partial=args.allow_partial)
    for note in summary.notes:
        log.warning("%s", note)
    print(f"merged {summary.workspaces} workspace(s) into {args.out}: {summary.cells} cells, {summary.scores} "
          f"scores, {summary.files} cached outputs")
    if not args.no_report:
        from bench.reports.build import write_report
        from bench.store import ResultStore

        store = ResultStore(args.out, readonly=True)
        try:
            print(f"report: {write_report(store)['markdown']}")
        finally:
            store.close()
    return 0


def cmd_report(args) -> int:
    """Read the workspace without writing to it (an archived, read-only one works); the report files go to
    --dest (default OUT/report), which must be writable."""
    from bench.reports.build import write_report
    from bench.store import ResultStore

    if not (Path(args.out) / "results.sqlite").exists():
        raise FileNotFoundError(f"no results in {args.out}; run `bench run --out {args.out}` first")
    dest = Path(args.dest) if args.dest else Path(args.out) / "report"
    writable = next((d for d in [dest, *dest.parents] if d.exists()), Path("."))
    if not writable.is_dir() or not os.access(writable, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write the report into {dest} ({writable} is not a writable folder); pass "
                         "--dest DIR to write it elsewhere")
    paths = write_report(ResultStore(args.out, readonly=True), out_dir=dest)
    print(f"report: {paths['markdown']}")
    return 0


def _workspace_summary(out: str) -> dict:
    from bench.reports.compare import export_summary
    from bench.reports.frame import summary_frame
    from bench.runner import environment
    from bench.store import ResultStore

    if not (Path(out) / "results.sqlite").exists():
        raise FileNotFoundError(f"no results in {out}; run `bench run --out {out}` first")
    return export_summary(summary_frame(ResultStore(out, readonly=True)), environment())


def cmd_export(args) -> int:
    import json

    text = json.dumps(_workspace_summary(args.out), indent=1, allow_nan=False)  # NaN is not JSON: fail, never write it
    if args.output == "-":
        print(text)
    else:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
        print(f"summary written to {args.output}", file=sys.stderr)
    return 0


def cmd_compare(args) -> int:
    from bench.reports.compare import compare, diff_table, load_summary, parse_tolerances

    baseline = load_summary(args.baseline)
    current = load_summary(args.current) if args.current else _workspace_summary(args.out)
    diffs = compare(baseline, current, parse_tolerances(args.tolerance), allow_fewer_items=args.allow_fewer_items,
                    allow_failures=args.allow_failures)
    print(diff_table(diffs))
    bad = [d for d in diffs if d.regression or (d.status == "missing" and not args.allow_missing)]
    print(f"{len(bad)} regression(s) beyond tolerance" if bad else "no regression beyond tolerance")
    return 1 if bad else 0


# -- list -------------------------------------------------------------------------------------------

def cmd_list(args) -> int:
    if args.what == "codecs":
        from bench.codecs import CODECS

        rows = [("name", "sample rate", "kbps (operating points)", "frames/s", "weights", "licence")]
        for e in CODECS.entries():
            m = e.meta
            points = ", ".join(f"{p:g}" for p in m.get("operating_points", ())) or "-"
            rate = m.get("sample_rate")
            rows.append((e.name, "any" if rate is None else str(rate), points, str(m.get("frame_rate") or "-"),
                         "needed" if m.get("needs_weights") else "none", str(m.get("licence", ""))))
    elif args.what == "metrics":
        from bench.metrics import METRICS

        rows = [("name", "sample rate", "better", "domains", "description")]
        for e in METRICS.entries():
            m = e.meta
            rows.append((e.name, str(m.get("sample_rate") or "codec"), "higher" if m.get("higher_is_better") else "lower",
                         "/".join(m.get("domains", ())) or "all", str(m.get("description", ""))))
    else:
        from bench.tasks import TASKS

        rows = [("name", "domain", "description")]
        for e in TASKS.entries() + TASKS.prefix_entries():
            name = e.name if e in TASKS.entries() else f"{e.name}:PATH"
            rows.append((name, str(e.meta.get("domain", "")), str(e.meta.get("description", ""))))
    _print_rows(rows)
    return 0


def _print_rows(rows: list[tuple[str, ...]], max_width: int = 64) -> None:
    """A plain table; cells longer than max_width wrap onto continuation lines."""
    import textwrap

    wrapped = [[textwrap.wrap(c, max_width) or [""] for c in r] for r in rows]
    widths = [max(len(line) for r in wrapped for line in r[i]) for i in range(len(rows[0]))]
    for j, r in enumerate(wrapped):
        for k in range(max(len(c) for c in r)):
            print("  ".join((c[k] if k < len(c) else "").ljust(w) for c, w in zip(r, widths)).rstrip())
        if j == 0:
            print("  ".join("-" * w for w in widths))


# -- weights ----------------------------------------------------------------------------------------

def cmd_weights(args) -> int:
    from bench.codecs import weights

    if args.weights_command == "random":
        from bench.codecs.random_weights import write_random

        path = write_random(args.name, args.dest, variant=args.variant, tiny=args.tiny)
        print(f"RANDOM weights for {args.name} written to {path} (for wiring tests; the numbers mean nothing)")
        return 0
    if args.weights_command == "fetch":
        path = weights.fetch(args.name, dest=args.dest, variant=args.variant, trust_unpinned=args.trust_unpinned)
        print(f"weights for {args.name} in {path}")
        return 0
    rows = [("codec", "variant", "present", "where")]
    for r in weights.list_weights():
        rows.append((r["codec"], r["variant"], "yes" if r["present"] else "no", str(r["where"])))
    _print_rows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
