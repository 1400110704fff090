"""bench: an evaluation suite for low-bitrate neural audio codecs.

    import bench
    codec = bench.load_codec("opus", bitrate=6)
    res = bench.run(codecs=["opus:bitrate=6"], tasks=["demo-speech"], metrics=["mel"], out="bench-out")
    res.to_frame()

Importing this package is cheap: registries hold strings, and torch is imported only by the code
that needs it.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "load_codec", "load_metric", "load_task", "run"]


def load_codec(name: str, bitrate: float | None = None, **options: Any):
    from bench.codecs import load_codec as _load

    return _load(name, bitrate=bitrate, **options)


def load_metric(name: str, **options: Any):
    from bench.metrics import load_metric as _load

    return _load(name, **options)


def load_task(name: str):
    from bench.tasks import load_task as _load

    return _load(name)


def run(*args: Any, **kwargs: Any):
    from bench.runner import run as _run

    return _run(*args, **kwargs)
