"""Versions of the shared steps every stored number passes through outside any codec or metric class.

A codec's or metric's own sources are tracked by its `code_version` (tests/update_code_versions.py). These are
the steps around them:

- CODING_VERSION: an item's way from its file to the codec and back. bench/audio.py loads, mixes channels and
  resamples it (soxr); bench/coding.py pads batches, trims and checks the decoded output that is cached. It
  enters every codec fingerprint: a bump re-codes every item.
- SCORING_VERSION: a decoded output's way to a metric. bench/scoring.py (with bench/audio.py) resamples the
  reference and the reconstruction to the metric's rate and aligns their lengths. It enters every metric key:
  a bump re-scores every item and keeps the codecs' outputs.

tests/test_versions.py fails when those files change while these stay (bump them for a change that can move a
number; for one that cannot, run `python -m tests.update_code_versions` and say why in the commit). Version "1"
adds nothing to a key, so the keys written before these versions existed (by the same code) stay valid.
"""

from __future__ import annotations

CODING_VERSION = "1"
SCORING_VERSION = "1"


def key_part(version: str) -> dict[str, str]:
    """What a version adds to a fingerprint's blob: nothing for "1", else {"pipeline": version}."""
    return {} if version == "1" else {"pipeline": version}
