"""A pool of worker processes on this machine that survives crashes and never outlives its parent.

    with LocalPool("bench.runner:_worker_init", (spec, metric_ids), jobs=2) as pool:
        for key, result in pool.run((item.id, "bench.runner:_worker_item", (item, ids, cache)) for ...):
            if isinstance(result, WorkerCrash): ...   # the worker died on this item (twice): one failure

Each worker is `python -m bench.executors.worker` (see that module for the frame protocol): it never
re-imports the caller's `__main__`, so scripts without a main guard and scripts fed on stdin work. A
worker that dies on a job (a segfault or abort in a C extension) is replaced; the job is retried once in
a fresh worker and, if that one dies too, yields `WorkerCrash` instead of ending the run. An exception
raised by a job is a bug, not a crash: `run` raises `WorkerError` with the remote traceback.

Workers end with the pool (`close`, the context manager, garbage collection, interpreter exit) and with
the parent process itself (SIGKILL/SIGTERM of the parent included; see `worker._watch_parent`).
"""

from __future__ import annotations

import logging
import os
import pickle
import selectors
import signal
import subprocess
import sys
import weakref
from collections import deque
from pathlib import Path
from typing import Any, Iterable, Iterator

from bench.executors.worker import PARENT_ENV, PROTOCOL, PipeClosed, read_frame, write_frame, write_pickled

log = logging.getLogger(__name__)

ATTEMPTS = 2  # a job whose worker dies is run once more in a fresh worker, then reported as a crash
_END = object()
CLOSE_TIMEOUT = 5.0  # seconds an idle worker gets to exit after its stdin closes, before it is killed


class WorkerCrash(RuntimeError):
    """Yielded (not raised) as the result of a job whose worker process died, on both attempts."""


class WorkerError(RuntimeError):
    """Raised by `LocalPool.run` when a job raised in the worker; `remote_traceback` holds its traceback."""

    def __init__(self, message: str, remote_traceback: str = ""):
        super().__init__(message)
        self.remote_traceback = remote_traceback


def _death(returncode: int | None) -> str:
    """How a worker ended, in words: 'died with SIGSEGV (signal 11)' or 'exited with code 3'."""
    if returncode is None:
        return "closed its pipe"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "an unknown signal"
        return f"died with {name} (signal {-returncode})"
    return f"exited with code {returncode}"


class _Worker:
    """One worker process and the job it runs (None when idle)."""

    def __init__(self, init: str, init_args: tuple):
        env = dict(os.environ, **{PARENT_ENV: str(os.getpid())})
        root = str(Path(__file__).resolve().parents[2])  # where `bench` lives, for a source checkout
        if not {"site-packages", "dist-packages"} & set(Path(root).parts):
            env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.executors.worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, bufsize=0, env=env, close_fds=True)
        self.job: tuple | None = None  # (key, target, args, attempt)
        cwd = os.getcwd()
        try:
            write_frame(self.proc.stdin.fileno(), [p or cwd for p in sys.path])  # '' (python -c/-) is the cwd
            write_frame(self.proc.stdin.fileno(), (init, tuple(init_args)))
        except BrokenPipeError:
            pass  # it died at start (its stderr says why): the EOF on its stdout reports it as a crash

    @property
    def pid(self) -> int:
        return self.proc.pid

    def receive(self) -> tuple:
        return read_frame(self.proc.stdout.fileno())

    def end(self, kill: bool = False, timeout: float = CLOSE_TIMEOUT) -> int | None:
        """Close the pipes (an idle worker then exits), wait up to `timeout` s, kill if still there."""
        _stop(self.proc, kill, timeout)
        return self.proc.returncode


def _stop(proc: subprocess.Popen, kill: bool = False, timeout: float = CLOSE_TIMEOUT) -> None:
    for pipe in (proc.stdin, proc.stdout):
        try:
            pipe.close()
        except OSError:
            pass
    if kill and proc.poll() is None:
        proc.kill()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _stop_all(procs: dict) -> None:
    """The finalizer (gc, interpreter exit): end every worker still there, quickly."""
    for proc in list(procs.values()):
        _stop(proc, kill=True)
    procs.clear()


class LocalPool:
    """Up to `jobs` worker processes, each initialised once with `init(*init_args)` ("module:function").

    Workers start on demand and are kept across `run` calls (models load once). `started` counts the
    worker processes started so far (crash replacements included). Not thread-safe: use a pool from one
    thread, and on Linux keep that thread alive while the pool is in use (PR_SET_PDEATHSIG ends a worker
    when the thread that started it exits).
    """

    def __init__(self, init: str, init_args: tuple = (), jobs: int = 1):
        if int(jobs) < 1:
            raise ValueError(f"jobs must be at least 1, got {jobs!r}")
        self.init, self.init_args, self.jobs = init, tuple(init_args), int(jobs)
        self.started = 0
        self._idle: list[_Worker] = []
        self._procs: dict[int, subprocess.Popen] = {}  # pid -> process, for the finalizer
        self._finalizer = weakref.finalize(self, _stop_all, self._procs)

    @property
    def pids(self) -> list[int]:
        """The pids of the worker processes alive now."""
        return sorted(self._procs)

    def _start(self) -> _Worker:
        worker = _Worker(self.init, self.init_args)
        self.started += 1
        self._procs[worker.pid] = worker.proc
        log.debug("started worker %d (%d so far)", worker.pid, self.started)
        return worker

    def _retire(self, worker: _Worker, kill: bool = False) -> int | None:
        self._procs.pop(worker.pid, None)
        return worker.end(kill=kill)

    def run(self, jobs: Iterable[tuple[Any, str, tuple]]) -> Iterator[tuple[Any, Any]]:
        """Run `(key, "module:function", args)` jobs; yield `(key, value)` in completion order.

        value is the function's return value, or a `WorkerCrash` when the worker died on it twice.
        Raises `WorkerError` when a job raised. Leaving the loop early ends the workers still busy.
        """
        todo = iter(jobs)
        retry: deque[tuple] = deque()
        busy: dict[int, _Worker] = {}  # stdout fd -> worker
        selector = selectors.DefaultSelector()
        exhausted = False
        try:
            while True:
                while len(busy) < self.jobs:  # hand out work: retries first, then new jobs
                    if retry:
                        job = retry.popleft()
                    elif not exhausted and (nxt := next(todo, _END)) is not _END:
                        key, target, args = nxt
                        job = (key, target, tuple(args), 1)
                    else:
                        exhausted = True
                        break
                    data = pickle.dumps(job[:3], protocol=PROTOCOL)  # arguments that cannot pickle raise here
                    if job[3] > 1 and self._idle and len(busy) + len(self._idle) >= self.jobs:
                        self._retire(self._idle.pop(0))  # make room: a retry always gets a fresh worker
                    worker = self._idle.pop() if self._idle and job[3] == 1 else self._start()
                    busy[worker.proc.stdout.fileno()] = worker
                    selector.register(worker.proc.stdout, selectors.EVENT_READ)
                    worker.job = job
                    try:
                        write_pickled(worker.proc.stdin.fileno(), data)
                    except BrokenPipeError:
                        pass  # it died before reading the job: its EOF below counts as the crash
                if not busy:
                    return
                for event, _ in selector.select():
                    worker = busy.pop(event.fd)
                    selector.unregister(event.fileobj)
                    job, worker.job = worker.job, None
                    try:
                        _, status, value = worker.receive()
                    except PipeClosed:
                        how = _death(self._retire(worker, kill=True))
                        if job[3] < ATTEMPTS:
                            log.warning("worker %d %s on %r; retrying it in a fresh worker", worker.pid, how,
                                        job[0])
                            retry.append(job[:3] + (job[3] + 1,))
                            continue
                        yield job[0], WorkerCrash(f"worker process {how} while running this item "
                                                  f"({job[1]}, {ATTEMPTS} attempts)")
                        continue
                    self._idle.append(worker)
                    if status == "error":
                        last = value.strip().splitlines()[-1] if value.strip() else "an error"
                        raise WorkerError(f"{job[1]} raised {last} (in worker {worker.pid}, job {job[0]!r}); "
                                          f"the worker's traceback:\n{value}", value)
                    yield job[0], value
        finally:
            selector.close()
            for worker in busy.values():  # abandoned mid-job (error, break, KeyboardInterrupt)
                self._retire(worker, kill=True)

    def close(self) -> None:
        """End every worker: close its stdin, wait up to CLOSE_TIMEOUT s, then kill it."""
        idle, self._idle = self._idle, []
        for worker in idle:
            self._retire(worker)
        _stop_all(self._procs)

    def __enter__(self) -> "LocalPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
