"""ViSQOL v3 (MOS-LQO, about 1 to 5) through `visqol-python`, a Python port of Google's ViSQOL v3.3.3.

Modes (Google's defaults, and the protocol of the SemantiCodec paper family):

- `speech`: 16 kHz, VAD-selected patches, the deep-lattice TF-Lite mapper bundled in the wheel
  (needs `ai-edge-litert`, the package's `[lattice]` extra; without it the package falls back to a polynomial
  mapping that over-predicts, so we refuse to run without it rather than report other numbers);
- `audio`: 48 kHz, the bundled libsvm nu-SVR mapper.

With `mode` unset, the mode follows the item's domain: speech items in speech mode, everything else (music, sound,
no item) in audio mode; `rate_for_item(item)` tells the runner which rate to resample to. With `mode=speech|audio`
the rate is fixed. The package does not resample, so `score` resamples to the mode's rate itself when it is handed
another one, and mixes channels to mono.

numba (the package's `[accel]` extra) makes a 10 s clip cost about 0.5 s CPU (speech) / 1.4 s (audio) instead of
5-10 s, but compiles for a while on first use: we point `NUMBA_CACHE_DIR` at `<bench home>/numba` (`$BENCH_HOME`,
default `~/.cache/bench`) unless the user set it, so the compilation is paid once per machine.

Silence is a failure, never a score: the package happily returns ~4.7 for a silent reference and NaN for a
silent reconstruction, so both are checked first and raise MetricError.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from bench.metrics.base import Metric, MetricError, MetricMeta, as_numpy, check_pair, package_version

log = logging.getLogger(__name__)

MODES: dict[str, int] = {"speech": 16000, "audio": 48000}
INSTALL_HINT = "pip install 'visqol-python[accel,lattice]>=3.8'"

_APIS: dict[str, Any] = {}  # mode -> VisqolApi, one per process (the lattice/SVR models load once)


def bench_home() -> Path:
    """The bench cache directory: $BENCH_HOME, default ~/.cache/bench."""
    return Path(os.environ.get("BENCH_HOME") or "~/.cache/bench").expanduser()


def configure_numba_cache() -> None:
    """Point numba's on-disk cache at <bench home>/numba unless the user chose a directory.

    Must run before `visqol.numba_accel` is imported (its kernels are decorated with cache=True, which fixes
    the cache locator at import). numba itself may already be imported by another library (librosa), in which
    case its config has read the environment already, so we set the config value too.
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    path = bench_home() / "numba"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # a read-only home: numba then compiles every run, which is slow but correct
        log.warning("cannot create numba cache %s (%s); ViSQOL will recompile its kernels in every process", path, err)
        return
    os.environ["NUMBA_CACHE_DIR"] = str(path)
    if "numba" in sys.modules:
        from numba.core import config

        config.CACHE_DIR = str(path)


def get_api(mode: str):
    """The per-process VisqolApi for `mode` ("speech" or "audio"), created on first use."""
    api = _APIS.get(mode)
    if api is not None:
        return api
    configure_numba_cache()
    try:
        from visqol import VisqolApi
    except ImportError:
        raise MetricError(f"ViSQOL needs the visqol-python package: {INSTALL_HINT}") from None
    api = VisqolApi()
    try:
        # use_lattice_model=True: fail loudly without ai-edge-litert instead of falling back to other numbers.
        api.create(mode=mode, use_lattice_model=True if mode == "speech" else None)
    except ImportError as err:
        raise MetricError(f"ViSQOL speech mode needs its lattice runtime ({err}): {INSTALL_HINT}") from None
    try:
        from visqol.numba_accel import has_numba

        if not has_numba():
            log.warning("numba is not installed: ViSQOL runs about 10x slower (%s)", INSTALL_HINT)
    except ImportError:
        pass
    _APIS[mode] = api
    return api


def visqol_score(ref: np.ndarray, deg: np.ndarray, mode: str) -> tuple[float, float]:
    """(MOS-LQO, mean NSIM) of mono float64 `ref`, `deg` `[T]` at MODES[mode] Hz."""
    api = get_api(mode)
    try:
        result = api.measure_from_arrays(np.ascontiguousarray(ref), np.ascontiguousarray(deg), MODES[mode])
    except MetricError:
        raise
    except Exception as err:  # noqa: BLE001 - the package's own failures (too short, no speech...) are one item's
        seconds = ref.shape[-1] / MODES[mode]
        hint = "; ViSQOL needs about a second of audio or more" if seconds < 1.0 else ""
        raise MetricError(f"visqol ({mode} mode) failed on a {seconds:.2f} s clip: "
                          f"{type(err).__name__}: {err}{hint}") from None
    mos, nsim = float(result.moslqo), float(result.vnsim)
    if not (np.isfinite(mos) and np.isfinite(nsim)):
        raise MetricError(f"visqol ({mode} mode) gave a non-finite score (MOS {mos}, NSIM {nsim}): "
                          "is one signal (nearly) silent or far too short?")
    return mos, nsim


class ViSQOL(Metric):
    """ViSQOL v3 MOS-LQO. score(ref, rec `[C, T]`, sample_rate, item) -> {"visqol": MOS, "visqol_nsim": NSIM}."""

    name: ClassVar[str] = "visqol"
    code_version: ClassVar[str] = "1"

    def __init__(self, mode: str | None = None):
        if mode is not None:
            mode = str(mode).lower()
            if mode not in MODES:
                raise MetricError(f"visqol: mode must be 'speech' (16 kHz) or 'audio' (48 kHz), not {mode!r}; "
                                  "leave it unset to follow each item's domain")
        super().__init__(**({"mode": mode} if mode else {}))
        self.mode = mode
        # Automatic mode: 48 kHz is the rate of most items' mode; rate_for_item() gives the exact one.
        rate = MODES[mode] if mode else MODES["audio"]
        self.meta = MetricMeta(
            name="visqol", sample_rate=rate, higher_is_better=True, domains=(), unit="MOS-LQO",
            definition=("ViSQOL v3 (visqol-python 3.8, Google v3.3.3 port): "
                        + (f"{mode} mode at {rate} Hz" if mode else
                           "speech mode at 16 kHz for speech items, audio mode at 48 kHz otherwise")))

    def backend(self) -> dict[str, Any]:
        """visqol-python's version (its SVR and lattice mapper models ship in the wheel), the lattice runtime's
        version where speech mode can run, and whether numba accelerates it."""
        out = {"visqol-python": package_version("visqol-python"), "numba": package_version("numba") != "absent"}
        if self.mode in (None, "speech"):
            out["ai-edge-litert"] = package_version("ai-edge-litert")
        return out

    def mode_for_item(self, item) -> str:
        if self.mode:
            return self.mode
        return "speech" if item is not None and getattr(item, "domain", None) == "speech" else "audio"

    def rate_for_item(self, item) -> int:
        """The sample rate (Hz) this metric scores `item` at: 16000 in speech mode, 48000 in audio mode."""
        return MODES[self.mode_for_item(item)]

    def score(self, ref, rec, sample_rate: int, item=None) -> dict[str, float]:
        from bench import audio as au

        mode = self.mode_for_item(item)
        rate = MODES[mode]
        r = as_numpy(ref)
        d = as_numpy(rec)
        check_pair(r, d, self.name)
        r = r.mean(axis=0, keepdims=True)
        d = d.mean(axis=0, keepdims=True)
        if sample_rate != rate:
            r = au.resample(r.astype(np.float32), sample_rate, rate)
            d = au.resample(d.astype(np.float32), sample_rate, rate)
        for x, what in ((r, "reference"), (d, "reconstruction")):
            try:
                au.check(x, rate, name=what)
            except au.AudioError as err:
                raise MetricError(f"visqol: {err}; ViSQOL has no meaningful score for silence") from None
        mos, nsim = visqol_score(r[0].astype(np.float64), d[0].astype(np.float64), mode)
        return {"visqol": mos, "visqol_nsim": nsim}
