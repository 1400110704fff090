"""DAC, the Descript Audio Codec (Kumar et al. 2023), on transformers' `DacModel`: 16, 24 and 44.1 kHz mono.

Shapes: audio float32 `[B, 1, T]` at `codec.sample_rate`; codes int64 `[B, K, N]` (K of 12 / 32 / 9 codebooks
of 1024 entries, N = ceil(T / hop) frames at 50 / 75 / 86.13 frames/s); embeddings `[B, N, 1024]`.

Weights: a Hugging Face folder (descript/dac_16khz, dac_24khz, dac_44khz) or the authors' original
`weights_16khz.pth` / `weights_24khz.pth` / `weights.pth` (`{"state_dict", "metadata": {"kwargs"}}`), mapped
to the port's keys here with weight norm folded (`w = g * v / |v|`, norm over all but dim 0), as the port
holds plain convolution weights.

Long audio: items up to `chunk_seconds` (10 s) run in one pass; longer ones in chunks that start on frame
boundaries with `CONTEXT_FRAMES` (32) frames of context either side, discarded after. The model is purely
convolutional with a receptive field of about 8 frames on each side (encoder and decoder alike), so the
chunked codes and audio equal the unchunked ones up to float rounding (see tests). Peak memory is one
window's activations (measured on CPU, fp32: about 1.1 GiB at 44.1 kHz, 0.5-0.9 GiB at 16 kHz, the same for
30 s and 90 s files) plus the O(T) input and output audio (4 bytes per sample each): a 10-minute 44.1 kHz
file needs about 1.1 GiB + 2 x 106 MB, under 1.4 GiB above the model (~300 MB).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bench.codecs import weights as W
from bench.codecs.base import CodecError, Encoded, OperatingPoint
from bench.codecs.neural import Rates, plan_chunks
from bench.codecs.released import ReleasedCodec, checkpoints_of

CONTEXT_FRAMES = 32


@dataclass(frozen=True)
class DacVariant:
    key: str
    sample_rate: int
    rates: tuple[int, ...]  # encoder strides; the decoder uses them reversed
    n_codebooks: int

    @property
    def hop(self) -> int:
        return math.prod(self.rates)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop

    def kbps(self, n_codebooks: int, bits: int = 10) -> float:
        """Nominal kbps of `n_codebooks`, rounded to 0.01 as the labels show it (44.1 kHz: 0.86 per codebook)."""
        return round(n_codebooks * bits * self.frame_rate / 1000, 2)


DAC_VARIANTS = {
    16000: DacVariant("16khz", 16000, (2, 4, 5, 8), 12),
    24000: DacVariant("24khz", 24000, (2, 4, 5, 8), 32),
    44100: DacVariant("44khz", 44100, (2, 4, 8, 8), 9),
}


def dac_config(variant: DacVariant, tiny: bool = False, **overrides: Any):
    """The transformers config of a variant; `tiny` narrows the layers (tests), keeping rates and codebooks."""
    from transformers import DacConfig

    kw: dict[str, Any] = dict(sampling_rate=variant.sample_rate, downsampling_ratios=list(variant.rates),
                              n_codebooks=variant.n_codebooks, codebook_size=1024, codebook_dim=8,
                              encoder_hidden_size=64, decoder_hidden_size=1536)
    if tiny:
        kw.update(encoder_hidden_size=4, decoder_hidden_size=32)
    kw.update(overrides)
    return DacConfig(**kw)


# -- the original layout ----------------------------------------------------------------------------
# Original modules are nn.Sequential stacks: encoder.block = [conv, EncoderBlock x n, Snake, conv];
# EncoderBlock.block = [ResidualUnit x 3, Snake, conv]; ResidualUnit.block = [Snake, conv, Snake, conv];
# decoder.model = [conv, DecoderBlock x n, Snake, conv, Tanh]; DecoderBlock.block = [Snake, convT, ResidualUnit x 3].

_RES = ("snake1", "conv1", "snake2", "conv2")


def dac_original_name(key: str, n_blocks: int) -> str | None:
    """Original parameter name (weight norm as `.weight`) -> the port's name; None if it has no place."""
    m = re.match(r"^quantizer\.quantizers\.\d+\.(in_proj|out_proj|codebook)\.\w+$", key)
    if m:
        return key
    m = re.match(r"^encoder\.block\.(\d+)\.(.+)$", key)
    if m:
        i, rest = int(m[1]), m[2]
        if i == 0:
            return f"encoder.conv1.{rest}"
        if i == n_blocks + 1:
            return f"encoder.snake1.{rest}"
        if i == n_blocks + 2:
            return f"encoder.conv2.{rest}"
        r = re.match(r"^block\.(\d+)\.(?:block\.(\d+)\.)?(\w+)$", rest)
        if not r:
            return None
        j, k, leaf = int(r[1]), r[2], r[3]
        if j < 3 and k is not None:
            return f"encoder.block.{i - 1}.res_unit{j + 1}.{_RES[int(k)]}.{leaf}"
        return {3: f"encoder.block.{i - 1}.snake1.{leaf}", 4: f"encoder.block.{i - 1}.conv1.{leaf}"}.get(j)
    m = re.match(r"^decoder\.model\.(\d+)\.(.+)$", key)
    if m:
        i, rest = int(m[1]), m[2]
        if i == 0:
            return f"decoder.conv1.{rest}"
        if i == n_blocks + 1:
            return f"decoder.snake1.{rest}"
        if i == n_blocks + 2:
            return f"decoder.conv2.{rest}"
        r = re.match(r"^block\.(\d+)\.(?:block\.(\d+)\.)?(\w+)$", rest)
        if not r:
            return None
        j, k, leaf = int(r[1]), r[2], r[3]
        if j >= 2 and k is not None:
            return f"decoder.block.{i - 1}.res_unit{j - 1}.{_RES[int(k)]}.{leaf}"
        return {0: f"decoder.block.{i - 1}.snake1.{leaf}", 1: f"decoder.block.{i - 1}.conv_t1.{leaf}"}.get(j)
    return None


def dac_original_to_port(state: dict[str, torch.Tensor], n_blocks: int) -> dict[str, torch.Tensor]:
    """Map an original DAC state dict to `DacModel` keys, folding weight norm (g, v) into plain weights."""
    folded: dict[str, torch.Tensor] = {}
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        for g_name, tag in (("weight_g", "g"), ("weight_v", "v"), ("parametrizations.weight.original0", "g"),
                            ("parametrizations.weight.original1", "v")):
            if key.endswith("." + g_name):
                pairs.setdefault(key[: -len(g_name)] + "weight", {})[tag] = value
                break
        else:
            folded[key] = value
    for key, gv in pairs.items():
        if set(gv) != {"g", "v"}:
            raise CodecError(f"DAC checkpoint: {key} has only one of weight_g / weight_v")
        folded[key] = torch._weight_norm(gv["v"], gv["g"], 0)
    out, unknown = {}, []
    for key, value in folded.items():
        new = dac_original_name(key, n_blocks)
        if new is None:
            unknown.append(key)
        else:
            out[new] = value
    if unknown:
        raise CodecError(f"not a DAC checkpoint: unexpected keys {unknown[:5]}...")
    return out


def dac_port_to_original(model, rescale: bool = True) -> dict[str, Any]:
    """A `DacModel` in the original release layout `{"state_dict", "metadata": {"kwargs"}}`, weight norm
    unfolded into (g, v). `rescale` scales each v by a positive factor per output so that loading must
    really fold |v| away (tests)."""
    cfg = model.config
    n = len(cfg.downsampling_ratios)
    # the inverse of dac_original_name, built by walking every original name there is
    inverse: dict[str, str] = {}
    candidates = ["encoder.block.0.{}", f"encoder.block.{n + 1}.{{}}", f"encoder.block.{n + 2}.{{}}",
                  "decoder.model.0.{}", f"decoder.model.{n + 1}.{{}}", f"decoder.model.{n + 2}.{{}}"]
    for i in range(1, n + 1):
        candidates += [f"encoder.block.{i}.block.{j}.block.{k}.{{}}" for j in range(3) for k in range(4)]
        candidates += [f"encoder.block.{i}.block.{j}.{{}}" for j in (3, 4)]
        candidates += [f"decoder.model.{i}.block.{j}.block.{k}.{{}}" for j in range(2, 5) for k in range(4)]
        candidates += [f"decoder.model.{i}.block.{j}.{{}}" for j in (0, 1)]
    for c in candidates:
        for leaf in ("weight", "bias", "alpha"):
            port = dac_original_name(c.format(leaf), n)
            if port:
                inverse[port] = c.format(leaf)
    state: dict[str, torch.Tensor] = {}
    gen = torch.Generator().manual_seed(0)
    for key, value in model.state_dict().items():
        orig = key if key.startswith("quantizer.") else inverse[key]
        is_conv_weight = orig.endswith(".weight") and value.ndim == 3
        if is_conv_weight:
            dims = tuple(range(1, value.ndim))
            g = value.norm(dim=dims, keepdim=True)
            v = value.clone()
            if rescale:
                v = v * (0.5 + torch.rand(g.shape, generator=gen))
            state[orig[: -len("weight")] + "weight_g"] = g
            state[orig[: -len("weight")] + "weight_v"] = v
        else:
            state[orig] = value.clone()
    kwargs = {"encoder_dim": cfg.encoder_hidden_size, "encoder_rates": list(cfg.downsampling_ratios),
              "latent_dim": cfg.hidden_size, "decoder_dim": cfg.decoder_hidden_size,
              "decoder_rates": list(cfg.upsampling_ratios), "n_codebooks": cfg.n_codebooks,
              "codebook_size": cfg.codebook_size, "codebook_dim": cfg.codebook_dim,
              "quantizer_dropout": float(cfg.quantizer_dropout), "sample_rate": cfg.sampling_rate}
    return {"state_dict": state, "metadata": {"kwargs": kwargs}}


def save_dac_original(model, folder: str | Path, name: str | None = None) -> Path:
    """Write a model as the authors' release files are laid out (`weights_16khz.pth`, ...), and record its
    sha256 in the folder's manifest so that loading checks it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    variant = DAC_VARIANTS.get(model.config.sampling_rate)
    final = folder / (name or (f"weights_{variant.key}.pth" if variant else "weights.pth"))
    torch.save(dac_port_to_original(model), final)
    W._write_manifest(folder, "bench.codecs.dac.save_dac_original", [final])
    return final


def load_dac_original(path: Path, variant: DacVariant):
    """An original `.pth` (state dict + metadata kwargs) -> `DacModel`, strictly."""
    from transformers import DacModel

    blob = W.load_checkpoint(path)
    if not (isinstance(blob, dict) and "state_dict" in blob and "metadata" in blob):
        raise CodecError(f"{path}: not a DAC release file (expected a dict with 'state_dict' and 'metadata'); "
                         "torch.package files (package.pth) are not supported, use weights.pth")
    kw = blob["metadata"]["kwargs"]
    sr = int(kw.get("sample_rate", variant.sample_rate))
    if sr != variant.sample_rate:
        raise CodecError(f"{path} holds the {sr} Hz DAC, not {variant.sample_rate} Hz; pass sample_rate={sr}")
    rates = list(kw["encoder_rates"])
    if list(kw["decoder_rates"]) != rates[::-1]:
        raise CodecError(f"{path}: decoder rates {kw['decoder_rates']} are not the encoder's reversed; the port "
                         "cannot hold this model")
    if not isinstance(kw.get("codebook_dim", 8), int):
        raise CodecError(f"{path}: per-codebook dimensions {kw['codebook_dim']} are not supported by the port")
    cfg = dac_config(variant, encoder_hidden_size=int(kw["encoder_dim"]), downsampling_ratios=rates,
                     decoder_hidden_size=int(kw["decoder_dim"]), n_codebooks=int(kw["n_codebooks"]),
                     codebook_size=int(kw["codebook_size"]), codebook_dim=int(kw.get("codebook_dim", 8)))
    latent = kw.get("latent_dim")
    if latent is not None and int(latent) != cfg.hidden_size:
        raise CodecError(f"{path}: latent_dim {latent} differs from encoder_dim * 2^{len(rates)}; not supported")
    model = DacModel(cfg)
    missing, unexpected = model.load_state_dict(dac_original_to_port(blob["state_dict"], len(rates)), strict=False)
    if missing or unexpected:
        raise CodecError(f"{path}: does not fit the DAC {variant.key} model (missing {missing[:4]}, "
                         f"unexpected {unexpected[:4]})")
    return model


class DAC(ReleasedCodec):
    """DAC with its first `n_codebooks` codebooks. Options: sample_rate (16000 | 24000 | 44100), n_codebooks,
    weights=PATH, device, pretrained (False: random weights), tiny (narrow random model), chunk_seconds."""

    name = "dac"
    code_version = "1"
    licence = "MIT"
    paper = "Kumar et al. 2023, High-Fidelity Audio Compression with Improved RVQGAN, arXiv:2306.06546"
    variants = DAC_VARIANTS
    checkpoints = checkpoints_of("dac", DAC_VARIANTS)
    default_checkpoint = "16khz"
    weight_suffixes = (".pth",)

    def __init__(self, sample_rate: int | str = 16000, n_codebooks: int | None = None, weights: str | None = None,
                 device: str = "cpu", pretrained: bool = True, tiny: bool = False, chunk_seconds: float = 10.0,
                 seed: int = 0):
        v = self.variant_for(sample_rate)
        n_codebooks = v.n_codebooks if n_codebooks is None else int(n_codebooks)
        if not 1 <= n_codebooks <= v.n_codebooks:
            raise CodecError(f"dac {v.key} has 1 to {v.n_codebooks} codebooks ({v.kbps(1):g} kbps each); "
                             f"got n_codebooks={n_codebooks}")
        self.n_codebooks = n_codebooks
        self.chunk_seconds = float(chunk_seconds)
        shown = {"chunk_seconds": self.chunk_seconds} if chunk_seconds != 10.0 else {}
        self._setup(v.key, {"sample_rate": v.sample_rate, "n_codebooks": n_codebooks}, weights, device, pretrained,
                    tiny, seed, **shown)

    @classmethod
    def config_for(cls, key: str, tiny: bool = False):
        return dac_config(cls.variant_for(key), tiny=tiny)

    @classmethod
    def _port_class(cls):
        from transformers import DacModel

        return DacModel

    def _load_original(self, path: Path):
        return load_dac_original(path, self.variant)

    @classmethod
    def _save_original(cls, model, dest: Path, key: str) -> Path:
        return save_dac_original(model, dest)

    def _configure(self, cfg) -> Rates:
        v = self.variant
        if cfg.n_codebooks < self.n_codebooks:
            raise CodecError(f"these DAC weights have {cfg.n_codebooks} codebooks; n_codebooks={self.n_codebooks} is "
                             "too many")
        self.hop = int(math.prod(cfg.downsampling_ratios))
        return Rates(v.sample_rate, v.frame_rate, (int(cfg.codebook_size),) * self.n_codebooks,
                     kbps=v.kbps(self.n_codebooks))

    @classmethod
    def operating_points(cls) -> list[OperatingPoint]:
        points = []
        for v in DAC_VARIANTS.values():
            for k in range(1, v.n_codebooks + 1):
                label = f"dac {v.sample_rate / 1000:g}kHz {v.kbps(k):g} kbps ({k} codebook{'s' if k > 1 else ''})"
                points.append(OperatingPoint(v.kbps(k), {"sample_rate": v.sample_rate, "n_codebooks": k}, label))
        return points

    # -- the work ---------------------------------------------------------------------------------

    def _frames(self, t: int) -> int:
        return math.ceil(t / self.hop)

    def _windows(self, n: int) -> list[tuple[int, int, int, int]]:
        chunk = max(1, int(self.chunk_seconds * self.variant.frame_rate))
        return plan_chunks(n, chunk, CONTEXT_FRAMES)

    def _quantise(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Audio `[B, 1, L]` (L a multiple of hop) -> (latent the decoder receives `[B, D, L/hop]`, codes)."""
        z = self.model.encoder(x)
        quantised, codes, *_ = self.model.quantizer(z, n_quantizers=self.n_codebooks)
        return quantised, codes

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        """Audio `[B, 1, T]` -> codes `[B, K, ceil(T / hop)]` (the audio is zero-padded on the right to whole
        frames, as the original `preprocess` does), in chunks of `chunk_seconds` with context."""
        b, _, t = x.shape
        n = self._frames(t)
        codes = torch.empty(b, self.n_codebooks, n, dtype=torch.int64)
        for a, e, w0, w1 in self._windows(n):
            window = x[..., w0 * self.hop:min(w1 * self.hop, t)]  # pad only the last window, not a copy of all
            window = torch.nn.functional.pad(window, (0, (w1 - w0) * self.hop - window.shape[-1]))
            _, c = self._quantise(window.to(self.device))
            codes[..., a:e] = c[..., a - w0:e - w0].cpu()
        return codes

    def _decode(self, enc: Encoded) -> torch.Tensor:
        """Encoded -> `[B, 1, T]`, T = the encoded input length (the 16/24 kHz
        decoders return 8 samples fewer than N * hop; the end is zero-filled)."""
        codes = enc.codes
        b, _, n = codes.shape
        t = max(enc.lengths) if enc.lengths else n * self.hop
        out = torch.zeros(b, 1, max(t, n * self.hop))
        for a, e, w0, w1 in self._windows(n):
            latent = self.model.quantizer.from_codes(codes[..., w0:w1].to(self.device))[0]
            y = self.model.decoder(latent)[..., (a - w0) * self.hop:(e - w0) * self.hop].float().cpu()
            out[..., a * self.hop:a * self.hop + y.shape[-1]] = y
        return out[..., :t]

    def _embedding(self, codes: torch.Tensor) -> torch.Tensor:
        """`[B, N, D]` (D = 1024 for the released models): the sum of the selected codebooks' projected entries,
        which is what the decoder receives."""
        return self.model.quantizer.from_codes(codes)[0].transpose(1, 2)
