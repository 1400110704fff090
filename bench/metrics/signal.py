"""Signal-level metrics: SI-SDR, PESQ (ITU-T P.862 / P.862.2) and STOI / ESTOI.

- **sisdr**: scale-invariant signal-to-distortion ratio (Le Roux et al., "SDR - half-baked or well done?",
  ICASSP 2019), in dB, computed here in numpy: both signals made zero-mean, the reference scaled by the
  least-squares gain `a = <rec, ref> / <ref, ref>`, then `10 log10(|a ref|^2 / |rec - a ref|^2)`. Computed at the
  codec's rate (meta.sample_rate None) per channel and averaged over channels.
- **pesq**: the `pesq` package (ITU reference C code). Wideband (P.862.2) at 16 kHz by default, narrowband
  (P.862 + P.862.1 mapping) at 8 kHz with `band=nb`. Scale: MOS-LQO, about 1.0 to 4.64 (wb) / 4.55 (nb).
- **stoi** / **estoi**: the `pystoi` package (Taal et al. 2011; Jensen & Taal 2016 for the extended version).
  pystoi resamples to its own 10 kHz internally; we hand it 16 kHz audio and say so.

PESQ and STOI are speech metrics (domains ("speech",)); multichannel input is mixed to mono first.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any, ClassVar

import numpy as np

from bench.metrics.base import Metric, MetricError, MetricMeta, as_numpy, check_pair, package_version

log = logging.getLogger(__name__)

PESQ_INSTALL_HINT = ("PESQ needs the optional `pesq` package, which compiles C code (needs a C compiler): "
                     "pip install pesq  (a C compiler is needed: it builds from source)")
STOI_INSTALL_HINT = "STOI needs the `pystoi` package: pip install pystoi"


# -- pure functions ------------------------------------------------------------------------------------


def si_sdr(ref: np.ndarray, rec: np.ndarray) -> float:
    """SI-SDR in dB of `rec` against `ref`, both 1-D (one channel, any sample rate).

    Zero-mean both, project `rec` onto `ref`: target = a * ref with a = <rec, ref> / <ref, ref>,
    noise = rec - target. Raises MetricError on a silent (all-constant) reference. A perfect copy gives a
    large finite value (the ratio is regularised with float64 eps, as torchmetrics does).
    Inner products are correctly rounded sums (`math.fsum`), not BLAS dots, so the score is the same to the last
    digit whatever the thread count or CPU.
    """
    ref = np.asarray(ref, dtype=np.float64).ravel()
    rec = np.asarray(rec, dtype=np.float64).ravel()
    ref = ref - ref.mean()
    rec = rec - rec.mean()
    ref_energy = _dot(ref, ref)
    if ref_energy <= np.finfo(np.float64).tiny:
        raise MetricError("sisdr: the reference is silent (zero energy after removing the mean); SI-SDR is undefined")
    alpha = _dot(rec, ref) / ref_energy
    target = alpha * ref
    noise = rec - target
    eps = np.finfo(np.float64).eps
    return float(10.0 * np.log10((_dot(target, target) + eps) / (_dot(noise, noise) + eps)))


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """<a, b> correctly rounded: BLAS splits a dot product by thread, so its last bits follow the thread count."""
    return math.fsum(np.multiply(a, b).tolist())


def _mono(x: np.ndarray) -> np.ndarray:
    """`[C, T]` -> `[T]` (channel mean)."""
    return x.mean(axis=0)


def _resampled_pair(ref, rec, sample_rate: int, rate: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Both to float64 mono `[T]` at `rate`, checked for equal shape."""
    from bench import audio as au

    r = as_numpy(ref)
    d = as_numpy(rec)
    check_pair(r, d, name)
    if sample_rate != rate:
        r = au.resample(r.astype(np.float32), sample_rate, rate).astype(np.float64)
        d = au.resample(d.astype(np.float32), sample_rate, rate).astype(np.float64)
    return _mono(r), _mono(d)


def _check_not_silent(x: np.ndarray, rate: int, name: str, what: str) -> None:
    from bench import audio as au

    try:
        au.check(x[None], rate, name=what)
    except au.AudioError as err:
        raise MetricError(f"{name}: {err}") from None


# -- metric classes ------------------------------------------------------------------------------------


class SISDR(Metric):
    """Scale-invariant SDR in dB, at the rate it is given (`[C, T]` in; channels averaged)."""

    name: ClassVar[str] = "sisdr"
    code_version: ClassVar[str] = "2"  # 2: thread-independent inner products

    def __init__(self, **options: Any):
        if options:
            raise MetricError(f"sisdr takes no options (got {', '.join(options)})")
        super().__init__()
        self.meta = MetricMeta(name="sisdr", sample_rate=None, higher_is_better=True, domains=(), unit="dB",
                               definition="SI-SDR (Le Roux et al. 2019), zero-mean, numpy, per channel then mean")

    def score(self, ref, rec, sample_rate: int, item=None) -> dict[str, float]:
        r = as_numpy(ref)
        d = as_numpy(rec)
        check_pair(r, d, self.name)
        return {"sisdr": float(np.mean([si_sdr(r[c], d[c]) for c in range(r.shape[0])]))}


class PESQ(Metric):
    """PESQ MOS-LQO; option band="wb" (16 kHz, default) or "nb" (8 kHz). Input `[C, T]`, mixed to mono."""

    name: ClassVar[str] = "pesq"
    code_version: ClassVar[str] = "1"
    BANDS: ClassVar[dict[str, int]] = {"wb": 16000, "nb": 8000}

    def __init__(self, band: str = "wb"):
        band = str(band).lower()
        if band not in self.BANDS:
            raise MetricError(f"pesq: band must be 'wb' (16 kHz wideband) or 'nb' (8 kHz narrowband), not {band!r}")
        super().__init__(**({"band": band} if band != "wb" else {}))
        self.band = band
        self.meta = MetricMeta(
            name="pesq", sample_rate=self.BANDS[band], higher_is_better=True, domains=("speech",), unit="MOS-LQO",
            definition=("ITU-T P.862.2 wideband PESQ" if band == "wb" else "ITU-T P.862 narrowband PESQ (P.862.1 map)")
            + " via the pesq package")

    def backend(self) -> dict[str, Any]:
        return {"pesq": package_version("pesq")}

    def score(self, ref, rec, sample_rate: int, item=None) -> dict[str, float]:
        try:
            import pesq as pesq_lib
        except ImportError:
            raise MetricError(PESQ_INSTALL_HINT) from None
        rate = self.meta.sample_rate
        r, d = _resampled_pair(ref, rec, sample_rate, rate, self.name)
        _check_not_silent(r, rate, self.name, "reference")
        _check_not_silent(d, rate, self.name, "reconstruction")
        try:
            value = pesq_lib.pesq(rate, r, d, self.band)
        except pesq_lib.PesqError as err:  # NoUtterancesError, BufferTooShortError, ...
            detail = err.args[0] if err.args else ""
            detail = detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)
            raise MetricError(f"pesq failed: {type(err).__name__}: {detail}") from None
        return {"pesq": float(value)}


class STOI(Metric):
    """STOI, 0..1 (ESTOI with extended=True); input `[C, T]` mixed to mono, handed to pystoi at 16 kHz."""

    name: ClassVar[str] = "stoi"
    code_version: ClassVar[str] = "1"
    RATE: ClassVar[int] = 16000  # what we hand pystoi; it resamples to 10 kHz itself

    def __init__(self, extended: bool = False):
        super().__init__(**({"extended": True} if extended else {}))
        self._setup(bool(extended))

    def _setup(self, extended: bool) -> None:
        self.extended = extended
        self.meta = MetricMeta(
            name=self.name, sample_rate=self.RATE, higher_is_better=True, domains=("speech",), unit="",
            definition=("ESTOI (Jensen & Taal 2016)" if extended else "STOI (Taal et al. 2011)")
            + " via pystoi, which resamples 16 kHz input to 10 kHz internally")

    @property
    def key(self) -> str:
        return "estoi" if self.extended else "stoi"

    def backend(self) -> dict[str, Any]:
        return {"pystoi": package_version("pystoi")}

    def score(self, ref, rec, sample_rate: int, item=None) -> dict[str, float]:
        try:
            from pystoi import stoi as stoi_fn
        except ImportError:
            raise MetricError(STOI_INSTALL_HINT) from None
        r, d = _resampled_pair(ref, rec, sample_rate, self.RATE, self.name)
        _check_not_silent(r, self.RATE, self.name, "reference")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = stoi_fn(r, d, self.RATE, extended=self.extended)
        # pystoi returns a placeholder 1e-5 (with a warning) when fewer than 30 frames (384 ms) of speech remain
        # after dropping silent frames: that is not a score.
        for w in caught:
            if "Not enough STFT frames" in str(w.message):
                raise MetricError(f"{self.key}: fewer than 384 ms of non-silent speech in the reference "
                                  "(pystoi needs 30 frames); give a longer clip")
        return {self.key: float(value)}


class ESTOI(STOI):
    """Extended STOI (the registry name `estoi`; same as `stoi:extended=true`)."""

    name: ClassVar[str] = "estoi"
    code_version: ClassVar[str] = "1"

    def __init__(self):
        Metric.__init__(self)
        self._setup(True)
