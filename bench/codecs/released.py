"""`ReleasedCodec`: the `NeuralCodec` of Encodec and DAC, whose checkpoints are named by sample rate and released twice:
as Hugging Face folders (pins in `hub_pins.HUB_PINS`) and as the authors' original files (`hub_pins.RELEASES`, mapped
to the port's keys by each codec). `bench weights random` writes the original layout.
"""

from __future__ import annotations

from typing import Any, ClassVar

from bench.codecs import weights as W
from bench.codecs.base import OperatingPoint
from bench.codecs.hub_pins import HUB_PINS, RELEASES
from bench.codecs.neural import Checkpoint, NeuralCodec


def checkpoints_of(codec: str, variants: dict[int, Any]) -> dict[str, Checkpoint]:
    """{key: Checkpoint} of a codec's variants (`.key`), the repositories as `hub_pins.RELEASES` names them."""
    return {v.key: Checkpoint(v.key, RELEASES[(codec, v.key)].hub_repo) for v in variants.values()}


class ReleasedCodec(NeuralCodec):
    """Variants keyed by sample rate (`variants`: rate -> a variant with `.key` and `.sample_rate`)."""

    variants: ClassVar[dict[int, Any]] = {}
    variant_option = "sample_rate"
    random_layout = "original"

    @classmethod
    def _checkpoint_key(cls, name: Any) -> str:
        """24000, "24000", "24khz", 24 -> "24khz" (ValueError for a rate it does not have)."""
        return W.normalise_variant(cls.name, name)

    @classmethod
    def _choices(cls) -> str:
        return ", ".join(str(sr) for sr in cls.variants)

    @classmethod
    def variant_for(cls, sample_rate: Any) -> Any:
        key = cls.checkpoint_for(sample_rate).key
        return next(v for v in cls.variants.values() if v.key == key)

    @property
    def variant(self) -> Any:
        return self.variant_for(self.checkpoint.key)

    @classmethod
    def nearest_operating_point(cls, kbps: float, options: dict[str, Any] | None = None) -> OperatingPoint:
        options = dict(options or {})
        if "sample_rate" in options:  # compare variants by value, whatever spelling the user gave
            options["sample_rate"] = cls.variant_for(options["sample_rate"]).sample_rate
        return super().nearest_operating_point(kbps, options)

    @classmethod
    def _source(cls, ck: Checkpoint, source: str):
        """hub: the pinned Hugging Face folder (looked up now: `HUB_PINS` may be completed at run time); original:
        the authors' release file."""
        if source == "hub":
            return HUB_PINS[(cls.name, ck.key)], list(W.HF_FILES)
        if source == "original":
            return RELEASES[(cls.name, ck.key)], None
        raise ValueError(f"source must be 'hub' or 'original', not {source!r}")
