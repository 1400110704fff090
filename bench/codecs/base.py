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

if TYPE_CHECKING:  # torch is imported by implementations, never at registry/listing time
    import torch

log = logging.getLogger(__name__)


class CodecError(ValueError):
    """Bad codec options or input; the message says what to do."""


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
    code_version: ClassVar[str] = "1"  # bump when a change alters a codec's output
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

    def encode(self, wav: "torch.Tensor") -> Encoded:
        """wav: float32 `[B, C, T]` at `self.meta.sample_rate` -> Encoded."""
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
        return self

    # -- identity -------------------------------------------------------------------------------

    def weights_digest(self) -> str:
        """A digest of the weights in use ("none" for weight-free codecs)."""
        return "none"

    def fingerprint(self) -> str:
        """Hash of name, options, weights and code version: the key of every cached output."""
        from bench import __version__

        blob = json.dumps(
            {
                "name": self.name,
                "options": {k: v for k, v in sorted(self.options.items()) if k not in _RUNTIME_OPTIONS},
                "weights": self.weights_digest(),
                "code": f"{__version__}/{self.code_version}",
            },
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        from bench.registry import format_spec

        shown = {k: v for k, v in self.options.items() if k not in _RUNTIME_OPTIONS}
        return format_spec(self.name, shown)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.label}>"


# Options that change where or how fast a codec runs but never its output.
_RUNTIME_OPTIONS = {"device", "weights", "batch_size"}


def accepted_options(cls: type) -> list[str]:
    params = inspect.signature(cls.__init__).parameters
    return [p for p in params if p not in ("self", "args", "kwargs")]


def check_options(cls: type, options: dict[str, Any]) -> None:
    """Raise a CodecError naming the accepted options when one is unknown."""
    accepted = accepted_options(cls)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(cls.__init__).parameters.values())
    unknown = [k for k in options if k not in accepted]
    if unknown and not takes_any:
        raise CodecError(
            f"codec {cls.name!r} has no option {', '.join(map(repr, unknown))}; "
            f"accepted options: {', '.join(accepted) or '(none)'}, plus bitrate=KBPS."
        )
