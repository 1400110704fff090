"""RayPool on a local Ray cluster of 2 CPUs (started once for the module): the same results as LocalPool,
crashes cost only the items in flight (WorkerCrash after two deaths), job exceptions are WorkerError."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import ray

import executor_jobs  # noqa: F401 - the job functions the actors import by name
from bench.executors.local import LocalPool, WorkerCrash, WorkerError
from bench.executors.ray import DEPTH, RayPool


@pytest.fixture(scope="module", autouse=True)
def cluster():
    """One local Ray runtime for the whole module (it takes seconds to start): 2 CPUs, 2 workers."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING,
             object_store_memory=200 * 2**20)
    yield
    ray.shutdown()


@pytest.fixture
def pool():
    with RayPool("executor_jobs:init", ("t",), jobs=2) as p:
        yield p


def _keys(got) -> list[str]:
    return sorted(str(k) for k, _ in got)


def test_results_equal_local_pool(pool, tmp_path):
    rng = np.random.default_rng(0)
    audio = rng.standard_normal((2, 600_000)).astype(np.float32)  # 4.8 MB each way
    work = ([(i, "executor_jobs:square", (i,)) for i in range(30)]
            + [("audio", "executor_jobs:scale", (audio, 0.5)), ("who", "executor_jobs:describe", ())])
    got = list(pool.run(iter(work)))
    with LocalPool("executor_jobs:init", ("t",), jobs=2) as local:
        want = dict(local.run(iter(work)))
    assert _keys(got) == sorted(str(k) for k, _, _ in work)  # every key exactly once
    values = dict(got)
    assert {i: values[i] for i in range(30)} == {i: want[i] for i in range(30)}
    np.testing.assert_array_equal(values["audio"], want["audio"])
    pid, inits, tag = values["who"]
    assert (inits, tag) == (1, "t") and pid in pool.pids  # init ran once in that actor, with the shared args
    assert pool.started == 2 and len(set(pool.pids)) == 2 and os.getpid() not in pool.pids
    assert dict(pool.run([("again", "executor_jobs:square", (7,))])) == {"again": 49}  # actors are kept


def test_job_exception_is_worker_error_and_the_pool_goes_on(pool):
    with pytest.raises(WorkerError, match="ValueError: boom") as info:
        list(pool.run([("ok", "executor_jobs:square", (2,)), ("bad", "executor_jobs:fail", ("boom",))]))
    assert "executor_jobs.py" in info.value.remote_traceback
    assert dict(pool.run([(1, "executor_jobs:square", (3,))])) == {1: 9}
    assert pool.started == 2  # an exception is not a crash: no actor was replaced


def test_init_that_raises_is_reported_with_every_job():
    with RayPool("executor_jobs:fail", ("no model here",), jobs=1) as p:
        with pytest.raises(WorkerError, match="init function failed") as info:
            list(p.run([(0, "executor_jobs:square", (1,))]))
    assert "no model here" in str(info.value)


def test_item_that_kills_its_worker_twice_is_a_crash_and_the_others_complete(pool):
    work = ([("segv", "executor_jobs:die", ("SIGSEGV",)), ("exit", "executor_jobs:exit_code", (3,))]
            + [(i, "executor_jobs:square", (i,)) for i in range(10)])
    got = list(pool.run(work))
    assert _keys(got) == sorted(str(k) for k, _, _ in work)
    values = dict(got)
    for key in ("segv", "exit"):
        assert isinstance(values[key], WorkerCrash)
        assert "2 attempts" in str(values[key]) and "died" in str(values[key])
    assert {i: values[i] for i in range(10)} == {i: i * i for i in range(10)}  # innocent items never fail
    # both killers were queued on the first actor (2 per actor): one death for the two of them, then one
    # each running alone; every dead actor is replaced
    assert pool.started == 2 + 3
    assert dict(pool.run([("after", "executor_jobs:square", (5,))])) == {"after": 25}


def test_item_that_crashes_once_succeeds_on_its_retry(pool, tmp_path):
    marker = str(tmp_path / "crashed-once")
    got = dict(pool.run([("flaky", "executor_jobs:die_once", (marker, 42))]
                        + [(i, "executor_jobs:square", (i,)) for i in range(4)]))
    assert got == {"flaky": 42, **{i: i * i for i in range(4)}}
    assert os.path.exists(marker) and pool.started == 3


def test_worker_killed_from_outside_mid_run_loses_nothing(pool):
    work = [(i, "executor_jobs:nap", (0.15,)) if i % 2 else (i, "executor_jobs:square", (i,)) for i in range(24)]
    victim = pool.pids[0]
    got = []
    for key, value in pool.run(work):
        got.append((key, value))
        if len(got) == 4:
            os.kill(victim, signal.SIGKILL)  # an actor dies with jobs in flight (the naps keep both busy)
    assert _keys(got) == sorted(str(k) for k, _, _ in work)  # every item exactly once, none lost
    values = dict(got)
    assert not any(isinstance(v, WorkerCrash) for v in values.values())
    assert all(values[i] == i * i for i in range(0, 24, 2))
    assert values[23] != victim  # the last nap ran after the kill, in a live actor
    assert pool.started == 3 and victim not in pool.pids


def test_leaving_the_loop_early_ends_busy_actors_and_the_pool_goes_on(pool):
    busy = pool.pids[0]
    for _ in pool.run([(i, "executor_jobs:nap", (0.3,)) for i in range(2)]):  # both queued on the first actor
        break
    assert pool.started == 3 and busy not in pool.pids  # the actor left with a job was ended and replaced
    assert dict(pool.run([("next", "executor_jobs:square", (6,))])) == {"next": 36}


def test_more_workers_than_the_cluster_holds_is_one_clear_error():
    with pytest.raises(ValueError, match="need 3 CPUs; the cluster has 2: lower --jobs"):
        RayPool("executor_jobs:init", (), jobs=3)
    with pytest.raises(ValueError, match="GPU.*cluster has 0"):
        RayPool("executor_jobs:init", (), jobs=1, gpus_per_worker=1)
    with pytest.raises(ValueError, match="jobs must be at least 1"):
        RayPool("executor_jobs:init", (), jobs=0)
    assert RayPool("executor_jobs:init", (), jobs=None).jobs == 2  # None fits the cluster


def test_runner_items_equal_local_pool(tmp_path, monkeypatch):
    """The runner's own worker functions: per-item scores, encode rows and cached audio as with LocalPool.

    Bit for bit under the same thread counts: Ray gives each actor OMP_NUM_THREADS = its CPUs (1 here),
    and a float64 np.dot (si_sdr) rounds differently with another OpenBLAS thread count, so the local
    workers get 1 BLAS thread too (they inherit this environment)."""
    import bench
    from bench.runner import CodecSpec
    from bench.workers import _registry_entries
    from bench.store import ResultStore

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    items = bench.load_task("demo-speech").items()[:3]
    spec, ids = CodecSpec.parse("opus:bitrate=6"), ["mel", "sisdr"]
    init_args = (spec, ids, "cpu", _registry_entries(spec, ids))

    def work(tag: str) -> list:
        return [(it.id, "bench.workers:_worker_item", (it, ids, str(tmp_path / f"{tag}-{i}.npz")))
                for i, it in enumerate(items)]

    with RayPool("bench.workers:_worker_init", init_args, jobs=2) as p:
        got = list(p.run(work("ray")))
    with LocalPool("bench.workers:_worker_init", init_args, jobs=1) as local:
        want = dict(local.run(work("local")))
    assert _keys(got) == sorted(it.id for it in items)

    def same(res: dict) -> dict:  # what must agree: all but timings, the load while timing and the cache path
        enc = {k: v for k, v in res["encode"].items() if not k.endswith("_s") and k not in ("path", "timed_on")}
        where = {k: v for k, v in res["encode"]["timed_on"].items() if k != "load"}  # CPU, device, threads, batch
        return {**res, "encode": enc, "where": where}

    for key, res in got:
        assert same(res) == same(want[key]) and res["scores"] and not res["failures"]
    for i in range(len(items)):
        a, b = ResultStore.load_output(tmp_path / f"ray-{i}.npz"), ResultStore.load_output(tmp_path / f"local-{i}.npz")
        np.testing.assert_array_equal(a["audio"], b["audio"])
        np.testing.assert_array_equal(a["codes"], b["codes"])


def _per_item(ws) -> dict:
    from bench.store import ResultStore

    store = ResultStore(ws, readonly=True)
    try:
        rows = {(r.item, r.metric, r.key): r.value for r in store.scores_frame().itertuples()}
        rows.update({("bps", r.item): r.bits_per_second for r in store.encodes_frame().itertuples()})
        return rows
    finally:
        store.close()


def _actor_pids() -> list[int]:
    """Pids of the Ray actors started under this test process (Ray titles them ray::_Actor...), from /proc."""
    parents, titles = {}, {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parents[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
                titles[int(d.name)] = (d / "cmdline").read_bytes().split(b"\0")[0]
            except (OSError, IndexError, ValueError):
                pass

    def mine(pid: int) -> bool:
        while pid > 1:
            pid = parents.get(pid, 0)
            if pid == os.getpid():
                return True
        return False

    return sorted(pid for pid, title in titles.items() if title.startswith(b"ray::_Actor") and mine(pid))


class _KillOnce:
    """A progress bar that SIGKILLs one Ray actor after `after` items were recorded by the driver."""

    def __init__(self, after: int):
        self.after, self.seen, self.done, self.killed = after, 0, [], None

    def __call__(self, total: int, what: str) -> "_KillOnce":
        return self

    def update(self, n: int = 1) -> None:
        self.seen += n
        if self.killed is None and self.seen >= self.after:
            self.killed = _actor_pids()[0]
            os.kill(self.killed, signal.SIGKILL)

    def close(self) -> None:
        pass


def test_run_on_ray_equals_local_and_survives_a_killed_worker(tmp_path, monkeypatch, caplog):
    """bench.run(executor="ray"): the same per-item values as the local executor; an actor killed mid-run
    costs nothing (its items run again), every item is scored, no failure is recorded."""
    import bench

    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the thread counts Ray gives its actors (see above)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    kw = dict(codecs=["opus:bitrate=6"], tasks=["demo-speech"], metrics=["mel", "sisdr"], limit=16, jobs=2)
    local = bench.run(out=tmp_path / "local", executor="local", **kw)
    killer = _KillOnce(after=3)
    with caplog.at_level(logging.WARNING, logger="bench.executors.ray"):
        on_ray = bench.run(out=tmp_path / "ray", executor="ray", progress=killer, **kw)
    assert killer.killed is not None
    assert f"Ray worker {killer.killed} " in caplog.text and "in flight" in caplog.text  # it died busy
    # the killed actor may have written an in-flight item's output (atomically) before it died: that item is then
    # served from the cache on its retry, not coded again
    assert local.codec_work == 16 and 16 - DEPTH <= on_ray.codec_work <= 16  # DEPTH jobs queued on the killed actor
    assert len(on_ray.failures()) == 0
    want, got = _per_item(tmp_path / "local"), _per_item(tmp_path / "ray")
    assert len(want) == 16 * 3 and got == want  # bit for bit, every item once
