"""Metric registry (strings and metadata only)."""

from __future__ import annotations

from typing import Any

from bench.registry import Registry, parse_spec

METRICS = Registry("metric")

METRICS.register("stft", "bench.metrics.spectral:STFTDistance", sample_rate=16000, higher_is_better=False,
                 domains=(), description="multi-resolution log+linear STFT distance (audiotools MultiScaleSTFTLoss)")
METRICS.register("mel", "bench.metrics.spectral:MelDistance", sample_rate=16000, higher_is_better=False,
                 domains=(), description="mel distance, 150/80 mels on 2048/512 windows (audiotools defaults)")
METRICS.register("mel-dac", "bench.metrics.spectral:MelDistanceDAC", sample_rate=16000, higher_is_better=False,
                 domains=(), description="DAC's 7-resolution mel distance (conf/base.yml)")


def load_metric(name: str, **options: Any):
    """Build a metric by name; options may ride in the name: "mel:sample_rate=44100"."""
    base, spec_options = parse_spec(name)
    cls = METRICS.get(base)
    return cls(**{**spec_options, **options})
