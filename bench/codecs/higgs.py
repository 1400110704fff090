"""The Higgs audio v2 tokenizer (Boson AI 2025) on transformers' `HiggsAudioV2TokenizerModel`: 24 kHz mono, RVQ at
25 frames/s (HuBERT semantic + DAC acoustic encoders, one residual vector quantizer).

Shapes: audio float32 `[B, 1, T]` at 24 kHz; codes int64 `[B, K, N]`, N = ceil(T / 960), K = n_codebooks of the
config's num_quantizers (16 released) codebooks of 1024 entries (10 bits): 0.25 kbps per codebook, 0.25-4 kbps;
embeddings `[B, N, 1024]` (the sum of the K selected codebooks' projected entries, the quantised latent the decoder
branch receives before its linear map to the acoustic decoder).

Operating points: every codebook count 1..num_quantizers. The model's own `encode` takes only the bandwidths of
`config.target_bandwidths` (0.5, 1, 1.5, 2, 4 kbps = 2, 4, 6, 8, 16 codebooks); the quantizer is residual, so the
first K codes of a full encode are exactly what a K-codebook encode gives (tests check it at every listed
bandwidth), and encode here runs the full quantizer and keeps K. The input is zero-padded on the right to whole
960-sample frames, as the checkpoint's feature extractor (a DAC extractor with hop 960) does.

torchaudio. The transformers module imports torchaudio for one call, resampling the 24 kHz input to the HuBERT's
16 kHz; bench does not install torchaudio (no CPU build for the torch it uses). Where torchaudio is absent,
`model_class` loads the module with `sinc_resample` standing in for `torchaudio.functional.resample`: the same
windowed-sinc method with torchaudio's defaults (Hann window, 6 zero crossings, roll-off 0.99), computed in the same
order (tests/data/reference/zoo_b_resample.npz: outputs of torchaudio 2.9.1 it must match). Which one ran enters
the fingerprint (`runtime()["semantic_resampler"]`).

Weights: a Hugging Face folder in the transformers layout (eustlb/higgs-audio-v2-tokenizer, the checkpoint the
transformers docs load; converted from bosonai/higgs-audio-v2-tokenizer). The authors' original `model.pth` is not
accepted: transformers' converter opens it with the unsafe pickle loader (`weights_only=False`), which bench never
uses on a downloaded file, so its contents could not be checked to map safely; convert it with transformers'
`convert_higgs_audio_v2_tokenizer_to_hf.py` and pass the folder.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import math
import sys
import types
from typing import Any

import torch
import torch.nn.functional as F

from bench.codecs.base import CodecError, Encoded, OperatingPoint
from bench.codecs.neural import Checkpoint, NeuralCodec, Rates

LICENCE = "Boson Higgs Audio 2 Community License (Llama-3-based; commercial use capped at 100k annual active users)"
PAPER = "Boson AI 2025, Higgs Audio v2 tokenizer (technical blog: boson-ai/higgs-audio, tech_blogs/TOKENIZER_BLOG.md)"
CHECKPOINTS = {"higgs-audio-v2-tokenizer": Checkpoint(
    "higgs-audio-v2-tokenizer", "eustlb/higgs-audio-v2-tokenizer",
    source="https://huggingface.co/eustlb/higgs-audio-v2-tokenizer (transformers docs, Higgs Audio V2 Tokenizer)")}
KEY = "higgs-audio-v2-tokenizer"
# The released acoustic DAC, as transformers' converter builds it: hop 8*5*4*2*3 = 960 at 24 kHz (25 frames/s).
ACOUSTIC = dict(encoder_hidden_size=64, downsampling_ratios=[8, 5, 4, 2, 3], decoder_hidden_size=1024,
                upsampling_ratios=[8, 5, 4, 2, 3], hidden_size=256)


def sinc_resample(waveform: torch.Tensor, orig_freq: int, new_freq: int, lowpass_filter_width: int = 6,
                  rolloff: float = 0.99) -> torch.Tensor:
    """Band-limited resampling `[..., T]` -> `[..., ceil(T * new / orig)]` by a Hann-windowed sinc kernel: the rates
    reduced by their gcd, a cut-off of rolloff * min(rates), `lowpass_filter_width` zero crossings each side, one
    strided convolution. The arithmetic is torchaudio's `functional.resample` with its defaults, in the same order,
    in the waveform's dtype."""
    orig, new = int(orig_freq), int(new_freq)
    if orig == new:
        return waveform
    g = math.gcd(orig, new)
    orig, new = orig // g, new // g
    shape = waveform.shape
    x = waveform.reshape(-1, shape[-1])
    dtype, device = x.dtype, x.device
    base = min(orig, new) * rolloff
    width = math.ceil(lowpass_filter_width * orig / base)
    idx = torch.arange(-width, width + orig, dtype=dtype, device=device)[None, None] / orig
    t = torch.arange(0, -new, -1, dtype=dtype, device=device)[:, None, None] / new + idx
    t = (t * base).clamp(-lowpass_filter_width, lowpass_filter_width)
    window = torch.cos(t * math.pi / lowpass_filter_width / 2) ** 2
    t = t * math.pi
    kernel = torch.where(t == 0, torch.tensor(1.0).to(t), t.sin() / t) * (window * (base / orig))
    y = F.conv1d(F.pad(x[:, None], (width, width + orig)), kernel, stride=orig)
    y = y.transpose(1, 2).reshape(x.shape[0], -1)
    target = math.ceil(new * shape[-1] / orig)
    return y[..., :target].reshape(*shape[:-1], target)


_MODULE = "transformers.models.higgs_audio_v2_tokenizer.modeling_higgs_audio_v2_tokenizer"


def resampler() -> str:
    """What resamples the semantic branch's input: "torchaudio <version>" or "bench sinc_resample"."""
    try:
        import torchaudio  # noqa: F401
    except ImportError:
        return "bench sinc_resample (torchaudio's algorithm)"
    return f"torchaudio {torchaudio.__version__}"


def model_class():
    """transformers' HiggsAudioV2TokenizerModel; without torchaudio, its module is imported with a stand-in module
    that provides only `functional.resample` (= `sinc_resample`), visible to that import alone."""
    if _MODULE in sys.modules:
        return sys.modules[_MODULE].HiggsAudioV2TokenizerModel
    try:
        import torchaudio  # noqa: F401
    except ImportError:
        shim = types.ModuleType("torchaudio")
        shim.__spec__ = importlib.machinery.ModuleSpec("torchaudio", None)
        shim.functional = types.SimpleNamespace(resample=sinc_resample)
        sys.modules["torchaudio"] = shim
        try:
            module = importlib.import_module(_MODULE)
        finally:
            if sys.modules.get("torchaudio") is shim:
                del sys.modules["torchaudio"]
        return module.HiggsAudioV2TokenizerModel
    return importlib.import_module(_MODULE).HiggsAudioV2TokenizerModel


def higgs_config(tiny: bool = False):
    """The released architecture (the DAC above, a HuBERT-base semantic model, 1024-entry codebooks, target
    bandwidths 0.5-4 kbps); `tiny` narrows every layer (tests), keeping rates, hops and codebooks."""
    from transformers import DacConfig, HiggsAudioV2TokenizerConfig, HubertConfig

    acoustic, semantic, extra = dict(ACOUSTIC), {}, {}
    if tiny:
        acoustic.update(encoder_hidden_size=2, decoder_hidden_size=32, hidden_size=8, codebook_dim=4, n_codebooks=1)
        semantic = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                        conv_dim=(4,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
        extra = dict(codebook_dim=8)
    return HiggsAudioV2TokenizerConfig(acoustic_model_config=DacConfig(**acoustic),
                                       semantic_model_config=HubertConfig(mask_time_prob=0.0, **semantic), **extra)


def _rate(cfg) -> tuple[float, float, int]:
    """(bits per code, frames per second, codebooks) of a config."""
    return math.log2(cfg.codebook_size), cfg.sample_rate / cfg.hop_length, int(cfg.num_quantizers)


def _kbps(cfg, k: int) -> float:
    bits, frames, _ = _rate(cfg)
    return round(k * bits * frames / 1000, 6)


class Higgs(NeuralCodec):
    """The Higgs audio v2 tokenizer with its first `n_codebooks` codebooks. Options: n_codebooks (1..16), weights=PATH,
    device, pretrained (False: random weights), tiny (narrow random model), seed."""

    name = "higgs"
    code_version = "1"
    licence = LICENCE
    paper = PAPER
    checkpoints = CHECKPOINTS
    default_checkpoint = KEY

    def __init__(self, n_codebooks: int | None = None, weights: str | None = None, device: str = "cpu",
                 pretrained: bool = True, tiny: bool = False, seed: int = 0):
        cfg = higgs_config(tiny)
        n_codebooks = _rate(cfg)[2] if n_codebooks is None else int(n_codebooks)
        self._check_codebooks(n_codebooks, cfg)
        self.n_codebooks = n_codebooks
        self._setup(None, {"n_codebooks": n_codebooks}, weights, device, pretrained, tiny, seed)

    @staticmethod
    def _check_codebooks(k: int, cfg) -> None:
        most = _rate(cfg)[2]
        if not 1 <= k <= most:
            raise CodecError(f"higgs has 1 to {most} codebooks ({_kbps(cfg, 1):g} kbps each); got n_codebooks={k}")

    @classmethod
    def config_for(cls, key: str, tiny: bool = False):
        return higgs_config(tiny)

    @classmethod
    def _port_class(cls):
        return model_class()

    @classmethod
    def _random_model(cls, key: str, tiny: bool, seed: int):
        return random_model(tiny, seed)

    def _configure(self, cfg) -> Rates:
        self._check_codebooks(self.n_codebooks, cfg)
        self.hop = int(cfg.hop_length)
        return Rates(int(cfg.sample_rate), _rate(cfg)[1], (int(cfg.codebook_size),) * self.n_codebooks,
                     kbps=_kbps(cfg, self.n_codebooks))

    @classmethod
    def operating_points(cls) -> list[OperatingPoint]:
        cfg = higgs_config()
        trained = {round(b, 6) for b in cfg.target_bandwidths}
        points = []
        for k in range(1, _rate(cfg)[2] + 1):
            kbps = _kbps(cfg, k)
            listed = ", a target bandwidth" if kbps in trained else ""
            points.append(OperatingPoint(kbps, {"n_codebooks": k},
                                         f"higgs {kbps:g} kbps ({k} codebook{'s' if k > 1 else ''}{listed})"))
        return points

    def runtime(self) -> dict[str, Any]:
        return {**super().runtime(), "semantic_resampler": resampler()}

    # -- the work: codes [B, K, ceil(T / 960)], zero-padded to whole frames; the first K of the full residual
    # quantizer's codes ------------------------------------------------------------------------------------

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (0, (-x.shape[-1]) % self.hop))
        return self.model.encode(x.to(self.device), return_dict=False)[:, : self.n_codebooks]

    def _decode(self, enc: Encoded) -> torch.Tensor:
        return self.model.decode(enc.codes.to(self.device), return_dict=False)

    def _embedding(self, codes: torch.Tensor) -> torch.Tensor:
        """The quantised latent (sum of the selected codebooks' projected entries, D = 1024 released) that the
        decoder branch receives."""
        return self.model.quantizer.decode(codes.transpose(0, 1)).transpose(1, 2)


def random_model(tiny: bool, seed: int):
    """A HiggsAudioV2TokenizerModel with every weight drawn from `seed` (`discriminating_state`)."""
    from bench.codecs.random_weights import discriminating_state

    cls = model_class()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls(higgs_config(tiny))
    model.load_state_dict(discriminating_state(model.state_dict(), seed=seed))
    return model
