"""Ray actors as workers: the same interface as `LocalPool`, on a local Ray cluster or an existing one.

    with RayPool("bench.workers:_worker_init", (spec, metric_ids), jobs=4, address="auto",
                 gpus_per_worker=1) as pool:
        for key, result in pool.run((item.id, "bench.workers:_worker_item", (item, ids, cache)) for ...):
            if isinstance(result, WorkerCrash): ...   # the actor died on this item (twice): one failure

Each worker is a Ray actor that calls `init(*init_args)` once (the codec model loads once per actor) and
then runs `(key, "module:function", args)` jobs in submission order. `run` keeps up to `depth` jobs queued
on every actor and yields `(key, value)` as results complete (`ray.wait`); the caller alone writes the
result store, so resume, caching and failure rows are those of a local run.

Crashes. An actor whose process dies (a segfault, `os._exit`, SIGKILL from outside, the OOM killer, its
node lost) costs only the jobs queued on it: those it finished are yielded as usual, the others run again,
each alone on an actor with nothing else queued, and the dead actor is replaced by a fresh one. (Alone,
because a result that was computed just before the process died can be lost with it: which of the queued
jobs killed it cannot be told, but a job that dies running alone killed its worker itself.) A job whose
actor dies on both attempts (`ATTEMPTS`, the last alone) yields `WorkerCrash`, as in LocalPool. An
exception raised by a job is a bug, not a crash: `run` raises `WorkerError` with the remote traceback (an
`init` that raised is reported with every job).

Connecting. `address=None` joins the Ray runtime this process already started (`ray.init` called before)
or starts a local one with room for `jobs` actors (dashboard off, Ray's logging at WARNING); it is left
running when the pool closes, so the next pool (the runner makes one per codec) starts at once, and it ends
with this process. `address="auto"` or `"HOST:6379"` joins a running cluster (`ray start`), `"ray://HOST:10001"`
goes through the Ray client. See docs/cluster.md for a Slurm allocation. Every node needs the same Python
environment with `bench` installed, and the workspace (`--out`: decoded-audio cache files are written by
the workers) and the datasets on a filesystem that every node sees at the same path.
"""

from __future__ import annotations

import logging
import math
import os
import re
import sys
import traceback
from collections import deque
from typing import Any, Iterable, Iterator

from bench.executors.local import ATTEMPTS, WorkerCrash, WorkerError

log = logging.getLogger(__name__)

DEPTH = 2  # jobs queued per actor: one running, one waiting, so an actor never idles on the driver
WAIT_NOTE = 300.0  # seconds without any result before the pool logs what it waits for
DEATH_TIMEOUT = 60.0  # seconds to wait for the results of a dead actor's other jobs to settle
INSTALL_HINT = "the ray executor needs Ray: pip install 'bench[ray]' (or pip install 'ray>=2.9')"

__all__ = ["RayPool", "WorkerCrash", "WorkerError"]


def _ray():
    try:
        import ray
    except ImportError as err:
        raise ImportError(f"{INSTALL_HINT} ({err})") from None
    return ray


class _Actor:
    """The code inside each Ray actor (wrapped with `ray.remote` by RayPool)."""

    def __init__(self, sys_path: list[str], init: str, init_args: tuple, threads: int):
        os.dup2(2, 1)  # what user code prints goes to the worker's stderr log, never into the driver's stdout
        for path in sys_path:  # the driver's modules (tests, plugins) import here too, where the path exists
            if path not in sys.path and os.path.isdir(path):
                sys.path.append(path)
        self.threads = max(1, int(threads))
        self.init_error = None
        try:
            from bench.executors.worker import resolve

            resolve(init)(*init_args)
        except (Exception, SystemExit):  # noqa: BLE001 - reported with every job, so the driver raises it
            self.init_error = "the worker's init function failed:\n" + traceback.format_exc()

    def where(self) -> tuple[int, str]:
        """(pid, node IP address) of this actor's process."""
        import ray

        return os.getpid(), ray.util.get_node_ip_address()

    def run(self, target: str, args: tuple) -> tuple[str, Any]:
        """("ok", value) or ("error", traceback text): an exception never kills the actor."""
        try:
            if self.init_error:
                raise RuntimeError(self.init_error)
            torch = sys.modules.get("torch")
            if torch is not None and torch.get_num_threads() != self.threads:
                torch.set_num_threads(self.threads)
            from bench.executors.worker import resolve

            return "ok", resolve(target)(*args)
        except (Exception, SystemExit):  # noqa: BLE001 - the driver re-raises it as WorkerError
            return "error", traceback.format_exc()


class _Slot:
    """One actor and the jobs queued on it, oldest first: (ref, (key, target, args, attempt))."""

    def __init__(self, actor):
        self.actor = actor
        self.where_ref = actor.where.remote()  # answered before any job: the actor runs calls in order
        self.queued: deque[tuple[Any, tuple]] = deque()

    def where(self, timeout: float | None = None) -> tuple[int | None, str | None]:
        """(pid, node IP) of the actor, or (None, None) when it is not known within `timeout` s."""
        import ray

        try:
            return tuple(ray.get(self.where_ref, timeout=timeout))
        except ray.exceptions.RayError:
            return None, None


def _cause(err: BaseException) -> str:
    """A Ray error in one line: its class, the first line of its message, and the worker's exit type, pid
    and node when Ray says them ("ActorDiedError: The actor died ... (SYSTEM_ERROR, pid 123 on 10.0.0.2)")."""
    text = str(err).strip()
    first = text.splitlines()[0][:300] if text else ""
    found = {k: re.search(rf"{pat}\s*(\S+)", text) for k, pat in
             (("exit", "Worker exit type:"), ("pid", r"\bpid:"), ("ip", r"\bip:"))}
    found = {k: m.group(1) for k, m in found.items() if m}
    detail = ", ".join(x for x in (found.get("exit"), found.get("pid") and f"pid {found['pid']}" +
                                   (f" on {found['ip']}" if found.get("ip") else "")) if x)
    return f"{type(err).__name__}: {first}" + (f" ({detail})" if detail else "")


class RayPool:
    """`jobs` Ray actors, each initialised once with `init(*init_args)` ("module:function").

    address: None (this process's Ray runtime, or a new local one), "auto", "HOST:PORT" or "ray://HOST:PORT".
    gpus_per_worker: GPUs Ray reserves for each actor (1: one actor per GPU; 0.5: two share one; 0: CPU only).
    Ray sets CUDA_VISIBLE_DEVICES in each actor, so device "cuda" there is the actor's own GPU.
    cpus_per_worker: CPUs reserved per actor, and its torch thread count (at least 1).
    jobs: the number of actors; None fits the cluster (its GPUs / gpus_per_worker, else CPUs / cpus_per_worker).
    depth: jobs queued on each actor at once.

    Actors start with the pool and are kept across `run` calls. `started` counts actors started so far
    (crash replacements included). Not thread-safe: use a pool from one thread.
    """

    def __init__(self, init: str, init_args: tuple = (), jobs: int | None = 1, *, address: str | None = None,
                 gpus_per_worker: float = 0.0, cpus_per_worker: float = 1.0, depth: int = DEPTH):
        if jobs is not None and (isinstance(jobs, bool) or int(jobs) < 1):
            raise ValueError(f"jobs must be at least 1 (or None to fit the cluster), got {jobs!r}")
        if gpus_per_worker < 0 or cpus_per_worker < 0:
            raise ValueError(f"gpus_per_worker and cpus_per_worker must be >= 0, got {gpus_per_worker!r} "
                             f"and {cpus_per_worker!r}")
        if int(depth) < 1:
            raise ValueError(f"depth must be at least 1, got {depth!r}")
        self.init, self.init_args = init, tuple(init_args)
        self.gpus_per_worker, self.cpus_per_worker = float(gpus_per_worker), float(cpus_per_worker)
        self.depth = int(depth)
        ray = _ray()
        self._connect(ray, address, jobs)
        self.jobs = int(jobs) if jobs is not None else self._fit(ray)
        self._check_resources(ray)
        options = {"num_cpus": self.cpus_per_worker, "max_restarts": 0, "max_task_retries": 0}
        if self.gpus_per_worker:
            options["num_gpus"] = self.gpus_per_worker
        self._actor_class = ray.remote(**options)(_Actor)
        self._init_ref = ray.put(self.init_args)  # once in the object store, shared by every actor
        self._sys_path = [p or os.getcwd() for p in sys.path]
        self.started = 0
        self._slots = [_Slot(self._new_actor()) for _ in range(self.jobs)]

    # -- the cluster ----------------------------------------------------------------------------------

    def _connect(self, ray, address: str | None, jobs: int | None) -> None:
        if ray.is_initialized():
            return
        quiet = {"logging_level": logging.WARNING, "log_to_driver": True}
        if address:
            log.info("connecting to the Ray cluster at %s", address)
            ray.init(address=address, **quiet)
            return
        cpus = max(1, math.ceil((jobs or os.cpu_count() or 1) * max(self.cpus_per_worker, 0.0)) or 1)
        log.info("starting a local Ray runtime with %d CPUs", cpus)
        ray.init(num_cpus=cpus, include_dashboard=False, **quiet)

    def _fit(self, ray) -> int:
        total = ray.cluster_resources()
        if self.gpus_per_worker:
            n = int(total.get("GPU", 0) // self.gpus_per_worker)
        else:
            n = int(total.get("CPU", 0) // self.cpus_per_worker) if self.cpus_per_worker else os.cpu_count() or 1
        if n < 1:
            raise ValueError(f"the Ray cluster has {total.get('GPU', 0):g} GPUs and {total.get('CPU', 0):g} CPUs: "
                             f"no room for one worker of {self.gpus_per_worker:g} GPU and {self.cpus_per_worker:g} "
                             "CPU; lower --gpus-per-worker, or start the cluster with --num-gpus")
        return n

    def _check_resources(self, ray) -> None:
        """One clear error instead of actors that wait forever for resources the cluster does not have."""
        total = ray.cluster_resources()
        for name, per in (("GPU", self.gpus_per_worker), ("CPU", self.cpus_per_worker)):
            have = float(total.get(name, 0.0))
            if per * self.jobs > have + 1e-9:
                fix = ("lower --jobs or --gpus-per-worker, or give the cluster more GPUs (ray start --num-gpus N)"
                       if name == "GPU" else "lower --jobs, or give the cluster more CPUs (ray start --num-cpus N)")
                raise ValueError(f"{self.jobs} Ray workers of {per:g} {name} each need {per * self.jobs:g} {name}s; "
                                 f"the cluster has {have:g}: {fix}")

    def _new_actor(self):
        self.started += 1
        return self._actor_class.remote(self._sys_path, self.init, self._init_ref, self.cpus_per_worker)

    def _replace(self, slot: _Slot) -> None:
        """Kill the slot's actor (it may only be unreachable: never let two run one job) and start a new one."""
        ray = _ray()
        try:
            ray.kill(slot.actor, no_restart=True)
        except Exception:  # noqa: BLE001 - already gone
            pass
        fresh = _Slot(self._new_actor())
        slot.actor, slot.where_ref = fresh.actor, fresh.where_ref

    @property
    def workers(self) -> list[tuple[int, str]]:
        """(pid, node IP) of each actor now (waits for actors still starting)."""
        return [slot.where() for slot in self._slots]

    @property
    def pids(self) -> list[int]:
        """The pids of the actors' processes (each on its own node)."""
        return [pid for pid, _ in self.workers]

    # -- running jobs ---------------------------------------------------------------------------------

    def run(self, jobs: Iterable[tuple[Any, str, tuple]]) -> Iterator[tuple[Any, Any]]:
        """Run `(key, "module:function", args)` jobs; yield `(key, value)` in completion order.

        value is the function's return value, or a `WorkerCrash` when an actor died running it twice.
        Raises `WorkerError` when a job raised. Leaving the loop early ends the actors still busy.
        """
        ray = _ray()
        todo = iter(jobs)
        again: deque[tuple] = deque()  # jobs to run again, each alone: (key, target, args, attempt)
        pending: dict[Any, _Slot] = {}  # ref -> the slot it is queued on
        exhausted = False

        def next_job() -> tuple | None:
            nonlocal exhausted
            if exhausted:
                return None
            nxt = next(todo, None)
            if nxt is None:
                exhausted = True
                return None
            key, target, args = nxt
            return key, target, tuple(args), 1

        try:
            while True:
                for slot in self._slots:  # hand out work (see `_hand_out`)
                    while (job := self._hand_out(slot, again, next_job)) is not None:
                        ref = slot.actor.run.remote(job[1], job[2])
                        slot.queued.append((ref, job))
                        pending[ref] = slot
                if not pending:
                    return
                ready = self._wait(ray, pending)
                slot = pending[ready]
                status, value = _settle(ray, ready)
                if status == "died":
                    yield from self._died(ray, slot, value, pending, again)
                    continue
                del pending[ready]
                job = next(j for r, j in slot.queued if r == ready)
                slot.queued = deque(q for q in slot.queued if q[0] != ready)
                yield _result(job, status, value, slot.where(timeout=0) if status == "error" else None)
        finally:
            for slot in self._slots:
                if slot.queued:  # abandoned mid-job (an error, break, KeyboardInterrupt): end that actor
                    slot.queued.clear()
                    self._replace(slot)

    def _wait(self, ray, pending: dict):
        """The next finished job's ref; says so every WAIT_NOTE s while none finishes (actors that wait for
        resources another job holds, or a model still loading)."""
        waited = 0.0
        while True:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=WAIT_NOTE)
            if ready:
                return ready[0]
            waited += WAIT_NOTE
            log.warning("no Ray job finished in %.0f s (%d queued on %d workers); free in the cluster: %s",
                        waited, len(pending), len(self._slots), ray.available_resources())

    def _hand_out(self, slot: _Slot, again: deque, next_job) -> tuple | None:
        """The next job for `slot`, or None. A job to run again goes alone to an actor with nothing queued
        (actors drain until one is free), so a second death is the fault of that job and no other; new jobs
        fill each actor up to `depth` while no job waits to run again."""
        if slot.queued and slot.queued[0][1][3] > 1:
            return None  # an actor running a job again takes nothing else
        if again:
            return again.popleft() if not slot.queued else None
        return next_job() if len(slot.queued) < self.depth else None

    def _died(self, ray, slot: _Slot, cause: str, pending: dict, again: deque) -> Iterator[tuple[Any, Any]]:
        """The slot's actor died: yield what it finished, run the rest again, each alone, or give up on a job
        that was running alone for the second time (WorkerCrash)."""
        pid, node = slot.where(timeout=5.0)  # answered, or failed at once: the actor is dead
        who = f"Ray worker {pid} on {node}" if pid else "a Ray worker"
        queued, slot.queued = list(slot.queued), deque()
        for ref, _ in queued:
            pending.pop(ref, None)
        self._replace(slot)
        for ref, job in queued:
            status, value = _settle(ray, ref)
            if status != "died":  # it finished before the actor died
                yield _result(job, status, value, (pid, node))
            elif job[3] < ATTEMPTS:
                log.warning("%s died with %r in flight (%s); running it again in a fresh worker", who, job[0], value)
                again.append(job[:3] + (job[3] + 1,))
            else:
                yield job[0], WorkerCrash(f"{who} died while running this item ({job[1]}, {ATTEMPTS} attempts, "
                                          f"the last alone): {value}")

    def close(self) -> None:
        """End every actor. A local Ray runtime this pool started stays up for the next pool (and ends
        with this process); `ray.shutdown()` ends it sooner."""
        ray = _ray()
        slots, self._slots = self._slots, []
        for slot in slots:
            try:
                ray.kill(slot.actor, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone, or Ray already shut down
                pass

    def __enter__(self) -> "RayPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _settle(ray, ref) -> tuple[str, Any]:
    """('ok' | 'error', value) of a finished job, or ('died', cause) when its actor died before finishing it."""
    try:
        return ray.get(ref, timeout=DEATH_TIMEOUT)
    except ray.exceptions.RayTaskError as err:  # the actor method itself failed (a value that cannot pickle)
        return "error", str(err)
    except ray.exceptions.RayError as err:  # the actor died, its node was lost, or no answer in time
        return "died", _cause(err)


def _result(job: tuple, status: str, value: Any, where: tuple | None) -> tuple[Any, Any]:
    """(key, value) of a finished job; raises WorkerError when the job raised. where: (pid, node IP)."""
    if status == "error":
        last = value.strip().splitlines()[-1] if value.strip() else "an error"
        pid, node = where or (None, None)
        raise WorkerError(f"{job[1]} raised {last} (in Ray worker {pid} on {node}, job {job[0]!r}); "
                          f"the worker's traceback:\n{value}", value)
    return job[0], value
