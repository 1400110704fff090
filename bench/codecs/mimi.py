"""Mimi (Kyutai, Défossez et al. 2024) on transformers' `MimiModel`: 24 kHz mono speech codec at 12.5 frames/s.

Shapes: audio float32 `[B, 1, T]` at 24 kHz; codes int64 `[B, K, N]`, K = `n_codebooks` (1 semantic + K-1 acoustic
residual codebooks of 2048 entries, 11 bits each), N = ceil(T / 1920); embeddings `[B, N, 512]` (the released
model's hidden size): the sum of the K codebooks' entries after the quantiser's output projection, which is what
the decoder receives. Bitrate: K x 11 bits x 12.5 frames/s = 0.1375 kbps per codebook (8 codebooks: 1.1 kbps).
Every figure is read from the model's config (`MimiConfig`, the released model's defaults, for the operating
points; the loaded weights' own config for the codes).

Weights: the Hugging Face folder `kyutai/mimi` (config.json + model.safetensors, the layout `bench weights random
mimi` writes), or the authors' original `tokenizer-e351c8d8-checkpoint125.safetensors` (in kyutai/moshiko-pytorch-bf16;
the file name carries the first 8 hex digits of its sha256), mapped to the port's keys here. The original file holds
no config: its widths, depths and codebooks are read from the tensor shapes; the attention heads (not visible in any
shape) are hidden_size / 64, as in the release (512 wide, 8 heads). Key facts (names of transformers'
convert_mimi_checkpoint_to_pytorch.py): `encoder.model` / `decoder.model` -> `encoder.layers` / `decoder.layers`;
the wrappers `conv.conv[.conv]` / `convtr.convtr[.convtr]` -> `conv`; `quantizer.rvq_first[.vq]` /
`quantizer.rvq_rest[.vq]` -> the semantic / acoustic residual quantiser, `_codebook` -> `codebook`, `_initialized` ->
`initialized`, `embedding_sum` -> `embed_sum`; `*_transformer.transformer` -> `*_transformer`; `linear1/2` ->
`mlp.fc1/2`, `self_attn.out_proj` -> `self_attn.o_proj`, `norm1/2` -> `input_layernorm` / `post_attention_layernorm`,
`layer_scale_1/2` -> `self_attn_layer_scale` / `mlp_layer_scale`; the fused `self_attn.in_proj_weight` splits into
q, k, v (thirds), q and k reordered from interleaved rotary pairs to the port's rotate-half layout.

Long audio: one pass (the encoder is causal with a 250-frame attention window; no chunking here).
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Any

import torch

from bench.codecs import weights as W
from bench.codecs.base import CodecError, Encoded, OperatingPoint
from bench.codecs.neural import Checkpoint, NeuralCodec, Rates

log = logging.getLogger(__name__)

CHECKPOINTS = {
    "24khz": Checkpoint("24khz", "kyutai/mimi", source="https://huggingface.co/kyutai/mimi (model card: CC-BY-4.0)"),
}
# The authors' release of the same weights, in their own layout (loaded through `mimi_original_to_port`).
ORIGINAL = Checkpoint(
    "24khz", "kyutai/moshiko-pytorch-bf16", "2bfc9ae6e89079a5cc7ed2a68436010d91a3d289",
    (("tokenizer-e351c8d8-checkpoint125.safetensors", None),),
    "a snapshot folder of kyutai/moshiko-pytorch-bf16 holding the file (third-party download path); no sha256 read")
ORIGINAL_NAME = ORIGINAL.files[0][0]
HEAD_DIM = 64  # the release: hidden_size 512, 8 heads (the original file has no config to say so)
LICENCE = "CC-BY-4.0 (weights)"
PAPER = "Défossez et al. 2024, Moshi: a speech-text foundation model for real-time dialogue, arXiv:2410.00037"


def reference_config(tiny: bool = False, **overrides: Any):
    """The released model's config (transformers' `MimiConfig` defaults); `tiny` narrows every layer for tests and
    keeps the sample rate, frame rate, codebook count and codebook size."""
    from transformers import MimiConfig

    kw: dict[str, Any] = {}
    if tiny:
        kw.update(num_filters=4, hidden_size=2 * HEAD_DIM, num_hidden_layers=1, num_attention_heads=2,
                  num_key_value_heads=2, intermediate_size=64, codebook_dim=8, vector_quantization_hidden_dimension=8,
                  upsample_groups=2 * HEAD_DIM)
    kw.update(overrides)
    return MimiConfig(**kw)


def _rates(config) -> tuple[int, float, float]:
    """(codebooks, frames/s, bits per code) of a Mimi config."""
    return int(config.num_quantizers), float(config.frame_rate), math.log2(config.codebook_size)


# -- the authors' layout ----------------------------------------------------------------------------------

_ORIGINAL_TO_FLAT = [  # applied in order, each to every key (facts listed in the module docstring)
    (r"^quantizer\.rvq_first\.(vq\.)?", "quantizer.semantic_residual_vector_quantizer."),
    (r"^quantizer\.rvq_rest\.(vq\.)?", "quantizer.acoustic_residual_vector_quantizer."),
    (r"\._codebook\.", ".codebook."), (r"\._initialized$", ".initialized"), (r"\.embedding_sum$", ".embed_sum"),
    (r"^(encoder|decoder)\.model\.", r"\1.layers."),
    (r"\.(conv\.conv\.conv|convtr\.convtr\.convtr|conv\.conv|convtr\.convtr)\.", ".conv."),
    (r"^(encoder|decoder)_transformer\.transformer\.", r"\1_transformer."),
    (r"\.linear1\.", ".mlp.fc1."), (r"\.linear2\.", ".mlp.fc2."), (r"\.self_attn\.out_proj\.", ".self_attn.o_proj."),
    (r"\.norm1\.", ".input_layernorm."), (r"\.norm2\.", ".post_attention_layernorm."),
    (r"\.layer_scale_1\.", ".self_attn_layer_scale."), (r"\.layer_scale_2\.", ".mlp_layer_scale."),
]
# The released Hugging Face files are flat (as the original); newer ports nest the halves. flat prefix -> nested.
_FLAT_TO_NESTED = [("encoder.layers.", "encoder.encoder_seanet.layers."),
                   ("encoder_transformer.", "encoder.encoder_transformer."), ("downsample.", "encoder.downsample."),
                   ("upsample.", "decoder.upsample."), ("decoder_transformer.", "decoder.decoder_transformer."),
                   ("decoder.layers.", "decoder.decoder_seanet.layers.")]


def _rotary_to_half(w: torch.Tensor, heads: int) -> torch.Tensor:
    """q/k rows of each head: interleaved rotary pairs (original) -> first halves then second halves (port)."""
    d, e = w.shape
    return w.reshape(heads, d // heads // 2, 2, e).transpose(1, 2).reshape(d, e)


def _half_to_rotary(w: torch.Tensor, heads: int) -> torch.Tensor:
    d, e = w.shape
    return w.reshape(heads, 2, d // heads // 2, e).transpose(1, 2).reshape(d, e)


def _nested(model) -> bool:
    return "encoder.encoder_seanet.layers.0.conv.weight" in model.state_dict()


def _to_model_key(flat: str, nested: bool) -> str:
    if nested:
        for a, b in _FLAT_TO_NESTED:
            if flat.startswith(a):
                return b + flat[len(a):]
    return flat


def mimi_original_to_port(state: dict[str, torch.Tensor], heads: int) -> dict[str, torch.Tensor]:
    """Original Mimi state dict -> the flat Hugging Face layout (the released model.safetensors' keys)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        new = key
        for pattern, template in _ORIGINAL_TO_FLAT:
            new = re.sub(pattern, template, new)
        if new.endswith(".self_attn.in_proj_weight"):
            head = new[: -len("in_proj_weight")]
            q, k, v = value.chunk(3, dim=0)
            out[head + "q_proj.weight"] = _rotary_to_half(q, heads)
            out[head + "k_proj.weight"] = _rotary_to_half(k, heads)
            out[head + "v_proj.weight"] = v
        else:
            out[new] = value
    return out


def mimi_port_to_original(model) -> dict[str, torch.Tensor]:
    """A `MimiModel`'s weights in the authors' layout (the inverse of `mimi_original_to_port`; tests and exports)."""
    from transformers.models.mimi.modeling_mimi import MimiConvTranspose1d

    nested = _nested(model)
    heads = int(model.config.num_attention_heads)
    state, qkv = {}, {}
    for key, value in model.state_dict().items():
        flat = key
        if nested:
            for a, b in _FLAT_TO_NESTED:
                if key.startswith(b):
                    flat = a + key[len(b):]
        orig = flat
        m = re.match(r"^quantizer\.(semantic|acoustic)_residual_vector_quantizer\.(.+)$", flat)
        if m:
            rest = m[2].replace(".codebook.", "._codebook.").replace(".initialized", "._initialized")
            rest = rest.replace(".embed_sum", ".embedding_sum")
            rvq = "rvq_first" if m[1] == "semantic" else "rvq_rest"
            orig = f"quantizer.{rvq}.vq.{rest}" if rest.startswith("layers.") else f"quantizer.{rvq}.{rest}"
        elif re.match(r"^(encoder|decoder)\.layers\.", flat):
            module = model.get_submodule(key.rsplit(".", 2)[0])
            wrap = "convtr.convtr" if isinstance(module, MimiConvTranspose1d) else "conv.conv"
            orig = re.sub(r"^(encoder|decoder)\.layers\.", r"\1.model.", flat).replace(".conv.", f".{wrap}.")
        elif flat.startswith(("downsample.", "upsample.")):
            orig = flat.replace("downsample.conv.", "downsample.conv.conv.conv.").replace(
                "upsample.conv.", "upsample.convtr.convtr.convtr.")
        elif re.match(r"^(encoder|decoder)_transformer\.", flat):
            orig = re.sub(r"^(encoder|decoder)_transformer\.", r"\1_transformer.transformer.", flat)
            for a, b in (("mlp.fc1.", "linear1."), ("mlp.fc2.", "linear2."), ("self_attn.o_proj.", "self_attn.out_proj."),
                         ("input_layernorm.", "norm1."), ("post_attention_layernorm.", "norm2."),
                         ("self_attn_layer_scale.", "layer_scale_1."), ("mlp_layer_scale.", "layer_scale_2.")):
                orig = orig.replace(a, b)
            p = re.match(r"^(.+\.self_attn\.)(q|k|v)_proj\.weight$", orig)
            if p:
                qkv.setdefault(p[1], {})[p[2]] = value if p[2] == "v" else _half_to_rotary(value, heads)
                continue
        state[orig] = value.detach().clone()
    for head, parts in qkv.items():
        state[head + "in_proj_weight"] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0).contiguous()
    return state


def _infer_config(state: dict[str, torch.Tensor]):
    """The config of an original Mimi file, read from its tensor shapes (the file carries none)."""
    try:
        first = state["encoder.model.0.conv.conv.weight"]
        embed = state["quantizer.rvq_first.vq.layers.0._codebook.embedding_sum"]
        proj = state["quantizer.rvq_first.input_proj.weight"]
        fc1 = state["encoder_transformer.transformer.layers.0.linear1.weight"]
        up = state["upsample.convtr.convtr.convtr.weight"]
    except KeyError as err:
        raise CodecError(f"not an original Mimi checkpoint: no {err.args[0]}") from None
    hidden = int(fc1.shape[1])
    layers = len({k.split(".")[3] for k in state if k.startswith("encoder_transformer.transformer.layers.")})
    rest = len({k.split(".")[4] for k in state if k.startswith("quantizer.rvq_rest.vq.layers.")})
    if hidden % HEAD_DIM:
        raise CodecError(f"original Mimi file of hidden size {hidden}: not a multiple of {HEAD_DIM}, so its attention "
                         "heads cannot be known; convert it to a Hugging Face folder with its config instead")
    heads = hidden // HEAD_DIM
    return reference_config(
        num_filters=int(first.shape[0]), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        num_key_value_heads=heads, intermediate_size=int(fc1.shape[0]), codebook_size=int(embed.shape[0]),
        codebook_dim=int(embed.shape[1]), vector_quantization_hidden_dimension=int(proj.shape[0]),
        num_quantizers=1 + rest, upsample_groups=hidden // int(up.shape[1]), audio_channels=int(first.shape[1]))


def load_mimi_original(path: Path):
    """The authors' `tokenizer-*.safetensors` -> `MimiModel`, strictly (every tensor must find its place)."""
    from safetensors.torch import load_file
    from transformers import MimiModel

    try:
        state = load_file(str(path))
    except Exception as err:  # noqa: BLE001 - safetensors raises several types for a damaged file
        raise W.CheckpointError(f"{path}: cannot be read as safetensors ({type(err).__name__}); fetch it again") from None
    config = _infer_config(state)
    model = MimiModel(config)
    nested = _nested(model)
    flat = mimi_original_to_port(state, int(config.num_attention_heads))
    mapped = {_to_model_key(k, nested): v for k, v in flat.items()}
    missing, unexpected = model.load_state_dict(mapped, strict=False)
    if missing or unexpected:
        raise CodecError(f"{path}: does not fit the Mimi model (missing {missing[:4]}, unexpected {unexpected[:4]})")
    for module in model.modules():  # codebook means are cached on first use: drop any computed before loading
        if hasattr(module, "_embed"):
            module._embed = None
    return model


def save_mimi_original(model, folder: str | Path, name: str | None = None) -> Path:
    """Write a model as the authors' file is laid out, named like the release (`tokenizer-<sha8>-checkpoint125`)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "tokenizer.tmp"
    save_file(mimi_port_to_original(model), str(tmp))
    final = folder / (name or f"tokenizer-{W.sha256_file(tmp)[:8]}-checkpoint125.safetensors")
    tmp.replace(final)
    return final


def fill_codebooks(model, gen: torch.Generator | None = None) -> None:
    """Random-init codebooks with distinct entries (the port zero-fills `embed_sum`, so every code would be 0)."""
    for module in model.modules():
        if hasattr(module, "embed_sum") and hasattr(module, "cluster_usage"):
            module.embed_sum.copy_(torch.randn(module.embed_sum.shape, generator=gen))
            module._embed = None


class Mimi(NeuralCodec):
    """Mimi with its first `n_codebooks` codebooks (1 semantic + acoustic). Options: n_codebooks (1-32, default 8 =
    1.1 kbps), weights=PATH, device, pretrained (False: random weights), tiny (narrow random model), seed."""

    name = "mimi"
    code_version = "1"
    licence = LICENCE
    paper = PAPER
    checkpoints = CHECKPOINTS
    default_checkpoint = "24khz"
    weight_suffixes = (".safetensors",)

    def __init__(self, n_codebooks: int | None = None, weights: str | None = None, device: str = "cpu",
                 pretrained: bool = True, tiny: bool = False, seed: int = 0):
        most, frame_rate, bits = _rates(reference_config())
        n_codebooks = 8 if n_codebooks is None else int(n_codebooks)
        if not 1 <= n_codebooks <= most:
            raise CodecError(f"mimi has 1 to {most} codebooks ({bits * frame_rate / 1000:g} kbps each); "
                             f"got n_codebooks={n_codebooks}")
        self.n_codebooks = n_codebooks
        self._setup(None, {"n_codebooks": n_codebooks}, weights, device, pretrained, tiny, seed)

    @classmethod
    def config_for(cls, key: str, tiny: bool = False):
        return reference_config(tiny=tiny)

    @classmethod
    def _port_class(cls):
        from transformers import MimiModel

        return MimiModel

    @classmethod
    def _random_model(cls, key: str, tiny: bool, seed: int):
        model = cls._port_class()(reference_config(tiny=tiny))
        with torch.no_grad():
            fill_codebooks(model)
        return model

    def _load_original(self, path: Path):
        return load_mimi_original(path)

    @classmethod
    def _save_original(cls, model, dest: Path, key: str) -> Path:
        return save_mimi_original(model, dest / key)

    def _configure(self, cfg) -> Rates:
        have, frame_rate, _ = _rates(cfg)
        if have < self.n_codebooks:
            raise CodecError(f"these Mimi weights have {have} codebooks; n_codebooks={self.n_codebooks} is too many")
        self.hop = int(round(cfg.sampling_rate / frame_rate))
        return Rates(int(cfg.sampling_rate), frame_rate, (int(cfg.codebook_size),) * self.n_codebooks,
                     int(cfg.audio_channels), kbps=self.n_codebooks * math.log2(cfg.codebook_size) * frame_rate / 1000)

    @classmethod
    def operating_points(cls) -> list[OperatingPoint]:
        most, frame_rate, bits = _rates(reference_config())
        return [OperatingPoint(k * bits * frame_rate / 1000, {"n_codebooks": k},
                               f"mimi {k * bits * frame_rate / 1000:g} kbps ({k} codebook{'s' if k > 1 else ''})")
                for k in range(1, most + 1)]

    # -- the work: codes [B, K, ceil(T / 1920)] (the model pads the last frame itself) ------------------------

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode(x.to(self.device), num_quantizers=self.n_codebooks).audio_codes

    def _decode(self, enc: Encoded) -> torch.Tensor:
        return self.model.decode(enc.codes.to(self.device)).audio_values

    def _embedding(self, codes: torch.Tensor) -> torch.Tensor:
        """The sum of the selected codebooks' entries, output-projected (D = 512 for the released model)."""
        return self.model.quantizer.decode(codes).transpose(1, 2)

    @classmethod
    def _source(cls, ck: Checkpoint, source: str):
        """source="hub": kyutai/mimi (config.json + model.safetensors); "original": the authors' tokenizer file from
        kyutai/moshiko-pytorch-bf16. Both into `<dest>/24khz/`."""
        if source == "original":
            return ORIGINAL.pin(), [ORIGINAL_NAME]
        return super()._source(ck, source)
