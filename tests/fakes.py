"""Small codecs and metrics with known behaviour, registered only inside tests."""

from __future__ import annotations

import os
import time

import numpy as np
import torch

from bench.codecs.base import Codec, CodecMeta, Encoded, OperatingPoint
from bench.executors.worker import PARENT_ENV
from bench.metrics.base import Metric, MetricMeta, as_numpy, check_pair
from bench.registry import Entry

CALLS = {"encode": 0, "l1": 0}


class Gain(Codec):
    """Scales the signal by `gain` at 16 kHz mono. Codes: one zero per 20 ms frame, 10 bits each (500 bit/s)."""

    name = "gain"

    def __init__(self, gain: float = 0.5, delay: float = 0.0, fail_on: int = 0):
        self.options = {"gain": gain, "delay": delay, "fail_on": fail_on}
        self.gain, self.delay, self.fail_on = gain, delay, fail_on
        self.meta = CodecMeta("gain", 16000, 1, (0.5,), 50.0, False, "-")

    @classmethod
    def operating_points(cls):
        return [OperatingPoint(0.5, {"gain": 0.5}, "gain 0.5")]

    def encode(self, wav, sample_rate=None, lengths=None):
        CALLS["encode"] += 1
        if self.delay:
            time.sleep(self.delay)
        if self.fail_on and wav.shape[-1] > self.fail_on:  # fail on items longer than fail_on samples
            raise RuntimeError("planted codec failure")
        n = max(1, wav.shape[-1] // 320)
        return Encoded(torch.zeros(wav.shape[0], 1, n, dtype=torch.int64), 500.0, [wav.shape[-1]] * wav.shape[0],
                       16000, extra={"wav": wav.clone()})

    def decode(self, enc):
        return enc.extra["wav"] * self.gain


class L1(Metric):
    """Mean absolute sample difference, at 8 kHz."""

    name = "l1"

    def __init__(self, **options):
        super().__init__(**options)
        self.meta = MetricMeta("l1", 8000, False, definition="mean |ref - rec|")

    def score(self, ref, rec, sample_rate, item=None):
        CALLS["l1"] += 1
        ref, rec = as_numpy(ref), as_numpy(rec)
        check_pair(ref, rec, "l1")
        return {"l1": float(np.mean(np.abs(ref - rec)))}


class Peak(Metric):
    """Peak of the reconstruction; applies to speech only and has a floor (scores the reference too)."""

    name = "peak"

    def __init__(self, **options):
        super().__init__(**options)
        self.meta = MetricMeta("peak", 16000, True, domains=("speech",), floor=True)

    def score(self, ref, rec, sample_rate, item=None):
        return {"peak": float(np.max(np.abs(as_numpy(rec))))}


class TotalOverTotal(L1):
    """A per-item rate whose task value is total / total (as WER's is): samples more than 0.01 apart / samples."""

    name = "tot"

    def __init__(self, **options):
        super().__init__(**options)
        self.meta = MetricMeta("tot", 8000, False, definition="share of samples more than 0.01 apart")

    def score(self, ref, rec, sample_rate, item=None):
        ref, rec = as_numpy(ref), as_numpy(rec)
        off = float(np.sum(np.abs(ref - rec) > 0.01))
        return {"tot": off / ref.shape[-1], "off": off, "samples": float(ref.shape[-1])}

    def aggregate(self, rows):
        return sum(r["off"] for r in rows) / sum(r["samples"] for r in rows)


class Drifted(L1):
    """L1 whose code version differs inside worker processes: bench code that changed between the driver's
    start and a worker's (or another version on a Ray node)."""

    name = "drifted"

    def __init__(self, **options):
        super().__init__(**options)
        self.meta = MetricMeta("drifted", 8000, False, definition="mean |ref - rec|")

    def score(self, ref, rec, sample_rate, item=None):
        return {"drifted": super().score(ref, rec, sample_rate, item)["l1"]}

    code_version = "2" if os.environ.get(PARENT_ENV) else "1"  # set once per process, at import


def install(monkeypatch) -> None:
    from bench.codecs import CODECS
    from bench.metrics import METRICS

    monkeypatch.setitem(CODECS._entries, "gain", Entry("gain", "fakes:Gain", {"needs_weights": False}))
    monkeypatch.setitem(METRICS._entries, "l1", Entry("l1", "fakes:L1", {}))
    monkeypatch.setitem(METRICS._entries, "peak", Entry("peak", "fakes:Peak", {}))
    monkeypatch.setitem(CODECS._entries, "crash", Entry("crash", "fakes:Crash", {"needs_weights": False}))
    monkeypatch.setitem(METRICS._entries, "itemcount", Entry("itemcount", "fakes:ItemCount", {}))
    monkeypatch.setitem(METRICS._entries, "drifted", Entry("drifted", "fakes:Drifted", {}))
    monkeypatch.setitem(METRICS._entries, "tot", Entry("tot", "fakes:TotalOverTotal", {}))


class Crash(Gain):
    """Gain, except that an item of exactly `crash_on` samples kills the process (a segfault in a C extension)."""

    name = "crash"

    def __init__(self, crash_on: int = 0):
        super().__init__(gain=1.0)
        self.options = {"crash_on": crash_on}
        self.crash_on = crash_on

    def encode(self, wav, sample_rate=None, lengths=None):
        if wav.shape[-1] == self.crash_on:
            import os
            import signal

            os.kill(os.getpid(), signal.SIGSEGV)
        return super().encode(wav)


class ItemCount(Metric):
    """A task-level metric: the number of items it was given."""

    name = "itemcount"

    def __init__(self, **options):
        super().__init__(**options)
        self.meta = MetricMeta("itemcount", None, True, level="task")

    @property
    def key(self) -> str:
        return "count"

    def evaluate(self, codec, task, items=None, decoded=None):
        items = items if items is not None else task.items()
        return {"count": float(len(items)), "n": len(items)}


class MusicOnly(Peak):
    """Peak that applies to music only: on a speech or sound task it scores no item (n=0, value None)."""

    name = "musiconly"

    def __init__(self, **options):
        super().__init__(**options)
        self.meta = MetricMeta("musiconly", 16000, True, domains=("music",))

    def score(self, ref, rec, sample_rate, item=None):
        return {"musiconly": super().score(ref, rec, sample_rate, item)["peak"]}


class AlwaysFails(L1):
    """A metric that raises on every item (n=0, every item a recorded failure)."""

    name = "alwaysfails"

    def __init__(self, **options):
        super().__init__(**options)
        self.meta = MetricMeta("alwaysfails", 8000, False, definition="raises")

    def score(self, ref, rec, sample_rate, item=None):
        raise RuntimeError("planted metric failure")
