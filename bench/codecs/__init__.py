"""Codec registry. Entries are strings and plain metadata: importing this never imports torch.

Add a codec: write a `Codec` subclass in its own module and register it below with its metadata
(the registry test checks the metadata against the class).
"""

from __future__ import annotations

import inspect
import logging
import math
from typing import Any

from bench.registry import Registry, parse_spec

log = logging.getLogger(__name__)

CODECS = Registry("codec")

CODECS.register(
    "identity", "bench.codecs.classic:Identity",
    sample_rate=None, channels=None, operating_points=(), frame_rate=None,
    needs_weights=False, licence="-", description="passes audio through: the metrics' ceiling",
)
CODECS.register(
    "opus", "bench.codecs.classic:Opus",
    sample_rate=48000, channels=1, operating_points=(6, 8, 12, 16, 24, 32, 64), frame_rate=50,
    needs_weights=False, licence="BSD-3-Clause (libopus)", description="Opus (RFC 6716) via PyAV/libopus",
)
CODECS.register(
    "mp3", "bench.codecs.classic:MP3",
    sample_rate=16000, channels=1, operating_points=(8, 16, 24, 32, 64), frame_rate=None,
    needs_weights=False, licence="LGPL-2.0 (LAME)", description="MP3 via PyAV/libmp3lame",
)
CODECS.register(
    "codec2", "bench.codecs.classic:Codec2",
    sample_rate=8000, channels=1, operating_points=(0.7, 1.2, 1.3, 1.4, 1.6, 2.4, 3.2), frame_rate=None,
    needs_weights=False, licence="LGPL-2.1 (libcodec2)", description="Codec 2 speech codec via pycodec2",
)
CODECS.register(  # sample_rate= picks the model: 24000 (mono, 1.5-24 kbps) or 48000 (stereo, 3-24 kbps)
    "encodec", "bench.codecs.encodec:Encodec",
    sample_rate="24000|48000", channels="1|2", operating_points=(1.5, 3, 6, 12, 24), frame_rate="75|150",
    needs_weights=True, licence="MIT", description="Encodec (Meta) via transformers; 2-32 codebooks x 10 bits",
)
CODECS.register(  # sample_rate= picks the model; n_codebooks= 1-12 (16k), 1-32 (24k), 1-9 (44.1k)
    "dac", "bench.codecs.dac:DAC",
    sample_rate="16000|24000|44100", channels=1, frame_rate="50|75|86.13",
    operating_points=tuple(sorted({round(k * per, 2) for per, n in ((0.5, 12), (0.75, 32), (0.861328125, 9))
                                   for k in range(1, n + 1)})),
    needs_weights=True, licence="MIT",
    description="Descript Audio Codec via transformers; 0.5/0.75/0.86 kbps per codebook",
)
CODECS.register(  # token_rate= 25/50/100 x vocab= 4096-32768; tiny: random-weight test model
    "semanticodec", "bench.codecs.semanticodec.codec:SemantiCodec",
    sample_rate=16000, channels=1, frame_rate="12.5|25|50",
    operating_points=(0.3125, 0.325, 0.3375, 0.35, 0.625, 0.65, 0.675, 0.7, 1.25, 1.3, 1.35, 1.4),
    needs_weights=True, licence="MIT (official code); weights: see huggingface.co/haoheliu/SemantiCodec",
    description="SemantiCodec: AudioMAE semantic + acoustic tokens, diffusion decoder",
)
CODECS.register(  # n_codebooks= 1-32 (1 semantic + acoustic), 2048 entries (11 bits) at 12.5 frames/s
    "mimi", "bench.codecs.mimi:Mimi",
    sample_rate=24000, channels=1, frame_rate=12.5,
    operating_points=tuple(round(k * 11 * 12.5 / 1000, 4) for k in range(1, 33)),
    needs_weights=True, licence="CC-BY-4.0 (weights)", description="Mimi (Kyutai) via transformers; 0.1375 kbps per codebook",
)
CODECS.register(  # variant= speech | general; bandwidth= the config's target_bandwidths (1024 entries, 50 frames/s)
    "xcodec", "bench.codecs.xcodec:XCodec",
    sample_rate=16000, channels=1, frame_rate=50, operating_points=(0.5, 1, 1.5, 2, 4),
    needs_weights=True, licence="CC-BY-4.0 (weights)", description="X-Codec via transformers: HuBERT semantic + DAC acoustic RVQ",
)
CODECS.register(  # one FSQ codebook of 4^8 = 65536 entries (16 bits) at 50 frames/s
    "xcodec2", "bench.codecs.xcodec2:XCodec2",
    sample_rate=16000, channels=1, frame_rate=50, operating_points=(0.8,),
    needs_weights=True, licence="CC-BY-NC-4.0 (weights: NON-COMMERCIAL)", non_commercial=True,
    description="X-Codec2 via transformers: Wav2Vec2-BERT + acoustic encoder, one FSQ codebook",
)
CODECS.register(  # one FSQ code of 4^8 = 65536 values (16 bits) per 20 ms; the decoder's 24 kHz output is resampled
    "neucodec", "bench.codecs.neucodec:NeuCodec",  # to 16 kHz by decode() (decode_native() keeps 24 kHz)
    sample_rate=16000, channels=1, frame_rate=50, operating_points=(0.8,), native_output_rate=24000,
    needs_weights=True, licence="Apache-2.0",
    description="NeuCodec (Neuphonic) via transformers: 16 kHz in, 24 kHz decoder (scored at 16 kHz), one FSQ codebook",
)
CODECS.register(  # token_rate= 40 | 75 (hop 600 | 320), one codebook of 4096 (12 bits); checkpoint= a release
    "wavtokenizer", "bench.codecs.wavtokenizer:WavTokenizer",
    sample_rate=24000, channels=1, frame_rate="40|75", operating_points=(0.48, 0.9),
    needs_weights=True, licence="MIT", description="WavTokenizer via transformers: one 4096-entry codebook, Vocos decoder",
)
CODECS.register(  # n_codebooks= 1-16 of 1024 entries (10 bits) at 25 frames/s: 0.25 kbps each
    "higgs", "bench.codecs.higgs:Higgs",
    sample_rate=24000, channels=1, frame_rate=25, operating_points=tuple(k * 0.25 for k in range(1, 17)),
    needs_weights=True, restricted_commercial=True,
    licence="Boson Higgs Audio 2 Community License (Llama-3-based; commercial use capped at 100k annual active users)",
    description="Higgs audio v2 tokenizer (Boson AI) via transformers: HuBERT + DAC encoders, RVQ",
)


def load_codec(name: str, bitrate: float | None = None, **options: Any):
    """Build a codec by name. `name` may carry options: "encodec:bandwidth=6", "opus:bitrate=6".

    `bitrate` (kbps) picks the nearest operating point and logs which one was chosen; explicit
    options win over the operating point's.
    """
    from bench.codecs.base import CodecError, check_options

    base, spec_options = parse_spec(name)
    options = {**spec_options, **options}
    if "bitrate" in options:
        bitrate = float(options.pop("bitrate"))
    if bitrate is not None and not (math.isfinite(float(bitrate)) and float(bitrate) > 0):
        raise CodecError(f"--bitrate must be a positive number of kbps, got {bitrate}")
    cls = CODECS.get(base)
    if bitrate is not None:
        takes_options = "options" in inspect.signature(cls.nearest_operating_point).parameters
        point = (cls.nearest_operating_point(float(bitrate), options=options) if takes_options
                 else cls.nearest_operating_point(float(bitrate)))  # a variant option narrows the choice
        if abs(point.kbps - bitrate) > 1e-6:
            log.warning(
                "%s: no operating point at %g kbps; using the nearest, %g kbps (%s). Available: %s kbps.",
                base, bitrate, point.kbps, point.label or point.options,
                ", ".join(f"{p.kbps:g}" for p in cls.operating_points()),
            )
        else:
            log.info("%s: %g kbps -> %s", base, bitrate, point.label or point.options)
        options = {**point.options, **options}
    check_options(cls, options)
    try:
        return cls(**options)
    except TypeError as err:  # a wrongly typed option
        raise CodecError(f"codec {base!r}: {err}") from err
