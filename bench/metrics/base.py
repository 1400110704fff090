"""The Metric protocol: a pure scoring function per item plus declarative metadata.

`score(ref, rec, sample_rate, item)` takes float32 `[C, T]` arrays (numpy or torch) already at the
metric's own sample rate when the runner calls it (the runner resamples; a direct caller passing
another rate gets the audio resampled here) and returns named values for that item.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np


class MetricError(ValueError):
    """The metric cannot score this item; the message says why (stored as a failure)."""


@dataclass(frozen=True)
class MetricMeta:
    name: str
    sample_rate: int | None  # Hz the metric computes at; None = at the codec's rate
    higher_is_better: bool
    domains: tuple[str, ...] = ()  # empty: applies to every domain
    unit: str = ""
    definition: str = ""
    needs_text: bool = False  # WER-like metrics need a transcript
    floor: bool = False  # also score the uncoded reference against itself and report it (e.g. the ASR's own WER)
    level: str = "item"  # "item": score(ref, rec) per item; "task": a whole-task evaluation (the HEAR probe)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Metric:
    """Base class. Identity, in two forms:

    - `identity()`: the display string (`mel`, `visqol:mode=audio`), name plus the options that change numbers;
    - `fingerprint()`: `identity()@<10 hex digits>` over name, options, `code_version` and `backend()` (the
      package versions, model files and compute settings behind the numbers): the key scores are stored under,
      so a code change (with its version bump) or another backend never reuses old scores.
    """

    name: ClassVar[str] = ""
    # Bump when a change can move a score (tests/test_versions.py notices an edit without a bump). Every
    # registered metric class sets its own.
    code_version: ClassVar[str] = "1"
    # Options that change only where or how fast the metric runs: out of identity() and fingerprint()
    # (what they do change, e.g. an ASR compute type, enters through backend()).
    RUNTIME_OPTIONS: ClassVar[tuple[str, ...]] = ()
    meta: MetricMeta
    options: dict[str, Any]

    def __init__(self, **options: Any):
        self.options = options

    def score(self, ref, rec, sample_rate: int, item=None) -> dict[str, float]:
        raise NotImplementedError

    @property
    def key(self) -> str:
        """The primary value's name in `score`'s dict (what tables show)."""
        return self.name

    def skip_reason(self, item) -> str | None:
        """Why this metric does not apply to `item` (None if it does)."""
        if item is None:
            return None
        if self.meta.domains and item.domain not in self.meta.domains:
            return f"{self.name} applies to {'/'.join(self.meta.domains)}, not {item.domain}"
        if self.meta.needs_text and not item.text:
            return f"{self.name} needs a transcript and item {item.id} has none"
        return None

    def aggregate(self, rows: list[dict[str, float]]) -> float:
        """Task-level value from per-item dicts (mean of the primary value by default)."""
        values = [r[self.key] for r in rows if self.key in r]
        return float(np.mean(values)) if values else float("nan")

    def identity(self) -> str:
        """Name plus every option that changes the numbers (part of each stored score's key): all options but
        RUNTIME_OPTIONS (threads, device, ... : they enter the key through `backend()` where they matter)."""
        from bench.registry import format_spec

        return format_spec(self.name, {k: v for k, v in self.options.items() if k not in self.RUNTIME_OPTIONS})

    def backend(self) -> dict[str, Any]:
        """What computes the numbers besides this code: package versions, model names and file digests,
        compute type and device (JSON-able values). Empty for pure numpy/torch metrics."""
        return {}

    def fingerprint(self) -> str:
        """`identity()@digest10`: the storage key of this metric's scores. The digest covers name, options
        (runtime ones excepted), code_version, backend() and the pipeline's SCORING_VERSION."""
        from bench.pipeline import SCORING_VERSION, key_part

        blob = json.dumps(
            {"name": self.name,
             "options": {k: v for k, v in self.options.items() if k not in self.RUNTIME_OPTIONS},
             "code": self.code_version, "backend": self.backend(),
             **key_part(SCORING_VERSION)},  # resampling and alignment before the metric (bench/pipeline.py)
            sort_keys=True, default=str)
        return f"{self.identity()}@{hashlib.sha256(blob.encode()).hexdigest()[:10]}"

    def version_info(self) -> dict[str, Any]:
        """For a report's "how measured" block: identity, fingerprint, code version and backend."""
        return {"identity": self.identity(), "fingerprint": self.fingerprint(), "code_version": self.code_version,
                "backend": self.backend()}

    def rate_for(self, codec_rate: int) -> int:
        return self.meta.sample_rate or codec_rate

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.identity()}>"


def package_version(distribution: str) -> str:
    """The installed version of a distribution ("absent" if it is not installed); imports nothing."""
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"


def device_type(device: Any) -> str:
    """"cpu", "cuda", "mps" from a device string or torch.device ("cuda:1" -> "cuda")."""
    return str(getattr(device, "type", None) or str(device).split(":")[0]).lower()


def as_numpy(x) -> np.ndarray:
    """Tensor or array `[C, T]` or `[T]` -> float64 numpy `[C, T]`."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    return x[None] if x.ndim == 1 else x


def check_pair(ref: np.ndarray, rec: np.ndarray, name: str) -> None:
    if ref.shape != rec.shape:
        raise MetricError(f"{name}: reference {tuple(ref.shape)} and reconstruction {tuple(rec.shape)} differ "
                          "in shape; align them first (the runner trims/pads to the reference)")
