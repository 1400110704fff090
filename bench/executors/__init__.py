"""Where work runs. `local.LocalPool`: worker processes on this machine (crash-proof, never orphaned).

The driver alone writes the result store; executors only compute and hand results back. Names are
imported lazily so that `python -m bench.executors.worker` does not import itself twice.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LocalPool", "WorkerCrash", "WorkerError"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from bench.executors import local

        return getattr(local, name)
    raise AttributeError(f"module 'bench.executors' has no attribute {name!r}")
