"""Presets: a paper's evaluation protocol as one name (`bench run --preset semanticodec-paper`).

A preset names codecs, tasks and metrics; anything given explicitly (`--codec`, `--task`, `--metric`)
replaces that part. Every choice the paper does not state is written down in `notes`, which the report
prints in its "how measured" block. Dataset tasks read their roots from `$BENCH_DATA` (see the task
modules for the folder names) unless a root is given in the task name.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    codecs: tuple[str, ...]
    tasks: tuple[str, ...]
    metrics: tuple[str, ...]
    notes: tuple[str, ...]


SEMANTICODEC_PAPER = Preset(
    name="semanticodec-paper",
    description="the headline table of the SemantiCodec paper (Liu et al. 2024, arXiv 2405.00233v2)",
    codecs=(
        # SemantiCodec's three headline rows use the 32768-entry semantic codebook: 1.40 / 0.70 / 0.35 kbps
        "semanticodec:token_rate=100,vocab=32768",
        "semanticodec:token_rate=50,vocab=32768",
        "semanticodec:token_rate=25,vocab=32768",
        "encodec:bandwidth=3",
        "encodec:bandwidth=1.5",
        # the paper's DAC rows were retrained at 0.47-1.41 kbps; the released 16 kHz DAC at 1.0 and 1.5 kbps is
        # the nearest available model (see notes)
        "dac:sample_rate=16000,n_codebooks=3",
        "dac:sample_rate=16000,n_codebooks=2",
    ),
    tasks=(
        "libritts:split=test-clean",
        "musdb:split=test,segment=10",
        "audioset",
        "esc50",
    ),
    metrics=("visqol", "wer", "mel", "stft", "probe"),
    notes=(
        "preset semanticodec-paper: the paper's headline table (ViSQOL-Avg over speech, music and general sound; "
        "WER on LibriTTS; mean HEAR-style accuracy). Choices the paper does not state, made here:",
        "speech = LibriTTS test-clean, every utterance, whole (not cut into windows); transcripts from "
        ".normalized.txt",
        "music = MUSDB18(-HQ) test mixtures, cut into 10 s windows (a last window shorter than 5 s is dropped), "
        "stereo input downmixed to mono by codecs that take one channel",
        "general sound = the AudioSet evaluation segments present on disk (downloads always miss some: the count "
        "is logged), 10 s clips",
        "ViSQOL-Avg = the mean of the speech, music and sound ViSQOL; ViSQOL v3 in speech mode at 16 kHz for "
        "speech items, audio mode at 48 kHz for music and sound",
        "WER: Whisper tiny.en (faster-whisper, int8 on CPU) with Whisper's English normaliser; the paper's ASR "
        "model is not stated in the abstract: published WERs used a larger Whisper, so compare trends, not digits",
        "mel and STFT distances at 16 kHz (descript-audiotools definitions)",
        "semantic accuracy: ESC-50 with HEAR's 5-fold protocol on the codec's embeddings (the paper's own task list "
        "is not reproduced here; add hear:PATH tasks for more)",
        "DAC: the paper retrained DAC at low bitrate; the released 16 kHz DAC at 2 and 3 codebooks (1.0, 1.5 kbps) "
        "stands in, and its rows are not the paper's DAC rows",
        "SemantiCodec decodes with 50 DDIM steps, classifier-free guidance 2.0 (the official defaults)",
        "bitrates are measured from the bitstreams (SemantiCodec: tokens x log2 vocabulary over the real duration)",
    ),
)

PRESETS = {p.name: p for p in (SEMANTICODEC_PAPER,)}


def available_codecs(preset: Preset, weights: str | None = None) -> list[str]:
    """The preset's codecs whose weights are on this machine; the others are named in one warning each.

    `weights` (a folder in a codec's official layout, e.g. SemantiCodec's) goes to the codecs that can look inside
    it and find their files there; every other codec (one whose check cannot look inside a folder, such as Encodec
    and DAC, or one whose files are not in it) is kept only when its weights are in the cache."""
    from bench.codecs import CODECS
    from bench.registry import format_spec, parse_spec

    out = []
    for spec in preset.codecs:
        name, options = parse_spec(spec)
        cls = CODECS.get(name)
        check = getattr(cls, "weights_available", None)
        if check is None:
            out.append(spec)
            continue
        accepted = inspect.signature(check).parameters
        # pass the options that pick a variant (token_rate, vocab; sample_rate as a NeuralCodec's `variant`)
        kwargs = {k: v for k, v in options.items() if k in accepted}
        variant_option = getattr(cls, "variant_option", None)
        if "variant" in accepted and variant_option in options:
            kwargs.setdefault("variant", options[variant_option])
        kwargs.pop("weights", None)
        if weights and CODECS.entry(name).meta.get("needs_weights") and "weights" in accepted \
                and check(**kwargs, weights=weights):
            out.append(format_spec(name, {**options, "weights": weights}))
        elif check(**kwargs):  # in the cache
            out.append(spec)
        else:
            log.warning("preset %s: %s left out: its weights are not here (bench weights fetch %s)", preset.name,
                        spec, name)
    if not out:
        raise ValueError(f"preset {preset.name}: no codec of it has weights here; fetch some (bench weights fetch "
                         "semanticodec) or name codecs with --codec")
    return out


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        import difflib

        close = difflib.get_close_matches(name, PRESETS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown preset {name!r}{hint} Presets: {', '.join(PRESETS)}")
    return PRESETS[name]
