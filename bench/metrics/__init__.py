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
METRICS.register("visqol", "bench.metrics.visqol:ViSQOL", sample_rate=48000, higher_is_better=True, domains=(),
                 description="ViSQOL v3 MOS-LQO: speech mode at 16 kHz for speech items, audio mode at 48 kHz else")
METRICS.register("wer", "bench.metrics.wer:WER", sample_rate=16000, higher_is_better=False, domains=("speech",),
                 description="WER after coding: faster-whisper tiny.en (offline), Whisper normaliser, jiwer")
METRICS.register("pesq", "bench.metrics.signal:PESQ", sample_rate=16000, higher_is_better=True, domains=("speech",),
                 description="PESQ wideband at 16 kHz (band=nb: narrowband at 8 kHz)")
METRICS.register("stoi", "bench.metrics.signal:STOI", sample_rate=16000, higher_is_better=True, domains=("speech",),
                 description="STOI (pystoi; 10 kHz inside), 0..1")
METRICS.register("estoi", "bench.metrics.signal:ESTOI", sample_rate=16000, higher_is_better=True,
                 domains=("speech",), description="extended STOI (pystoi; 10 kHz inside), 0..1")
METRICS.register("sisdr", "bench.metrics.signal:SISDR", sample_rate=None, higher_is_better=True, domains=(),
                 description="scale-invariant SDR in dB at the codec's rate")
METRICS.register("dnsmos", "bench.metrics.dnsmos:DNSMOS", sample_rate=16000, higher_is_better=True,
                 domains=("speech",), description="DNSMOS P.835 OVRL (+SIG, BAK, P.808) of the reconstruction alone; "
                 "speechmos' ONNX models on onnxruntime (offline); reference row = the uncoded audio's score")
METRICS.register("warpq", "bench.metrics.warpq:WARPQ", sample_rate=16000, higher_is_better=False,
                 domains=("speech",), description="WARP-Q (Jassim et al. 2021): median subsequence-DTW cost of MFCC "
                 "patches after WebRTC VAD, the warpq package's defaults; lower is better")
METRICS.register("spk-sim", "bench.metrics.speaker:SpeakerSimilarity", sample_rate=16000, higher_is_better=True,
                 domains=("speech",), description="cosine of WavLM-Base-Plus-SV speaker embeddings, reference vs "
                 "reconstruction (weights: bench weights fetch spk-sim, or spk-sim:weights=DIR)")
METRICS.register("probe", "bench.metrics.probe:Probe", sample_rate=None, higher_is_better=True, domains=(),
                 level="task", description="HEAR-protocol accuracy of time-pooled embeddings (MLP probe)")


def load_metric(name: str, **options: Any):
    """Build a metric by name; options may ride in the name: "mel:sample_rate=44100"."""
    from bench.codecs.base import unknown_options
    from bench.metrics.base import MetricError

    base, spec_options = parse_spec(name)
    cls = METRICS.get(base)
    options = {**spec_options, **options}
    unknown, accepted = unknown_options(cls, options)  # one line, as for codecs; **options classes check their own
    if unknown:
        raise MetricError(f"metric {base!r} has no option {', '.join(map(repr, unknown))}; "
                          f"accepted options: {', '.join(accepted) or '(none)'}.")
    return cls(**options)
