"""Job functions for tests/test_executors.py, importable by LocalPool's worker processes."""

from __future__ import annotations

import os
import signal
import time

STATE: dict = {"inits": 0}


def init(tag: str = "") -> None:
    """The pool's init: counts its calls in this process and keeps `tag` for the jobs."""
    STATE["inits"] += 1
    STATE["tag"] = tag


def square(x: int) -> int:
    return x * x


def describe() -> tuple[int, int, str]:
    """(pid, how many times init ran in this process, the init tag)."""
    return os.getpid(), STATE["inits"], STATE.get("tag", "")


def torch_threads() -> int:
    """torch's thread count as this job sees it after importing torch itself."""
    import torch

    return torch.get_num_threads()


def scale(audio, gain: float):
    """A float32 array [C, T] times `gain` (numpy arrives with the arguments)."""
    return (audio * gain).astype(audio.dtype)


def die(how: str) -> None:
    """End this process the way a broken C extension would."""
    if how == "abort":
        os.abort()
    os.kill(os.getpid(), getattr(signal, how))
    time.sleep(5)


def die_once(marker: str, value: int) -> int:
    """Segfault the first time (leaving `marker` behind), return `value` on the retry."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGSEGV)
    return value


def fail(message: str) -> None:
    raise ValueError(message)


def exit_code(code: int) -> None:
    os._exit(code)


def nap(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def chatty(x: int) -> int:
    """Prints to stdout, which must not corrupt the frames."""
    print("hello from a job " * 100)
    return x + 1
