"""DNSMOS: non-intrusive speech quality (P.835 SIG, BAK, OVRL and P.808 MOS, about 1 to 5) of one signal.

The models are Microsoft's DNSMOS ONNX networks (Reddy, Gopal, Cutler: "DNSMOS P.835: a non-intrusive perceptual
objective speech quality metric to evaluate noise suppressors", ICASSP 2022) as the MIT-licensed `speechmos`
package ships them (`speechmos/dnsmos_models/sig_bak_ovr.onnx` and `model_v8.onnx`), run with onnxruntime,
fully offline. The scoring itself is speechmos' own (`speechmos.dnsmos.DNSMOS.__call__`, the procedure of the
DNS Challenge's `dnsmos_local.py`): a clip shorter than 9.01 s is repeated until it is that long; 9.01 s
windows every second are scored, the P.835 raw outputs mapped through the published polynomials, the P.808
network fed a 120-band mel spectrogram (librosa) of the window; each value is the mean over windows. We only
build the two onnxruntime sessions ourselves (CPU, `threads` intra-op threads: the package's own sessions take
every core, which oversubscribes a pool of worker processes); tests/test_metrics_generative.py checks that the
values equal `speechmos.dnsmos.run` on the same audio.

score(ref, rec) scores the reconstruction only (mixed to mono, resampled to 16 kHz, as float32, clipped to
[-1, 1] as a 16-bit file would be: speechmos refuses samples beyond full scale). The metric has a floor row
(`MetricMeta.floor`): the runner also scores the uncoded reference, the quality the codec started from.
Values: "dnsmos" (P.835 OVRL, the primary value), "dnsmos_sig", "dnsmos_bak", "dnsmos_p808". A silent signal is
a failure (MetricError), never a score.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from bench.metrics.base import Metric, MetricError, MetricMeta, as_numpy, check_pair, package_version

log = logging.getLogger(__name__)

RATE = 16000
PACKAGE = "speechmos"
INSTALL_HINT = "pip install speechmos==0.0.1.1 (and onnxruntime, librosa)"
MODEL_FILES = {"p835": "dnsmos_models/sig_bak_ovr.onnx", "p808": "dnsmos_models/model_v8.onnx"}

_SCORERS: dict[int, Any] = {}  # intra-op threads -> scorer, one per process (the ONNX sessions load once)


def model_paths() -> dict[str, Path]:
    """The ONNX files inside the installed speechmos package (MetricError naming the install if absent)."""
    try:
        from speechmos import dnsmos as sm_dnsmos
    except ImportError:
        raise MetricError(f"dnsmos needs the speechmos package (it ships the DNSMOS models): {INSTALL_HINT}") from None
    root = Path(sm_dnsmos.__file__).resolve().parent
    paths = {k: root / rel for k, rel in MODEL_FILES.items()}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise MetricError(f"dnsmos: {', '.join(missing)} missing; reinstall: pip install --force-reinstall "
                          f"{PACKAGE}=={package_version(PACKAGE)}")
    return paths


def model_digests() -> dict[str, str]:
    """sha256 of each ONNX model file (remembered per file version by bench.codecs.digests)."""
    from bench.codecs.digests import file_sha256

    return {key: file_sha256(path) for key, path in model_paths().items()}


def get_scorer(threads: int = 1):
    """The per-process speechmos DNSMOS scorer whose onnxruntime sessions use `threads` intra-op threads
    (0: onnxruntime's default)."""
    scorer = _SCORERS.get(threads)
    if scorer is not None:
        return scorer
    paths = model_paths()
    try:
        import onnxruntime as ort
        from speechmos.dnsmos import DNSMOS
    except ImportError as err:
        raise MetricError(f"dnsmos cannot load its runtime ({err}): {INSTALL_HINT}") from None

    class _Scorer(DNSMOS):
        """speechmos' scorer with sessions of our choosing (its __call__ reads exactly these attributes)."""

        def __init__(self, primary: Path, p808: Path, n_threads: int):
            options = ort.SessionOptions()
            options.intra_op_num_threads = n_threads
            options.inter_op_num_threads = 1
            providers = ["CPUExecutionProvider"]
            self.primary_model_path = str(primary)
            self.onnx_sess = ort.InferenceSession(str(primary), options, providers=providers)
            self.p808_onnx_sess = ort.InferenceSession(str(p808), options, providers=providers)

    log.info("loading DNSMOS models from %s (%d thread(s))", paths["p835"].parent, threads)
    scorer = _SCORERS[threads] = _Scorer(paths["p835"], paths["p808"], threads)
    return scorer


def dnsmos_score(x: np.ndarray, threads: int = 1) -> dict[str, float]:
    """DNSMOS of mono float32 `[T]` at 16 kHz in [-1, 1]: {"dnsmos" (OVRL), "dnsmos_sig", "dnsmos_bak",
    "dnsmos_p808"}."""
    out = get_scorer(threads)(np.ascontiguousarray(x, dtype=np.float32), RATE, False)
    values = {"dnsmos": out["ovrl_mos"], "dnsmos_sig": out["sig_mos"], "dnsmos_bak": out["bak_mos"],
              "dnsmos_p808": out["p808_mos"]}
    values = {k: float(v) for k, v in values.items()}
    if not all(np.isfinite(v) for v in values.values()):
        raise MetricError(f"dnsmos gave a non-finite score {values}")
    return values


class DNSMOS(Metric):
    """DNSMOS P.835/P.808 of the reconstruction (non-intrusive). score(ref, rec `[C, T]`, sample_rate, item) ->
    {"dnsmos", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808"}. Option `threads`: onnxruntime intra-op threads,
    default 1; 0 = onnxruntime's default (every physical core, what speechmos' own sessions use). Another thread
    count can move a value in the 7th digit (the order of a reduction), no more; it is not part of the identity."""

    name: ClassVar[str] = "dnsmos"
    code_version: ClassVar[str] = "1"
    RUNTIME_OPTIONS: ClassVar[tuple[str, ...]] = ("threads",)

    def __init__(self, threads: int = 1):
        threads = int(threads)
        if threads < 0:
            raise MetricError(f"dnsmos: threads must be 1 or more (0: onnxruntime's default, every core), "
                              f"not {threads}")
        super().__init__(**({"threads": threads} if threads != 1 else {}))
        self.threads = threads
        self._backend_info: dict[str, Any] | None = None
        self.meta = MetricMeta(
            name="dnsmos", sample_rate=RATE, higher_is_better=True, domains=("speech",), unit="MOS",
            definition=(f"DNSMOS P.835 OVRL (also SIG, BAK) and P.808 of the reconstruction alone, speechmos "
                        f"{package_version(PACKAGE)} ONNX models on onnxruntime {package_version('onnxruntime')}; "
                        "the reference row is the uncoded audio's own score"),
            floor=True)

    def backend(self) -> dict[str, Any]:
        """speechmos (scoring procedure and model files, with their sha256), onnxruntime and librosa (the
        P.808 mel spectrogram) versions."""
        if self._backend_info is None:
            try:
                models = model_digests()
            except MetricError:
                models = {"p835": "missing", "p808": "missing"}
            self._backend_info = {"speechmos": package_version(PACKAGE),
                                  "onnxruntime": package_version("onnxruntime"),
                                  "librosa": package_version("librosa"), "models": models, "device": "cpu"}
        return self._backend_info

    def score(self, ref, rec, sample_rate: int, item=None) -> dict[str, float]:
        from bench import audio as au

        r = as_numpy(ref)
        d = as_numpy(rec)
        check_pair(r, d, self.name)
        x = d.mean(axis=0, keepdims=True).astype(np.float32)
        if sample_rate != RATE:
            x = au.resample(x, sample_rate, RATE)
        x = np.clip(x, -1.0, 1.0)
        try:
            au.check(x, RATE, name="reconstruction")
        except au.AudioError as err:
            raise MetricError(f"dnsmos: {err}; DNSMOS has no meaningful score for it") from None
        return dnsmos_score(x[0], self.threads)
