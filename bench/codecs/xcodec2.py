"""X-Codec2 (Ye et al. 2025, the Llasa codec) on transformers' `Xcodec2Model`: 16 kHz mono, one FSQ codebook.

Shapes: audio float32 `[B, 1, T]` at 16 kHz; codes int64 `[B, 1, N]`, N = ceil((T + 1) / 320): like the authors'
code and transformers' feature extractor, the audio gets one zero sample and is then zero-padded to whole 320-sample
frames, so a clip of whole frames carries one frame more (the measured bitrate is 16 x N / seconds, e.g. 816 bit/s
for 1 s, 800 bit/s in the limit); embeddings `[B, N, 2048]` for the released model: the codebook entry after the
quantiser's output projection, which is what the decoder receives. The single codebook has prod(quantization_levels)
= 4^8 = 65536 entries (16 bits) at 50 frames/s: 0.8 kbps, read from transformers' `Xcodec2Config` (the release's
defaults) and from each loaded model's config.

Semantic input: the Wav2Vec2-BERT half takes 80 Kaldi log-mel filterbanks (25 ms Povey window, 10 ms hop, 0.97
pre-emphasis, DC removed, 20 Hz-8 kHz, no dither), each bin normalised over the clip (unbiased variance + 1e-7),
stacked in pairs (160 values at 50 frames/s), computed here in torch with transformers' `mel_filter_bank` (Kaldi mel
scale) because transformers' `Xcodec2FeatureExtractor` needs torchaudio; tests/data/reference/xcodec2_features.json
holds that extractor's output (with torchaudio's Kaldi fbank), which these features match to ~1e-4.

Weights: a Hugging Face folder (config.json + model.safetensors: HKUSTAudio/xcodec2-hf, the checkpoint transformers'
documentation names), as `bench weights random xcodec2` writes it. Licence CC-BY-NC-4.0: non-commercial use only.
The authors' original release (HKUSTAudio/xcodec2, `ckpt/epoch=4-step=1400000.ckpt`) is not mapped: its key names
could not be read offline.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch

from bench.codecs.base import Encoded, OperatingPoint
from bench.codecs.neural import Checkpoint, NeuralCodec, Rates

log = logging.getLogger(__name__)

CHECKPOINTS = {"16khz": Checkpoint("16khz", "HKUSTAudio/xcodec2-hf",
                                source="https://huggingface.co/docs/transformers/main/model_doc/xcodec2 (checkpoint); "
                                       "model card licence cc-by-nc-4.0")}
LICENCE = "CC-BY-NC-4.0 (weights: NON-COMMERCIAL)"
PAPER = ("Ye et al. 2025, Llasa: Scaling Train-Time and Inference-Time Compute for Llama-based Speech Synthesis, "
         "arXiv:2502.04128")

# The semantic encoder's filterbank (the release's feature extractor settings)
N_MELS, WIN, SHIFT, N_FFT, STACK = 80, 400, 160, 512, 2
PREEMPHASIS, POVEY, LOW_HZ = 0.97, 0.85, 20.0


def reference_config(tiny: bool = False, **overrides: Any):
    """The released model's config (transformers' `Xcodec2Config` defaults); `tiny` narrows every layer for tests
    and keeps the sample rate, hop (320), quantisation levels and the semantic input (160 = 80 mels x 2)."""
    from transformers import Xcodec2Config

    kw: dict[str, Any] = {}
    if tiny:  # GroupNorm(32) in the decoder: hidden_size a multiple of 32
        kw.update(hidden_size=32, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                  num_key_value_heads=2, head_dim=16, encoder_hidden_size=2, quantization_dim=64,
                  semantic_model_config=dict(model_type="wav2vec2-bert", hidden_size=32, num_hidden_layers=1,
                                             num_attention_heads=2, intermediate_size=32, output_hidden_size=32,
                                             conv_depthwise_kernel_size=3))
    kw.update(overrides)
    return Xcodec2Config(**kw)


def _rates(config) -> tuple[int, float, float]:
    """(codebook entries, frames/s, bits per code) of an X-Codec2 config."""
    entries = math.prod(config.quantization_levels)
    return entries, config.sampling_rate / config.hop_length, math.log2(entries)


def kaldi_fbank(wave: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Log mel filterbank of one waveform `[L]` (already scaled to int16 range) -> `[F, 80]`, F = 1 + (L - 400) // 160
    (Kaldi's snip_edges framing)."""
    from transformers.audio_utils import mel_filter_bank

    frames = wave.double().unfold(0, WIN, SHIFT)
    frames = frames - frames.mean(dim=-1, keepdim=True)
    frames = frames - PREEMPHASIS * torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
    window = torch.hann_window(WIN, periodic=False, dtype=torch.float64).pow(POVEY)
    power = torch.fft.rfft(frames * window, n=N_FFT).abs().pow(2)
    bank = mel_filter_bank(N_FFT // 2 + 1, N_MELS, LOW_HZ, sample_rate / 2, sample_rate, None, "kaldi", True)
    mel = power @ torch.from_numpy(bank)
    return mel.clamp(min=torch.finfo(torch.float32).eps).log().float()


def xcodec2_inputs(x: torch.Tensor, hop: int, sample_rate: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Audio `[B, 1, T]` -> (input_values `[B, 1, L]`, input_features `[B, L / hop, 160]`), L = ceil((T + 1) / hop) x
    hop: what transformers' `Xcodec2FeatureExtractor` gives for a batch of equal-length items."""
    b, _, t = x.shape
    length = math.ceil((t + 1) / hop) * hop
    values = torch.nn.functional.pad(x, (0, length - t))
    feats = []
    for i in range(b):
        wave = torch.nn.functional.pad(values[i, 0], (hop // 2, hop // 2)) * 32768.0
        f = kaldi_fbank(wave, sample_rate)
        f = (f - f.mean(dim=0)) / torch.sqrt(f.var(dim=0, unbiased=True) + 1e-7)
        if f.shape[0] % STACK:
            f = torch.nn.functional.pad(f, (0, 0, 0, STACK - f.shape[0] % STACK), value=1.0)
        feats.append(f.reshape(f.shape[0] // STACK, N_MELS * STACK))
    return values, torch.stack(feats)


class XCodec2(NeuralCodec):
    """X-Codec2 at its one operating point (0.8 kbps). Options: weights=PATH, device, pretrained (False: random),
    tiny (narrow random model for tests), seed."""

    name = "xcodec2"
    code_version = "1"
    licence = LICENCE
    paper = PAPER
    checkpoints = CHECKPOINTS
    default_checkpoint = "16khz"

    def __init__(self, weights: str | None = None, device: str = "cpu", pretrained: bool = True, tiny: bool = False,
                 seed: int = 0):
        self._setup(None, {}, weights, device, pretrained, tiny, seed)

    @classmethod
    def config_for(cls, key: str, tiny: bool = False):
        return reference_config(tiny=tiny)

    @classmethod
    def _port_class(cls):
        from transformers import Xcodec2Model

        return Xcodec2Model

    @classmethod
    def _random_model(cls, key: str, tiny: bool, seed: int):
        model = cls._port_class()(reference_config(tiny=tiny))
        with torch.no_grad():  # the port's init (N(0, 0.02) projections) quantises everything to one code: redraw
            for name, p in model.named_parameters():
                if p.ndim >= 2:
                    p.normal_(0.0, 1.0 / math.sqrt(math.prod(p.shape[1:])))
                elif name.endswith("bias"):
                    p.normal_(0.0, 0.1)
        return model

    def _configure(self, cfg) -> Rates:
        entries, frame_rate, bits = _rates(cfg)
        self.hop = int(cfg.hop_length)
        return Rates(int(cfg.sampling_rate), frame_rate, (entries,), kbps=bits * frame_rate / 1000)

    @classmethod
    def operating_points(cls) -> list[OperatingPoint]:
        entries, frame_rate, bits = _rates(reference_config())
        kbps = bits * frame_rate / 1000
        return [OperatingPoint(kbps, {}, f"xcodec2 {kbps:g} kbps (1 codebook of {entries})")]

    # -- the work: codes [B, 1, ceil((T + 1) / 320)] -------------------------------------------------------

    def inputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Checked audio `[B, 1, T]` -> the model's (input_values, input_features); see `xcodec2_inputs`."""
        return xcodec2_inputs(x, self.hop, self.meta.sample_rate)

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        values, feats = self.inputs(x)
        mask = torch.ones(feats.shape[:2], dtype=torch.long)
        out = self.model.encode(values.to(self.device), feats.to(self.device), input_features_mask=mask.to(self.device))
        return out.audio_codes

    def _decode(self, enc: Encoded) -> torch.Tensor:
        return self.model.decode(audio_codes=enc.codes.to(self.device)).audio_values

    def _embedding(self, codes: torch.Tensor) -> torch.Tensor:
        """The codebook entry, output-projected, that the decoder receives (D = 2048 for the released model)."""
        return self.model.quantizer.from_codes(codes.transpose(1, 2))

    @classmethod
    def fetch(cls, dest: Path | None = None, variant: str | None = None, trust_unpinned: bool = False,
              source: str = "hub") -> Path:
        log.warning("xcodec2 weights are CC-BY-NC-4.0: non-commercial use only")
        return super().fetch(dest, variant, trust_unpinned, source)
