"""One worker process of `LocalPool`, started as `python -m bench.executors.worker`.

It never imports the user's `__main__` (a script without an `if __name__ == "__main__":` guard, or one fed
on standard input, is safe). It talks to its parent in frames over its own stdin and stdout: an 8-byte
big-endian length, then a pickle (protocol 5). The conversation:

    parent -> worker   sys.path (a list of str: the parent's, so its modules import here too)
    parent -> worker   ("module:function", args)      the init call, once
    parent -> worker   (key, "module:function", args)  a job, repeated
    worker -> parent   (key, "ok", value) | (key, "error", traceback text)   one reply per job

EOF on stdin ends the worker. So does the parent's death: `PR_SET_PDEATHSIG` on Linux, and a watchdog
thread that sees the parent pid change (a portable fallback). Anything the user's code prints goes to
stderr, never into the frames.
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
import sys
import threading
import time
import traceback
from importlib import import_module
from typing import Any, Callable

PROTOCOL = 5
_HEADER = struct.Struct(">Q")
PARENT_ENV = "BENCH_EXECUTOR_PARENT"  # the parent's pid, set by LocalPool
PDEATHSIG_ENV = "BENCH_EXECUTOR_PDEATHSIG"  # "0" turns prctl off (tests of the watchdog fallback)


class PipeClosed(EOFError):
    """The other end of a frame pipe has gone (EOF before or inside a frame)."""


def write_frame(fd: int, obj: Any) -> None:
    """Pickle `obj` and write it to file descriptor `fd` as one length-prefixed frame."""
    write_pickled(fd, pickle.dumps(obj, protocol=PROTOCOL))


def write_pickled(fd: int, data: bytes) -> None:
    """Write already pickled `data` as one frame (big payloads such as audio are not copied)."""
    if len(data) < 65536:
        _write_all(fd, memoryview(_HEADER.pack(len(data)) + data))
    else:
        _write_all(fd, memoryview(_HEADER.pack(len(data))))
        _write_all(fd, memoryview(data))


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view):]


def read_frame(fd: int) -> Any:
    """Read one frame from `fd` and unpickle it. Raises PipeClosed when the other side has gone."""
    (size,) = _HEADER.unpack(_read_exact(fd, _HEADER.size))
    return pickle.loads(_read_exact(fd, size))


def _read_exact(fd: int, size: int) -> bytearray:
    buf = bytearray(size)
    view, got = memoryview(buf), 0
    while got < size:
        n = os.readv(fd, [view[got:]])
        if n == 0:
            raise PipeClosed(f"pipe closed after {got} of {size} bytes")
        got += n
    return buf


def resolve(target: str) -> Callable[..., Any]:
    """'package.module:function' -> the function."""
    module, _, name = target.partition(":")
    if not module or not name:
        raise ValueError(f"expected 'module:function', got {target!r}")
    obj: Any = import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def _watch_parent() -> None:
    """Exit when the parent dies: prctl on Linux, and a thread polling the parent pid every 0.5 s."""
    parent = int(os.environ.get(PARENT_ENV) or os.getppid())
    if sys.platform.startswith("linux") and os.environ.get(PDEATHSIG_ENV, "1") != "0":
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(0.5)

    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def _limit_threads() -> None:
    """One torch thread per worker (the pool runs several). torch is imported here if no one has yet: every job
    uses it (bench/coding.py), and a first job that imported it itself would run with torch's default threads."""
    import torch

    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def _serve(rfd: int, wfd: int) -> None:
    """Adopt the parent's sys.path, run the init call, then answer jobs until EOF on `rfd`."""
    sys.path[:] = [p for p in read_frame(rfd) if isinstance(p, str)]
    init_error = None
    try:
        init, init_args = read_frame(rfd)
        resolve(init)(*init_args)
    except (Exception, SystemExit):  # noqa: BLE001 - reported with every job, so the parent raises it
        init_error = "the worker's init function failed:\n" + traceback.format_exc()
    while True:
        key = None
        try:
            key, target, args = read_frame(rfd)  # PipeClosed: the parent closed the pipe, we are done
            if init_error:
                raise RuntimeError(init_error)
            _limit_threads()
            value = resolve(target)(*args)
            write_frame(wfd, (key, "ok", value))  # pickles first: an unpicklable value writes nothing
        except PipeClosed:
            return
        except (Exception, SystemExit):  # noqa: BLE001 - the parent re-raises it as WorkerError
            write_frame(wfd, (key, "error", traceback.format_exc()))


def main() -> None:
    """The worker's entry point: guard against orphaning, take the frame descriptors, serve."""
    _watch_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it then ends us
    import faulthandler

    faulthandler.enable()  # a segfault in a C extension prints the Python stack to stderr
    rfd, wfd = os.dup(0), os.dup(1)  # the frames' own descriptors
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # user code reading stdin gets EOF, not our frames
    os.dup2(2, 1)  # ... and what it prints goes to stderr
    os.close(devnull)
    try:
        _serve(rfd, wfd)
    except (PipeClosed, BrokenPipeError):  # the parent went away mid-conversation
        pass


if __name__ == "__main__":
    main()
