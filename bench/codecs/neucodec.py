"""NeuCodec (Neuphonic 2025) on transformers' `NeuCodecModel`: 16 kHz speech in, one FSQ code per frame, 24 kHz out.

Shapes: audio float32 `[B, 1, T]` at 16 kHz (`codec.sample_rate`); codes int64 `[B, 1, N]`, N = floor(T / 320): one
code of prod(quantization_levels) values (4^8 = 65536, 16 bits) per 320 input samples, 50 frames/s, 0.8 kbps;
embeddings `[B, N, 2048]` (the FSQ code projected back, which the decoder receives).

Output rate. The decoder synthesises 24 kHz audio (`config.output_sampling_rate`). The Codec protocol returns decoded
audio at `meta.sample_rate`, the rate encode takes, so `decode()` resamples the 24 kHz output to 16 kHz with
`bench.audio.resample` (soxr, the one place where rates change) and `decode_native()` returns the decoder's own
24 kHz output. Scores therefore describe what the codec delivers in the band its input carries; the 8-12 kHz band the
decoder adds (synthesised: a 16 kHz input has nothing there) is not scored. `meta.frame_rate` is per input second.

Semantic features. The reference feature extractor (`NeuCodecFeatureExtractor`) needs torchaudio's Kaldi fbank, and
bench does not install torchaudio (no CPU build for the torch it uses). `kaldi_fbank` computes the same features
(80 log-mel bins of 25 ms povey windows every 10 ms, DC removed, pre-emphasis 0.97, samples scaled by 2^15; the
standard Kaldi recipe) and `semantic_features` pads, normalises per utterance and stacks frame pairs as the extractor
does. tests/data/reference/zoo_b_features.npz holds features the real extractor computed (torchaudio 2.9.1,
transformers 5.24.0) that the tests compare against.

Weights. The Hugging Face folder of neuphonic/neucodec (config.json + model.safetensors, converted by transformers;
the repository is gated: accept its terms on the hub and `hf auth login` before `bench weights fetch neucodec`). The
authors' original `pytorch_model.bin` (same repository) is not accepted: it lacks the semantic encoder, which the
original code takes from a second checkpoint (facebook/w2v-bert-2.0), and it fuses each attention's q/k/v with a
rotary permutation, so loading it means assembling two checkpoints; use the converted folder.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from bench.codecs.base import CodecError, Encoded, OperatingPoint
from bench.codecs.neural import Checkpoint, NeuralCodec, Rates

CHECKPOINTS = {"neucodec": Checkpoint("neucodec", "neuphonic/neucodec", gated=True,
                                         source="https://huggingface.co/neuphonic/neucodec")}
LICENCE = "Apache-2.0"
PAPER = ("Finite Scalar Quantization Enables Redundant and Transmission-Robust Neural Audio Compression at Low "
         "Bit-rates, arXiv:2509.09550 (Neuphonic)")

# The semantic branch's features (NeuCodecFeatureExtractor): Kaldi fbank at 16 kHz, pairs of frames stacked.
N_MELS, FRAME, SHIFT, STACK, MEL_PAD = 80, 400, 160, 2, 1.0
_EPS = float(torch.finfo(torch.float32).eps)


def neucodec_config(tiny: bool = False):
    """The released architecture (transformers' defaults: 48-channel acoustic encoder, 16-layer Wav2Vec2-BERT,
    1024-wide decoder); `tiny` narrows every layer (tests), keeping rates, hop and FSQ levels."""
    from transformers import NeuCodecConfig, Wav2Vec2BertConfig

    if not tiny:
        return NeuCodecConfig()
    semantic = Wav2Vec2BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                                  output_hidden_size=16, conv_depthwise_kernel_size=3, layerdrop=0.0,
                                  feature_projection_input_dim=N_MELS * STACK)
    return NeuCodecConfig(hidden_size=32, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                          num_key_value_heads=2, head_dim=16, encoder_hidden_size=2, quantization_dim=48,
                          semantic_model_config=semantic)


def _kaldi_mel_banks(n_fft: int, sample_rate: float, low: float = 20.0, high: float = 0.0) -> torch.Tensor:
    """Kaldi's triangular mel filters `[N_MELS, n_fft // 2 + 1]` (mel = 1127 ln(1 + f / 700); Nyquist column 0)."""
    nyquist = sample_rate / 2
    high = high if high > 0 else high + nyquist
    mel = lambda f: 1127.0 * math.log(1.0 + f / 700.0)  # noqa: E731
    lo, hi = mel(low), mel(high)
    delta = (hi - lo) / (N_MELS + 1)
    b = torch.arange(N_MELS).unsqueeze(1)
    left, center, right = lo + b * delta, lo + (b + 1.0) * delta, lo + (b + 2.0) * delta
    freqs = 1127.0 * (1.0 + (sample_rate / n_fft) * torch.arange(n_fft / 2) / 700.0).log()
    up = (freqs[None] - left) / (center - left)
    down = (right - freqs[None]) / (right - center)
    banks = torch.max(torch.zeros(1), torch.min(up, down))
    return F.pad(banks, (0, 1))


def kaldi_fbank(wave: torch.Tensor, sample_rate: int = 16000) -> torch.Tensor:
    """Log-mel filterbank `[F, 80]` of one waveform `[L]` (already scaled like 16-bit PCM), Kaldi's recipe: frames of
    25 ms every 10 ms that fit whole (F = 1 + (L - 400) // 160), DC removed, pre-emphasis 0.97, povey window
    (Hann^0.85), zero-padded to 512, power spectrum, 80 mel bins over 20 Hz - Nyquist, log floored at float32 eps."""
    if wave.shape[-1] < FRAME:
        raise CodecError(f"neucodec: {wave.shape[-1]} samples are fewer than one 25 ms analysis window")
    frames = wave.unfold(0, FRAME, SHIFT)
    frames = frames - frames.mean(dim=1, keepdim=True)
    previous = F.pad(frames.unsqueeze(0), (1, 0), mode="replicate").squeeze(0)[:, :-1]
    frames = frames - 0.97 * previous
    frames = frames * torch.hann_window(FRAME, periodic=False, dtype=frames.dtype).pow(0.85).unsqueeze(0)
    n_fft = 1 << (FRAME - 1).bit_length()
    frames = F.pad(frames.unsqueeze(0), (0, n_fft - FRAME)).squeeze(0)
    power = torch.fft.rfft(frames).abs().pow(2.0)
    mel = torch.mm(power, _kaldi_mel_banks(n_fft, sample_rate).to(power.dtype).T)
    return torch.max(mel, torch.tensor(_EPS, dtype=mel.dtype)).log()


def semantic_features(x: torch.Tensor, hop: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One item `[T]` at 16 kHz -> (acoustic input `[1, L]`, semantic features `[F / 2, 160]`), as the feature
    extractor prepares them: one zero sample appended, zero-padded to a multiple of `hop` (L), Kaldi fbank of the
    padded audio, each mel bin normalised over the utterance (unbiased variance + 1e-7), an odd frame count padded
    with a frame of 1.0, pairs of frames stacked."""
    a = F.pad(x, (0, 1))
    a = F.pad(a, (0, (-a.shape[-1]) % hop))
    feats = kaldi_fbank(a * 2 ** 15)
    feats = (feats - feats.mean(0)) / torch.sqrt(feats.var(0, unbiased=True) + 1e-7)
    if feats.shape[0] % STACK:
        feats = F.pad(feats, (0, 0, 0, STACK - feats.shape[0] % STACK), value=MEL_PAD)
    return a[None], feats.reshape(feats.shape[0] // STACK, N_MELS * STACK)


def _points(cfg) -> tuple[float, float, float]:
    """(bits per code, frames per input second, kbps) of a config."""
    bits = math.log2(math.prod(cfg.quantization_levels))
    frame_rate = cfg.input_sampling_rate / cfg.encoder_hop_length
    return bits, frame_rate, bits * frame_rate / 1000


class NeuCodec(NeuralCodec):
    """NeuCodec at its one operating point. Options: weights=PATH, device, pretrained (False: random weights),
    tiny (narrow random model for tests), seed."""

    name = "neucodec"
    code_version = "1"
    licence = LICENCE
    paper = PAPER
    checkpoints = CHECKPOINTS
    default_checkpoint = "neucodec"

    def __init__(self, weights: str | None = None, device: str = "cpu", pretrained: bool = True, tiny: bool = False,
                 seed: int = 0):
        self._setup(None, {}, weights, device, pretrained, tiny, seed)

    @classmethod
    def config_for(cls, key: str, tiny: bool = False):
        return neucodec_config(tiny)

    @classmethod
    def _port_class(cls):
        from transformers import NeuCodecModel

        return NeuCodecModel

    @classmethod
    def _random_model(cls, key: str, tiny: bool, seed: int):
        return random_model(tiny, seed)

    def _configure(self, cfg) -> Rates:
        if cfg.input_sampling_rate != 16000:
            raise CodecError(f"these NeuCodec weights take {cfg.input_sampling_rate} Hz input; bench runs the 16 kHz "
                             "model")
        self.hop = int(cfg.encoder_hop_length)
        self.output_rate = int(cfg.output_sampling_rate)
        _, frame_rate, kbps = _points(cfg)
        return Rates(int(cfg.input_sampling_rate), frame_rate, (math.prod(cfg.quantization_levels),), kbps=kbps)

    @classmethod
    def operating_points(cls) -> list[OperatingPoint]:
        bits, frame_rate, kbps = _points(neucodec_config())
        return [OperatingPoint(kbps, {}, f"neucodec {kbps:g} kbps (1 FSQ code of {bits:g} bits, {frame_rate:g}/s)")]

    # -- the work: codes [B, 1, floor(T / 320)] (the acoustic and semantic branches' frames, trimmed to the shorter
    # as the model does) --------------------------------------------------------------------------------

    def _inputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pairs = [semantic_features(x[i, 0], self.hop) for i in range(x.shape[0])]
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        values, feats = self._inputs(x)
        return self.model.encode(values.to(self.device), input_features=feats.to(self.device)).audio_codes

    @torch.inference_mode()
    def decode_native(self, enc: Encoded) -> torch.Tensor:
        """Encoded -> float32 `[B, 1, T * 3 / 2]` at the decoder's 24 kHz (`self.output_rate`)."""
        y = self.model.decode(audio_codes=enc.codes.to(self.device)).audio_values.float().cpu()
        t = max(enc.lengths) if enc.lengths else enc.codes.shape[-1] * self.hop
        n = int(t * self.output_rate / self.meta.sample_rate)
        return F.pad(y, (0, max(0, n - y.shape[-1])))[..., :n]

    def _decode(self, enc: Encoded) -> torch.Tensor:
        """The 24 kHz output resampled to 16 kHz (soxr), T = the input length."""
        from bench import audio as au

        y = self.decode_native(enc).numpy()
        t = max(enc.lengths) if enc.lengths else enc.codes.shape[-1] * self.hop
        out = np.stack([au.fit_length(au.resample(item, self.output_rate, self.meta.sample_rate), t) for item in y])
        return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32))

    def _embedding(self, codes: torch.Tensor) -> torch.Tensor:
        """Each FSQ code's projection (D = quantization_dim, 2048 released), the latent the decoder receives."""
        return self.model.quantizer.from_codes(codes.transpose(1, 2))


def random_model(tiny: bool, seed: int):
    """A NeuCodecModel with every weight drawn from `seed` (`discriminating_state`: no constant tensor left, so
    parity tests can fail)."""
    from transformers import NeuCodecModel

    from bench.codecs.random_weights import discriminating_state

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = NeuCodecModel(neucodec_config(tiny))
    model.load_state_dict(discriminating_state(model.state_dict(), seed=seed))
    return model
