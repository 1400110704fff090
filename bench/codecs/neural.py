"""Plumbing shared by the transformers-based codecs (Encodec, DAC): variants, weights, chunking, bitrate."""

from __future__ import annotations

import dataclasses

import hashlib
from pathlib import Path
from typing import Any, ClassVar

import torch

from bench.codecs import weights as W
from bench.codecs.base import Codec, CodecError, OperatingPoint
from bench.codecs.digests import files_digest


def plan_chunks(n_frames: int, chunk_frames: int, context_frames: int) -> list[tuple[int, int, int, int]]:
    """Chunks of a sequence of `n_frames` frames: (keep_start, keep_end, window_start, window_end).

    Frames [keep_start, keep_end) are taken from a pass over [window_start, window_end), which adds up to
    `context_frames` either side (clipped at the ends). One chunk when n_frames <= chunk_frames.
    """
    if n_frames <= chunk_frames:
        return [(0, n_frames, 0, n_frames)]
    out = []
    for a in range(0, n_frames, chunk_frames):
        b = min(a + chunk_frames, n_frames)
        out.append((a, b, max(0, a - context_frames), min(n_frames, b + context_frames)))
    return out


def code_bitrate(codes: torch.Tensor, bits_per_code: float, seconds: float, side_bits: float = 0.0) -> float:
    """Bits per second of a batch of code streams `[B, K, N]` covering `seconds` of audio per item.

    Every code costs `bits_per_code` (log2 of its codebook size); `side_bits` is any further side
    information per item (e.g. Encodec 48 kHz's 32-bit scale per segment).
    """
    b, k, n = codes.shape
    if seconds <= 0:
        raise CodecError("cannot compute a bitrate for empty audio")
    return (k * n * bits_per_code + side_bits) / seconds


class NeuralCodec(Codec):
    """Common plumbing of the transformers-based codecs: variants, weights, device, input checks."""

    weight_suffixes: ClassVar[tuple[str, ...]] = ()
    default_sample_rate: ClassVar[int] = 0
    model: Any
    device: str

    # subclasses: variant table keyed by sample rate, each with `.key` ("24khz") and `.sample_rate`
    variants: ClassVar[dict[int, Any]] = {}

    @classmethod
    def variant_for(cls, sample_rate: Any) -> Any:
        """24000, "24000", "24khz", 24 -> the variant; a clear error naming the choices otherwise."""
        try:
            key = W.normalise_variant(cls.name, sample_rate)
        except ValueError:
            key = None
        for v in cls.variants.values():
            if v.key == key:
                return v
        choices = ", ".join(str(sr) for sr in cls.variants)
        raise CodecError(f"{cls.name} has no sample_rate={sample_rate!r}; choose one of {choices}")

    @classmethod
    def nearest_operating_point(cls, kbps: float, options: dict[str, Any] | None = None) -> OperatingPoint:
        options = dict(options or {})
        if "sample_rate" in options:  # compare variants by value, whatever spelling the user gave
            options["sample_rate"] = cls.variant_for(options["sample_rate"]).sample_rate
        return super().nearest_operating_point(kbps, options)

    @classmethod
    def find_weights(cls, sample_rate: int | None = None, weights: str | Path | None = None) -> W.Found | None:
        variant = cls.variant_for(sample_rate or cls.default_sample_rate)
        where = weights if weights is not None else W.weights_dir(cls.name, variant.key)
        return W.find_weights(where, cls.name, variant.key, cls.weight_suffixes)

    @classmethod
    def weights_available(cls, sample_rate: int | None = None) -> bool:
        """True when the default variant's (or `sample_rate`'s) weights are in the cache."""
        return cls.find_weights(sample_rate) is not None

    def _resolve_weights(self, weights: str | Path | None) -> W.Found:
        found = self.find_weights(self.variant.sample_rate, weights)
        if found is None:
            looked = weights if weights is not None else W.weights_dir(self.name, self.variant.key)
            raise W.missing_weights(self.name, looked, self.variant.key)
        W.verify_found(found)  # the sha256 of each file, against its pin or what the fetch recorded
        if W.is_random(found.path):  # from `bench weights random`: label every result
            self.meta = dataclasses.replace(self.meta, random_weights=True)
        return found

    def _load(self, found: W.Found):
        """The model from a Hugging Face folder (checked to be this variant) or the authors' original file."""
        if found.kind == "hf":
            model = self._port_class().from_pretrained(str(found.path), local_files_only=True)
            if model.config.sampling_rate != self.variant.sample_rate:
                raise CodecError(f"{found.path} holds the {model.config.sampling_rate} Hz {self.name}, not "
                                 f"{self.variant.sample_rate} Hz; pass sample_rate={model.config.sampling_rate}")
            return model
        return self._load_original(found.path, self.variant)

    def _init_digest(self, found: W.Found | None, random_tag: str) -> None:
        self._weight_files = found.files if found else []
        self._random_tag = random_tag
        self._digest: str | None = None

    def weights_digest(self) -> str:
        """sha256 over the weight files' names and contents (each file hashed once per version on disk,
        `bench.codecs.digests`); random models hash their recipe."""
        if self._digest is None:
            if self._weight_files:
                self._digest = files_digest(self._weight_files)
            else:
                self._digest = hashlib.sha256(self._random_tag.encode()).hexdigest()
        return self._digest

    def to(self, device: str) -> "NeuralCodec":
        self.device = str(device)
        self.model.to(self.device)
        return self

    def _check_input(self, wav: Any) -> torch.Tensor:
        """Any array `[B, C, T]` -> float32 CPU tensor (`Codec.check_input`: errors that say what to pass)."""
        return self.check_input(wav)


# -- checkpoints that exist only in the transformers layout (one hub repository per checkpoint) ----------------

@dataclasses.dataclass(frozen=True)
class HubCheckpoint:
    """One released checkpoint in the transformers layout (config.json + model.safetensors).

    key: its cache folder, `weights_dir(codec, key)`; repo/revision/files: what `bench weights fetch` downloads
    (a digest or revision of None is not known here: the fetch then needs --trust-unpinned, see weights.py);
    gated: the hub repository asks users to accept its terms (fetch needs `hf auth login` first)."""

    key: str
    repo: str
    revision: str | None = None
    files: tuple[tuple[str, str | None], ...] = (("config.json", None), ("model.safetensors", None))
    source: str = ""
    gated: bool = False

    def pin(self) -> "W.HubPin":
        return W.HubPin(self.repo, self.revision, dict(self.files), self.source)


def resolve_checkpoint(codec: Codec, key: str, weights: str | Path | None,
                       suffixes: tuple[str, ...] = ()) -> W.Found:
    """The weights of checkpoint `key` of `codec`: `weights` (a Hugging Face folder, a folder holding `<key>/`, or an
    original file with one of `suffixes`), else the cache. Checks recorded digests; a folder from `bench weights
    random` marks `codec.meta` random. Raises the missing-weights error naming `bench weights fetch`."""
    where = weights if weights is not None else W.weights_dir(codec.name, key)
    found = W.find_weights(where, codec.name, key, suffixes)
    if found is None:
        raise W.missing_weights(codec.name, where, key)
    W.verify_found(found)
    if W.is_random(found.path):
        codec.meta = dataclasses.replace(codec.meta, random_weights=True)
    return found


def fetch_checkpoints(codec: str, checkpoints: dict[str, HubCheckpoint], dest: Path | None, variant: str | None,
                      trust_unpinned: bool) -> Path:
    """`bench weights fetch CODEC`: each checkpoint (or the one named `variant`) into `dest/<key>/` (default: the
    cache), every file checked against its pinned sha256 (weights.py `_fetch_hub_files`)."""
    if variant is not None and variant not in checkpoints:
        raise ValueError(f"{codec} has no checkpoint {variant!r}; choose one of {', '.join(checkpoints)}")
    chosen = [checkpoints[variant]] if variant else list(checkpoints.values())
    root = Path(dest) if dest else W.weights_dir(codec)
    for ck in chosen:
        if ck.gated:
            import logging

            logging.getLogger(__name__).info("%s is gated on the hub: accept its terms there and run `hf auth login` "
                                             "first", ck.repo)
        W._fetch_hub_files(ck.pin(), [name for name, _ in ck.files], root / ck.key, trust_unpinned)
    return root


def save_hf_random(model, dest: str | Path, key: str) -> Path:
    """A random-init model in the transformers layout under `dest/<key>/`, the folder marked random."""
    folder = Path(dest) / key
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    W.mark_random(dest)
    return folder


def list_checkpoints(codec: str, checkpoints: dict[str, HubCheckpoint], suffixes: tuple[str, ...] = ()) -> list[dict]:
    """`bench weights list` rows {codec, variant, where, present} for each checkpoint's cache folder."""
    rows = []
    for key in checkpoints:
        where = W.weights_dir(codec, key)
        found = W.find_weights(where, codec, key, suffixes)
        rows.append({"codec": codec, "variant": key, "where": found.path if found else where,
                     "present": found is not None})
    return rows
