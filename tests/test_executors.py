"""LocalPool: worker processes that never re-import __main__, survive crashes and die with their parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import executor_jobs
from bench.executors.local import LocalPool, WorkerCrash, WorkerError

TESTS = Path(__file__).resolve().parent


def _gone(pid: int) -> bool:
    """True when `pid` has exited (a zombie nobody reaped yet counts as gone)."""
    stat = Path(f"/proc/{pid}/stat")
    if Path("/proc/self/stat").exists():
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
        except (FileNotFoundError, ProcessLookupError):
            return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _wait_gone(pids, seconds: float = 5.0) -> list[int]:
    """The pids still alive after waiting up to `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = [p for p in pids if not _gone(p)]
        if not alive:
            return []
        time.sleep(0.05)
    return alive


@pytest.mark.parametrize("jobs", [1, 2])
def test_results_equal_in_process_computation(jobs):
    rng = np.random.default_rng(0)
    audio = rng.standard_normal((2, 600_000)).astype(np.float32)  # big arrays pass both ways
    work = [(i, "executor_jobs:square", (i,)) for i in range(30)] + [("audio", "executor_jobs:scale", (audio, 0.5))]
    with LocalPool("executor_jobs:init", ("t",), jobs=jobs) as pool:
        got = list(pool.run(iter(work)))
        assert pool.started == jobs
    keys = [k for k, _ in got]
    assert sorted(map(str, keys)) == sorted(str(k) for k, _, _ in work)  # every key once
    values = dict(got)
    assert all(values[i] == executor_jobs.square(i) for i in range(30))
    np.testing.assert_array_equal(values["audio"], executor_jobs.scale(audio, 0.5))


def test_printing_jobs_do_not_corrupt_the_frames():
    with LocalPool("executor_jobs:init", (), jobs=1) as pool:
        assert dict(pool.run([(i, "executor_jobs:chatty", (i,)) for i in range(3)])) == {0: 1, 1: 2, 2: 3}


@pytest.mark.parametrize("how, signame, number", [("abort", "SIGABRT", 6), ("SIGSEGV", "SIGSEGV", 11)])
def test_a_crashing_job_is_one_failure(how, signame, number):
    work = [(i, "executor_jobs:square", (i,)) for i in range(6)]
    work.insert(2, ("bad", "executor_jobs:die", (how,)))
    with LocalPool("executor_jobs:init", (), jobs=2) as pool:
        got = dict(pool.run(work))
        assert pool.started >= 3  # the crashed worker was replaced (and the retry's too)
        assert dict(pool.run([("after", "executor_jobs:square", (7,))])) == {"after": 49}
    crash = got.pop("bad")
    assert isinstance(crash, WorkerCrash)
    assert f"{signame} (signal {number})" in str(crash) and "while running this item" in str(crash)
    assert got == {i: i * i for i in range(6)}


def test_exit_code_is_named_and_one_retry_can_succeed(tmp_path):
    with LocalPool("executor_jobs:init", (), jobs=1) as pool:
        got = dict(pool.run([("exit", "executor_jobs:exit_code", (3,)),
                             ("flaky", "executor_jobs:die_once", (str(tmp_path / "marker"), 5))]))
    assert isinstance(got["exit"], WorkerCrash) and "exited with code 3" in str(got["exit"])
    assert got["flaky"] == 5  # died once, right on the retry in a fresh worker


def test_an_exception_in_a_job_is_raised_with_the_remote_traceback():
    with LocalPool("executor_jobs:init", (), jobs=2) as pool:
        with pytest.raises(WorkerError, match="ValueError: boom 42") as info:
            list(pool.run([(1, "executor_jobs:square", (1,)), (2, "executor_jobs:fail", ("boom 42",))]))
        assert "executor_jobs.py" in info.value.remote_traceback
        assert dict(pool.run([(3, "executor_jobs:square", (3,))])) == {3: 9}  # the pool still works


def test_init_runs_once_per_worker():
    with LocalPool("executor_jobs:init", ("tagged",), jobs=2) as pool:
        got = [v for _, v in pool.run((i, "executor_jobs:describe", ()) for i in range(20))]
        got += [v for _, v in pool.run((i, "executor_jobs:describe", ()) for i in range(5))]
        started = pool.started
    assert {(inits, tag) for _, inits, tag in got} == {(1, "tagged")}
    assert len({pid for pid, _, _ in got}) <= started == 2
    assert os.getpid() not in {pid for pid, _, _ in got}


def test_every_job_of_a_worker_runs_on_one_torch_thread():
    # the first job too, when it imports torch itself (a classic codec's worker: its init never touches torch)
    with LocalPool("executor_jobs:init", (), jobs=2) as pool:
        assert [v for _, v in pool.run((i, "executor_jobs:torch_threads", ()) for i in range(4))] == [1, 1, 1, 1]


def test_leaving_a_run_early_ends_its_busy_workers():
    with LocalPool("executor_jobs:init", (), jobs=2) as pool:
        gen = pool.run([("slow", "executor_jobs:nap", (30,)), ("fast", "executor_jobs:square", (3,))])
        assert next(gen) == ("fast", 9)
        both = pool.pids
        gen.close()
        assert len(both) == 2 and len(pool.pids) == 1
        assert _wait_gone(set(both) - set(pool.pids), 2) == []
        assert dict(pool.run([("again", "executor_jobs:square", (4,))])) == {"again": 16}
    assert _wait_gone(both, 2) == []


SCRIPT = f"""\
import sys
sys.path.insert(0, {str(TESTS)!r})  # not on PYTHONPATH: the workers must get it from the parent
from bench.executors.local import LocalPool

pool = LocalPool("executor_jobs:init", ("script",), jobs=2)
print(sorted(pool.run((i, "executor_jobs:square", (i,)) for i in range(6))))
pool.close()
"""


@pytest.mark.parametrize("stdin", [False, True], ids=["script", "stdin"])
def test_scripts_without_a_main_guard(tmp_path, stdin):
    script = tmp_path / "no_guard.py"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    cmd = [sys.executable, "-"] if stdin else [sys.executable, str(script)]
    with open(script) as f:
        out = subprocess.run(cmd, stdin=f if stdin else subprocess.DEVNULL, capture_output=True, text=True,
                             cwd=tmp_path, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str([(i, i * i) for i in range(6)])


PARENT = f"""\
import sys
sys.path.insert(0, {str(TESTS)!r})
from bench.executors.local import LocalPool

pool = LocalPool("executor_jobs:init", (), jobs=2)
list(pool.run([(i, "executor_jobs:nap", (0.2,)) for i in range(2)]))
print(*pool.pids, flush=True)
for _ in pool.run([("busy", "executor_jobs:nap", (60,))]):  # one worker busy, one idle, when killed
    pass
"""


@pytest.mark.parametrize("sig, pdeathsig", [(signal.SIGKILL, "1"), (signal.SIGKILL, "0"), (signal.SIGTERM, "1")],
                         ids=["kill-prctl", "kill-watchdog", "term"])
def test_workers_die_with_their_parent(sig, pdeathsig):
    env = dict(os.environ, BENCH_EXECUTOR_PDEATHSIG=pdeathsig)
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True, env=env)
    try:
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2 and all(not _gone(p) for p in pids)
        time.sleep(0.3)  # the busy job has started
        parent.send_signal(sig)
        parent.wait(10)
        assert _wait_gone(pids, 5) == [], "worker processes outlived their killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
        parent.stdout.close()
