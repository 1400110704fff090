"""The Codec protocol every codec implements, and the data it passes around.

Shapes: audio is a float32 Tensor `[B, C, T]` at `codec.sample_rate`; codes are int64 `[B, K, N]`
(K streams or codebooks, N frames); embeddings are float32 `[B, N, D]`.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from bench.audio import AudioError

if TYPE_CHECKING:  # torch is imported by implementations, never at registry/listing time
    import torch

log = logging.getLogger(__name__)

# Float audio is expected in [-1, 1]. A peak above this is not loud audio but unscaled PCM (int16 read as float
# is up to 32767) or garbage: every codec refuses it (LAME aborts the whole process on ~1e6).
MAX_PEAK = 100.0
# More channels than this on axis 1, and more than samples on axis 2: the tensor is [B, T, C], not [B, C, T].
_MAX_PLAUSIBLE_CHANNELS = 64
_PRECISIONS = {None: "float32", "fp32": "float32", "float32": "float32", "bf16": "bf16", "bfloat16": "bf16",
               "fp16": "fp16", "float16": "fp16", "half": "fp16"}


class CodecError(ValueError):
    """Bad codec options or input; the message says what to do."""


class CodecInputError(CodecError, AudioError):
    """Audio a codec cannot take (dtype, layout, NaN/Inf, absurd level); both a CodecError and an AudioError."""


class WeightsMissingError(FileNotFoundError):
    """A codec's checkpoint is not on disk; the message names `bench weights fetch NAME`."""


@dataclass(frozen=True)
class OperatingPoint:
    """One bitrate a codec can run at, and the options that select it."""

    kbps: float
    options: dict[str, Any]
    label: str = ""


@dataclass(frozen=True)
class CodecMeta:
    name: str
    sample_rate: int | None  # Hz, what encode() expects and decode() returns; None = any (identity)
    channels: int | None  # None = any (identity)
    operating_points: tuple[float, ...]  # nominal kbps
    frame_rate: float | None  # code frames per second (None for classic codecs with variable packets)
    needs_weights: bool
    licence: str
    paper: str = ""
    random_weights: bool = False  # True for tiny/untrained models: reports must say so
    # Entries of each code stream's codebook, stream k of codes [B, K, N] -> codebook_sizes[k] (e.g. Encodec at
    # 6 kbps: 8 x 1024; SemantiCodec: (semantic vocab, 8192)). None for codecs that send bytes (classic codecs).
    # The report's token statistics (bench/reports/tokens.py) read it from the stored codec meta.
    codebook_sizes: tuple[int, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Encoded:
    """The output of `Codec.encode`.

    codes: int64 `[B, K, N]`. For classic codecs K=1 and the codes are the bitstream's bytes
    (padded with -1 past each item's end); `payload` then holds the exact bytes per item.
    bitrate: bits per second actually produced by this bitstream over the batch (never the label).
    lengths: input length of each item in samples at the codec's sample rate, so decode can trim.
    frames: code frames that belong to each item (None: all N); item_bitrates: bits per second of
    each item's own codes (None: `bitrate` for all). Codecs that batch items of different lengths set both.
    """

    codes: "torch.Tensor"
    bitrate: float
    lengths: list[int]
    sample_rate: int
    payload: list[bytes] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    frames: list[int] | None = None
    item_bitrates: list[float] | None = None

    def item_codes(self, i: int) -> "torch.Tensor":
        """Item i's own codes `[1, K, N_i]` (its padding frames dropped)."""
        codes = self.codes[i: i + 1]
        return codes if self.frames is None else codes[..., : self.frames[i]]

    @property
    def kbps(self) -> float:
        return self.bitrate / 1000.0


class Codec:
    """Base class. Subclasses set `name`, build `self.meta` and implement encode/decode (and embed).

    Construct through `bench.load_codec(name, bitrate=..., **options)`.
    """

    name: ClassVar[str] = ""
    # Bump when a change can alter a codec's output (tests/test_versions.py notices an edit without a bump).
    # Every registered codec class sets its own.
    code_version: ClassVar[str] = "1"
    # check_input policy. mixes_channels: encode() mixes any channel count to meta.channels itself (else the
    # count must match). clip_input: samples beyond [-1, 1] are clipped, with a warning (codecs whose
    # library cannot take them: LAME, libopus, Codec 2).
    mixes_channels: ClassVar[bool] = False
    clip_input: ClassVar[bool] = False
    # How many items the runner may pass to one encode/decode call. A codec that sets > 1 accepts
    # `encode(wav [B, C, T], lengths=[...])` for a zero-padded batch, treats every item as if it were alone
    # (same output to float round-off) and fills Encoded.frames and Encoded.item_bitrates.
    batch_items: ClassVar[int] = 1
    meta: CodecMeta
    options: dict[str, Any]

    @classmethod
    def operating_points(cls) -> list[OperatingPoint]:
        raise NotImplementedError

    @classmethod
    def weights_available(cls) -> bool:
        """Whether the codec can run now without fetching weights (weight-free codecs: always)."""
        return True

    @classmethod
    def nearest_operating_point(cls, kbps: float, options: dict[str, Any] | None = None) -> OperatingPoint:
        """The operating point nearest `kbps`, among those that agree with the explicit `options` (e.g. a
        model variant `sample_rate=16000`) when any do."""
        points = cls.operating_points()
        fixed = options or {}
        agreeing = [p for p in points if all(p.options.get(k, v) == v for k, v in fixed.items())]
        best = min(agreeing or points, key=lambda p: (abs(p.kbps - kbps), p.kbps))
        return best

    # -- the work -------------------------------------------------------------------------------

    def encode(self, wav: "torch.Tensor", sample_rate: int | None = None, lengths: list[int] | None = None) -> Encoded:
        """wav: float32 `[B, C, T]` at `self.meta.sample_rate` (or at `sample_rate`, which the codec resamples or, for
        rate-free codecs, measures with) -> Encoded. The one signature of every codec: the runner always passes the
        rate; `lengths` (where each item of a zero-padded batch ends) is passed to codecs with `batch_items` > 1."""
        raise NotImplementedError

    def decode(self, enc: Encoded) -> "torch.Tensor":
        """Encoded -> float32 `[B, C, T]` at `self.meta.sample_rate`, trimmed to the input length."""
        raise NotImplementedError

    def embed(self, wav: "torch.Tensor") -> "torch.Tensor":
        """wav `[B, C, T]` -> float32 `[B, N, D]`: the quantised latent the decoder receives."""
        raise NotImplementedError(f"codec {self.name!r} has no embedding")

    def embed_items(self, wavs: list["torch.Tensor"]) -> list["torch.Tensor"]:
        """Clips of different lengths `[C, T_i]` -> their embeddings `[N_i, D]` (batched where the codec can)."""
        return [self.embed(w[None])[0] for w in wavs]

    def to(self, device: str) -> "Codec":
        """Move the model to `device`; codecs with a model record it in `self.device` (part of the fingerprint).
        Weight-free codecs compute on the CPU wherever they are sent, so this is a no-op for them."""
        return self

    # -- input ----------------------------------------------------------------------------------

    def check_input(self, wav: Any, lengths: list[int] | None = None) -> "torch.Tensor":
        """The one input check of every codec's encode: audio -> float32 CPU tensor `[B, C, T]`.

        Raises CodecInputError (a CodecError and an AudioError) with what to do for: a non-float dtype
        (int16 PCM must be scaled: `wav.float() / 32768`), a shape that is not `[B, C, T]`, one that looks
        like `[B, T, C]` (pass `wav.transpose(1, 2)`), a channel count the codec cannot take (codecs with
        `mixes_channels` take any count), empty audio, NaN/Inf samples (naming the item), and peaks above
        MAX_PEAK (100: unscaled PCM, not audio; LAME aborts the process on such input). `lengths` (one per
        item) limits the NaN and level checks to each item's own samples of a zero-padded batch.

        Loud but plausible input (peak in (1, 100]) is kept as it is, except by codecs with `clip_input`
        (mp3, opus, codec2: their libraries cannot represent samples outside [-1, 1]), which clip it to
        [-1, 1] and log a warning naming the item and its peak.
        """
        import numpy as np
        import torch

        if isinstance(wav, torch.Tensor):
            x = wav.detach()
        else:
            try:
                arr = np.asarray(wav)
            except (TypeError, ValueError) as err:
                raise CodecInputError(f"codec {self.name!r}: cannot read the input as audio ({err}); pass a "
                                      "float32 tensor [B, C, T]") from None
            if arr.dtype.kind not in "fiub" or arr.dtype.kind == "f" and arr.dtype.itemsize > 8:
                raise CodecInputError(f"codec {self.name!r}: audio of dtype {arr.dtype} is not supported; pass "
                                      "float32 samples in [-1, 1], shape [B, C, T]")
            x = torch.from_numpy(np.ascontiguousarray(arr))
        if x.is_complex() or not x.is_floating_point():
            raise CodecInputError(f"codec {self.name!r}: audio must be float samples in [-1, 1], got dtype "
                                  f"{str(x.dtype).replace('torch.', '')}; {_int_hint(x.dtype)}")
        if x.ndim != 3:
            hint = {1: "wav[None, None]", 2: "wav[None]"}.get(x.ndim, "a [B, C, T] tensor")
            raise CodecInputError(f"codec {self.name!r}: expected audio [B, C, T], got shape {tuple(x.shape)}; "
                                  f"add the batch/channel axes with {hint}")
        b, c, t = x.shape
        if b == 0 or t == 0 or c == 0:
            raise CodecInputError(f"codec {self.name!r}: empty audio (shape {tuple(x.shape)})")
        want = self.meta.channels
        if c > t and (c > _MAX_PLAUSIBLE_CHANNELS or (want is not None and t == want)):
            raise CodecInputError(f"codec {self.name!r}: audio of shape {tuple(x.shape)} looks like [B, T, C] "
                                  f"({c} channels of {t} samples); pass wav.transpose(1, 2)")
        if want is not None and c != want and not self.mixes_channels:
            raise CodecInputError(f"codec {self.name!r} takes {want}-channel audio, got {c}; convert with "
                                  "bench.audio.to_channels first")
        x = x.to("cpu", torch.float32)
        spans = [t] * b if lengths is None else [max(0, min(int(n), t)) for n in lengths]
        if len(spans) != b:
            raise CodecInputError(f"codec {self.name!r}: got {len(spans)} lengths for a batch of {b} items")
        clipped = []
        for i, n in enumerate(spans):
            own = x[i, :, :n]
            if not bool(torch.isfinite(own).all()):
                raise CodecInputError(f"codec {self.name!r}: item {i} contains NaN or Inf samples; replace them "
                                      "(e.g. torch.nan_to_num) or drop the item")
            peak = float(own.abs().max()) if n else 0.0
            if peak > MAX_PEAK:
                raise CodecInputError(
                    f"codec {self.name!r}: item {i} peaks at {peak:.3g}, far outside [-1, 1]; float audio must be "
                    "scaled to [-1, 1] (int16 PCM: wav.float() / 32768)")
            if peak > 1.0 and self.clip_input:
                clipped.append(f"item {i} (peak {peak:.3g})")
        if clipped:
            log.warning("%s: %s beyond [-1, 1]; clipped to [-1, 1] (the codec cannot take louder samples)",
                        self.name, ", ".join(clipped))
            x = x.clamp(-1.0, 1.0)
        return x

    # -- identity -------------------------------------------------------------------------------

    def weights_digest(self) -> str:
        """A digest of the weights in use ("none" for weight-free codecs)."""
        return "none"

    @property
    def device_type(self) -> str:
        """"cpu", "cuda" or "mps": the class of the device the codec computes on (`self.device`, set by `to`)."""
        device = getattr(self, "device", None)
        if device is None:
            return "cpu"
        return str(getattr(device, "type", None) or str(device).split(":")[0])

    @property
    def precision_name(self) -> str:
        """"float32", "bf16" or "fp16": the arithmetic of the codec's `precision` option (float32 without one)."""
        precision = getattr(self, "precision", None)
        return _PRECISIONS.get(str(precision).lower() if precision is not None else None, str(precision))

    def runtime(self) -> dict[str, Any]:
        """Where and how the codec computes, as it enters the fingerprint: device class and precision, plus on
        CUDA whether TF32 may replace float32 in matrix products and cuDNN convolutions."""
        out: dict[str, Any] = {"device": self.device_type, "precision": self.precision_name}
        if out["device"] == "cuda":
            import torch

            out["tf32_matmul"] = bool(torch.backends.cuda.matmul.allow_tf32)
            out["tf32_cudnn"] = bool(torch.backends.cudnn.allow_tf32)
        return out

    def fingerprint(self) -> str:
        """Hash of name, options, weights digest, bench and code version, device class and precision
        (`runtime()`) and the pipeline's CODING_VERSION: the key of every cached output. Call it after `to(device)`."""
        from bench import __version__
        from bench.pipeline import CODING_VERSION, key_part

        blob = json.dumps(
            {
                "name": self.name,
                "options": {k: v for k, v in sorted(self.options.items()) if k not in _RUNTIME_OPTIONS},
                "weights": self.weights_digest(),
                "code": f"{__version__}/{self.code_version}",
                "runtime": self.runtime(),
                **key_part(CODING_VERSION),  # loading, resampling, trimming around the codec (bench/pipeline.py)
            },
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def version_info(self) -> dict[str, Any]:
        """What the fingerprint covers, for reports: code version, weights digest, runtime."""
        from bench import __version__

        return {"code_version": self.code_version, "bench": __version__, "weights": self.weights_digest(),
                **self.runtime()}

    @property
    def label(self) -> str:
        from bench.registry import format_spec

        shown = {k: v for k, v in self.options.items() if k not in _RUNTIME_OPTIONS}
        return format_spec(self.name, shown)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.label}>"


# Options that change where or how fast a codec runs but never its output (the device class and the
# precision enter the fingerprint through `runtime()`; the weights through their content digest).
_RUNTIME_OPTIONS = {"device", "weights", "batch_size"}


def _int_hint(dtype) -> str:
    name = str(dtype).replace("torch.", "")
    scale = {"int16": "wav.float() / 32768", "int32": "wav.float() / 2147483648",
             "uint8": "(wav.float() - 128) / 128", "int8": "wav.float() / 128"}.get(name)
    if scale:
        return f"convert {name} PCM with {scale}"
    return "convert with wav.float() and scale to [-1, 1] (int16 PCM: wav.float() / 32768)"


def accepted_options(cls: type) -> list[str]:
    params = inspect.signature(cls.__init__).parameters
    return [p for p in params if p not in ("self", "args", "kwargs")]


def unknown_options(cls: type, options: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(options `cls.__init__` does not take, the ones it does); none unknown for a class taking **options
    (it checks its own). Codecs and metrics both answer an unknown one with this in one line."""
    accepted = accepted_options(cls)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(cls.__init__).parameters.values())
    return ([] if takes_any else [k for k in options if k not in accepted]), accepted


def check_options(cls: type, options: dict[str, Any]) -> None:
    """Raise a CodecError naming the accepted options when one is unknown."""
    unknown, accepted = unknown_options(cls, options)
    if unknown:
        raise CodecError(
            f"codec {cls.name!r} has no option {', '.join(map(repr, unknown))}; "
            f"accepted options: {', '.join(accepted) or '(none)'}, plus bitrate=KBPS."
        )
