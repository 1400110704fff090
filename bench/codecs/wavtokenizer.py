"""WavTokenizer (Ji et al. 2025) on transformers' `WavTokenizerModel`: 24 kHz mono, one codebook, 40 or 75 tokens/s.

Shapes: audio float32 `[B, 1, T]` at 24 kHz; codes int64 `[B, 1, N]`, N = ceil(T / hop) (hop 600 at 40 tokens/s,
320 at 75; one codebook of 4096 entries, 12 bits: 0.48 or 0.9 kbps); embeddings `[B, N, 512]` (the codebook entries
the Vocos decoder receives).

Checkpoints (`checkpoint=`): the authors' releases as transformers converted them (the swiss-ai repositories the
transformers docs list); `token_rate=40|75` picks the default one of each rate. The encoder pads internally and the
reference feature extractor neither normalises nor pads a single clip, so encode runs the model on the audio as it is.

Weights: a Hugging Face folder, or the authors' original PyTorch Lightning `.ckpt` (novateur/WavTokenizer*), mapped
here: `feature_extractor.encodec.encoder.model.*` -> the SEANet encoder, `...quantizer.vq.layers.0._codebook.*` ->
the codebook, `backbone.*` as it is, `head.out.*` -> `head.linear.*`, weight norm `weight_g/weight_v` -> the port's
parametrization; the training-only parts (discriminators, losses, the unused SEANet decoder, the ISTFT window
buffer) are dropped. The architecture is read from the tensor shapes (these files carry no config).
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
from bench.codecs.neural import Checkpoint, NeuralCodec, Rates

LICENCE = "MIT"
PAPER = ("Ji et al. 2025, WavTokenizer: an Efficient Acoustic Discrete Codec Tokenizer for Audio Language Modeling, "
         "ICLR 2025, arXiv:2408.16532")
# The two temporal configurations of the releases (transformers docs, WavTokenizer page): upsampling ratios by rate.
RATIOS = {40: (6, 5, 5, 4), 75: (8, 5, 4, 2)}


@dataclass(frozen=True)
class Release:
    key: str  # cache folder and `checkpoint=` value
    token_rate: int
    domain: str


_RELEASES = (Release("small-speech-40token", 40, "speech"), Release("small-speech-75token", 75, "speech"),
             Release("medium-speech-75token", 75, "speech"), Release("medium-speech-75token-v2", 75, "speech"),
             Release("medium-music-audio-75token", 75, "music/audio"),
             Release("medium-music-audio-75token-v2", 75, "music/audio"),
             Release("large-unify-40token", 40, "unified"), Release("large-speech-75token-v2", 75, "speech"))
RELEASES = {r.key: r for r in _RELEASES}
DEFAULT = {40: "large-unify-40token", 75: "large-speech-75token-v2"}
CHECKPOINTS = {r.key: Checkpoint(r.key, f"swiss-ai/wavtokenizer-{r.key}",
                                    source=f"https://huggingface.co/swiss-ai/wavtokenizer-{r.key}") for r in _RELEASES}


def wavtokenizer_config(token_rate: int = 40, tiny: bool = False, **overrides: Any):
    """The released architecture at `token_rate` (transformers' defaults with that rate's ratios); `tiny` narrows
    every layer (tests), keeping the rate, the hop and the 4096-entry codebook."""
    from transformers import WavTokenizerConfig

    if token_rate not in RATIOS:
        raise CodecError(f"wavtokenizer has token_rate 40 or 75, not {token_rate!r}")
    kw: dict[str, Any] = dict(upsampling_ratios=list(RATIOS[token_rate]))
    if tiny:
        kw.update(num_filters=2, hidden_size=8, codebook_dim=8, decoder_hidden_size=32, decoder_intermediate_size=16,
                  decoder_num_layers=1, num_lstm_layers=1, decoder_attention_num_groups=4)
    kw.update(overrides)
    return WavTokenizerConfig(**kw)


def _rate(cfg) -> tuple[float, float, float]:
    """(bits per code, frames per second, kbps) of a config."""
    bits = math.log2(cfg.codebook_size)
    frame_rate = cfg.sampling_rate / cfg.hop_length
    return bits, frame_rate, bits * frame_rate / 1000


# -- the original layout ----------------------------------------------------------------------------

_DROP = ("multiperioddisc.", "multiresddisc.", "dac.", "dacdiscriminator.", "melspec_loss.",
         "feature_extractor.encodec.decoder.")
_ENC, _VQ = "feature_extractor.encodec.encoder.model.", "feature_extractor.encodec.quantizer.vq.layers.0._codebook."
_WN = {"weight_g": "parametrizations.weight.original0", "weight_v": "parametrizations.weight.original1"}


def original_to_port(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An original Lightning state dict -> `WavTokenizerModel` keys (training-only entries dropped)."""
    out = {}
    for key, value in state.items():
        if key == "head.istft.window" or key.startswith(_DROP):
            continue
        if key.startswith(_ENC):
            rest = key[len(_ENC):]
            m = re.match(r"^(.*)\.conv\.conv\.(weight_g|weight_v|bias)$", rest)
            if m:
                rest = f"{m[1]}.conv.{_WN.get(m[2], m[2])}"
            new = f"encoder_model.encoder.layers.{rest}"
        elif key.startswith(_VQ):
            new = f"encoder_model.quantizer.codebook.{key[len(_VQ):]}"
        elif key.startswith("head.out."):
            new = "head.linear." + key[len("head.out."):]
        elif key.startswith(("backbone.", "head.")):
            new = key
        else:
            raise CodecError(f"not a WavTokenizer checkpoint: unexpected key {key!r}")
        out[new] = value
    return out


def port_to_original(model) -> dict[str, Any]:
    """The inverse: a `WavTokenizerModel` as the authors' Lightning file holds it (`{"state_dict": ...}`), with one
    discriminator tensor and one SEANet-decoder tensor as the releases carry (loading must drop them)."""
    state = {}
    for key, value in model.state_dict().items():
        if key.startswith("encoder_model.encoder.layers."):
            rest = key[len("encoder_model.encoder.layers."):]
            for leaf, port in _WN.items():
                rest = rest.replace(f"conv.{port}", f"conv.conv.{leaf}")
            rest = re.sub(r"\.conv\.bias$", ".conv.conv.bias", rest)
            state[_ENC + rest] = value.clone()
        elif key.startswith("encoder_model.quantizer.codebook."):
            state[_VQ + key[len("encoder_model.quantizer.codebook."):]] = value.clone()
        elif key.startswith("head.linear."):
            state["head.out." + key[len("head.linear."):]] = value.clone()
        else:
            state[key] = value.clone()
    state["multiperioddisc.discriminators.0.convs.0.weight"] = torch.zeros(2, 1, 3)
    state["feature_extractor.encodec.decoder.model.0.conv.conv.bias"] = torch.zeros(2)
    return {"state_dict": state, "hyper_parameters": {"sample_rate": model.config.sampling_rate}}


def infer_config(state: dict[str, torch.Tensor]):
    """The config of an original checkpoint from its tensor shapes: each channel-doubling encoder convolution after
    the first layer has a kernel of twice its stride (their order reversed gives the upsampling ratios)."""
    try:
        downs = sorted((int(m[1]), v.shape[-1] // 2) for k, v in state.items()
                       if (m := re.match(re.escape(_ENC) + r"(\d+)\.conv\.conv\.weight_v$", k))
                       and int(m[1]) > 0 and v.ndim == 3 and v.shape[0] == 2 * v.shape[1])
        first = state[_ENC + "0.conv.conv.weight_v"]
        codebook = state[_VQ + "embed"]
        embed = state["backbone.embed.weight"]
        lstm = {k for k in state if re.match(re.escape(_ENC) + r"\d+\.lstm\.weight_ih_l\d+$", k)}
        layers = {int(m[1]) for k in state if (m := re.match(r"^backbone\.convnext\.(\d+)\.dwconv\.weight$", k))}
        groups = 32 if embed.shape[0] % 32 == 0 else math.gcd(embed.shape[0], 32)
        return wavtokenizer_config(
            upsampling_ratios=[r for _, r in reversed(downs)], num_filters=int(first.shape[0]),
            num_lstm_layers=len(lstm), hidden_size=int(embed.shape[1]), codebook_size=int(codebook.shape[0]),
            codebook_dim=int(codebook.shape[1]), decoder_hidden_size=int(embed.shape[0]),
            decoder_intermediate_size=int(state["backbone.convnext.0.pwconv1.weight"].shape[0]),
            decoder_num_layers=len(layers), adanorm_num_embeddings=int(state["backbone.norm.scale.weight"].shape[0]),
            decoder_attention_num_groups=groups)
    except (KeyError, IndexError) as err:
        raise CodecError(f"not a WavTokenizer checkpoint: no {err} tensor") from None


def load_original(path: Path):
    """An original `.ckpt` -> `WavTokenizerModel`, strictly (every inference tensor must find its place)."""
    from transformers import WavTokenizerModel

    blob = W.load_checkpoint(path)
    state = blob.get("state_dict", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict):
        raise CodecError(f"{path}: not a WavTokenizer checkpoint (expected a Lightning file with a state_dict)")
    model = WavTokenizerModel(infer_config(state))
    missing, unexpected = model.load_state_dict(original_to_port(state), strict=False)
    missing = [k for k in missing if not k.endswith("istft.window")]
    if missing or unexpected:
        raise CodecError(f"{path}: does not fit the WavTokenizer model (missing {missing[:4]}, unexpected "
                         f"{unexpected[:4]})")
    return model


def save_original(model, folder: str | Path, name: str = "wavtokenizer_random_24k.ckpt") -> Path:
    """Write a model in the original release layout (a Lightning-style dict), for tests and exports."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(port_to_original(model), folder / name)
    return folder / name


# -- the codec ----------------------------------------------------------------------------------------

class WavTokenizer(NeuralCodec):
    """WavTokenizer at one token rate. Options: token_rate (40 | 75), checkpoint (a release name, default the large
    one of that rate), weights=PATH, device, pretrained (False: random weights), tiny (narrow random model), seed."""

    name = "wavtokenizer"
    code_version = "1"
    licence = LICENCE
    paper = PAPER
    checkpoints = CHECKPOINTS
    default_checkpoint = DEFAULT[40]
    variant_option = "checkpoint"
    weight_suffixes = (".ckpt",)

    def __init__(self, token_rate: int | None = None, checkpoint: str | None = None, weights: str | None = None,
                 device: str = "cpu", pretrained: bool = True, tiny: bool = False, seed: int = 0):
        if checkpoint is not None and checkpoint not in RELEASES:
            raise CodecError(f"wavtokenizer has no checkpoint {checkpoint!r}; choose one of {', '.join(RELEASES)}")
        rate = int(token_rate) if token_rate is not None else (RELEASES[checkpoint].token_rate if checkpoint else 40)
        if rate not in RATIOS:
            raise CodecError(f"wavtokenizer has token_rate 40 or 75 (0.48 or 0.9 kbps), not {token_rate!r}")
        checkpoint = checkpoint or DEFAULT[rate]
        if RELEASES[checkpoint].token_rate != rate:
            raise CodecError(f"wavtokenizer checkpoint {checkpoint!r} runs at {RELEASES[checkpoint].token_rate} "
                             f"tokens/s, not {rate}")
        self.token_rate, self.checkpoint_name = rate, checkpoint
        self._setup(checkpoint, {"token_rate": rate, "checkpoint": checkpoint}, weights, device, pretrained, tiny,
                    seed)

    @classmethod
    def _checkpoint_key(cls, name) -> str:
        """40 | 75 -> the default release of that rate; a release name as it is."""
        return DEFAULT[int(name)] if str(name) in ("40", "75") else str(name)

    @classmethod
    def config_for(cls, key: str, tiny: bool = False):
        return wavtokenizer_config(RELEASES[key].token_rate, tiny)

    @classmethod
    def _port_class(cls):
        from transformers import WavTokenizerModel

        return WavTokenizerModel

    @classmethod
    def _random_model(cls, key: str, tiny: bool, seed: int):
        return random_model(RELEASES[key].token_rate, tiny, seed)

    def _load_original(self, path: Path):
        return load_original(path)

    def _configure(self, cfg) -> Rates:
        bits, frame_rate, kbps = _rate(cfg)
        if round(frame_rate) != self.token_rate:
            raise CodecError(f"these WavTokenizer weights run at {frame_rate:g} tokens/s, not {self.token_rate}; pass "
                             f"token_rate={round(frame_rate)}")
        self.hop = int(cfg.hop_length)
        return Rates(int(cfg.sampling_rate), frame_rate, (int(cfg.codebook_size),), kbps=kbps)

    @classmethod
    def operating_points(cls) -> list[OperatingPoint]:
        points = []
        for rate in RATIOS:
            bits, frames, kbps = _rate(wavtokenizer_config(rate))
            points.append(OperatingPoint(kbps, {"token_rate": rate},
                                         f"wavtokenizer {kbps:g} kbps ({frames:g} tokens/s x {bits:g} bits, "
                                         f"{DEFAULT[rate]})"))
        return points

    # -- the work: codes [B, 1, ceil(T / hop)] ----------------------------------------------------------------

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode(x.to(self.device)).audio_codes

    def _decode(self, enc: Encoded) -> torch.Tensor:
        return self.model.decode(enc.codes.to(self.device)).audio_values

    def _embedding(self, codes: torch.Tensor) -> torch.Tensor:
        """The codebook entries the decoder receives (D = 512 released)."""
        return self.model.encoder_model.quantizer.decode(codes[:, 0]).transpose(1, 2)


def random_model(token_rate: int, tiny: bool, seed: int):
    """A WavTokenizerModel with every weight drawn from `seed` (`discriminating_state`)."""
    from transformers import WavTokenizerModel

    from bench.codecs.random_weights import discriminating_state

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = WavTokenizerModel(wavtokenizer_config(token_rate, tiny))
    model.load_state_dict(discriminating_state(model.state_dict(), seed=seed))
    # Like the releases (k-means initialised), draw the codebook from encoder frames, so that random weights use many
    # entries (codes that vary, for tests that can fail) rather than the one nearest to everything.
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        cfg = model.config
        frames = model.encoder_model.encoder(0.1 * torch.randn(1, 1, cfg.hop_length * 64, generator=gen))[0].T
        book = model.encoder_model.quantizer.codebook
        pick = torch.randint(0, frames.shape[0], (book.embed.shape[0],), generator=gen)
        book.embed.copy_(frames[pick] + 0.05 * frames.std() * torch.randn(book.embed.shape, generator=gen))
        book.embed_avg.copy_(book.embed)
    return model
