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
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from bench.codecs import weights as W
from bench.codecs.base import CodecError, CodecMeta, Encoded, OperatingPoint
from bench.codecs.neural import (
    HubCheckpoint,
    NeuralCodec,
    code_bitrate,
    fetch_checkpoints,
    list_checkpoints,
    resolve_checkpoint,
    save_hf_random,
)

LICENCE = "Boson Higgs Audio 2 Community License (Llama-3-based; commercial use capped at 100k annual active users)"
PAPER = "Boson AI 2025, Higgs Audio v2 tokenizer (technical blog: boson-ai/higgs-audio, tech_blogs/TOKENIZER_BLOG.md)"
CHECKPOINTS = {"higgs-audio-v2-tokenizer": HubCheckpoint(
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
    default_sample_rate = 24000

    def __init__(self, n_codebooks: int | None = None, weights: str | None = None, device: str = "cpu",
                 pretrained: bool = True, tiny: bool = False, seed: int = 0):
        cfg = higgs_config(tiny)
        most = _rate(cfg)[2]
        n_codebooks = most if n_codebooks is None else int(n_codebooks)
        self._check_codebooks(n_codebooks, cfg)
        if tiny and pretrained and weights is None:
            pretrained = False
        self.n_codebooks = n_codebooks
        self.options: dict[str, Any] = {"n_codebooks": n_codebooks}
        if not pretrained:
            self.options.update(pretrained=False, seed=seed)
        if tiny:
            self.options["tiny"] = True
        if weights is not None:
            self.options["weights"] = str(weights)
        self.options["device"] = device
        self._meta(cfg, random=not pretrained)
        if pretrained:
            found = resolve_checkpoint(self, KEY, weights)
            self.model = model_class().from_pretrained(str(found.path), local_files_only=True)
            self._init_digest(found, "")
        else:
            self.model = random_model(tiny, seed)
            self._init_digest(None, f"higgs/random/tiny={tiny}/seed={seed}")
        self.model.eval()
        cfg = self.model.config
        self._check_codebooks(n_codebooks, cfg)
        self._meta(cfg, random=self.meta.random_weights)
        self.hop = int(cfg.hop_length)
        self.bits_per_code = _rate(cfg)[0]
        self.device = "cpu"
        if device != "cpu":
            self.to(device)

    @staticmethod
    def _check_codebooks(k: int, cfg) -> None:
        most = _rate(cfg)[2]
        if not 1 <= k <= most:
            raise CodecError(f"higgs has 1 to {most} codebooks ({_kbps(cfg, 1):g} kbps each); got n_codebooks={k}")

    def _meta(self, cfg, random: bool) -> None:
        _, frames, most = _rate(cfg)
        self.nominal_kbps = _kbps(cfg, self.n_codebooks)
        self.meta = CodecMeta("higgs", int(cfg.sample_rate), 1, tuple(_kbps(cfg, k) for k in range(1, most + 1)),
                              frames, True, LICENCE, paper=PAPER, random_weights=random)

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

    @classmethod
    def weights_available(cls) -> bool:
        return W.find_weights(W.weights_dir(cls.name, KEY), cls.name, KEY, ()) is not None

    def runtime(self) -> dict[str, Any]:
        return {**super().runtime(), "semantic_resampler": resampler()}

    @classmethod
    def write_random(cls, dest: str | Path, variant: str | None = None, tiny: bool = False, seed: int = 0) -> Path:
        """`bench weights random higgs` (module function `write_random`)."""
        return write_random(dest, variant=variant, tiny=tiny, seed=seed)

    # -- the work ---------------------------------------------------------------------------------

    @torch.inference_mode()
    def encode(self, wav: Any) -> Encoded:
        """wav float32 `[B, 1, T]` at 24 kHz -> Encoded with codes `[B, K, ceil(T / 960)]` (zero-padded to whole
        frames; the first K of the full residual quantizer's codes)."""
        x = self.check_input(wav)
        b, _, t = x.shape
        x = F.pad(x, (0, (-t) % self.hop))
        codes = self.model.encode(x.to(self.device), return_dict=False)[:, : self.n_codebooks]
        codes = codes.to(torch.int64).cpu()
        bitrate = code_bitrate(codes, self.bits_per_code, t / self.meta.sample_rate)
        return Encoded(codes=codes, bitrate=bitrate, lengths=[t] * b, sample_rate=self.meta.sample_rate)

    @torch.inference_mode()
    def decode(self, enc: Encoded) -> torch.Tensor:
        """Encoded -> float32 `[B, 1, T]` at 24 kHz (decoded from the codes' codebooks, trimmed to the input)."""
        y = self.model.decode(enc.codes.to(self.device), return_dict=False).float().cpu()
        t = max(enc.lengths) if enc.lengths else y.shape[-1]
        return F.pad(y, (0, max(0, t - y.shape[-1])))[..., :t]

    @torch.inference_mode()
    def embed(self, wav: Any) -> torch.Tensor:
        """wav `[B, 1, T]` -> float32 `[B, N, D]` (D = 1024 released): the quantised latent (sum of the selected
        codebooks' projected entries) that the decoder branch receives."""
        codes = self.encode(wav).codes
        return self.model.quantizer.decode(codes.transpose(0, 1).to(self.device)).transpose(1, 2).float().cpu()


def random_model(tiny: bool, seed: int):
    """A HiggsAudioV2TokenizerModel with every weight drawn from `seed` (`discriminating_state`)."""
    from bench.codecs.random_weights import discriminating_state

    cls = model_class()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls(higgs_config(tiny))
    model.load_state_dict(discriminating_state(model.state_dict(), seed=seed))
    return model


def write_random(dest: str | Path, variant: str | None = None, tiny: bool = False, seed: int = 0) -> Path:
    """`bench weights random higgs --dest D`: a random model in the transformers layout under D/higgs-audio-v2-tokenizer/."""
    if variant not in (None, KEY):
        raise ValueError(f"higgs has one checkpoint ({KEY!r}), not {variant!r}")
    return save_hf_random(random_model(tiny, seed), dest, KEY)


def fetch(dest: Path | None = None, variant: str | None = None, trust_unpinned: bool = False) -> Path:
    """`bench weights fetch higgs`."""
    return fetch_checkpoints("higgs", CHECKPOINTS, dest, variant, trust_unpinned)


def list_weights() -> list[dict]:
    """`bench weights list` rows for higgs's checkpoints."""
    return list_checkpoints("higgs", CHECKPOINTS, ())
