"""`NeuralCodec`: the one base of every transformers-backed codec (Encodec, DAC, Mimi, X-Codec, X-Codec2, NeuCodec,
WavTokenizer, Higgs). A codec module is its metadata plus the few lines that differ.

The base does, once for all of them: the options and their order; weights (`--weights DIR` or the cache, checked
against the digests recorded at fetch time, the missing-weights error naming `bench weights fetch NAME`, folders from
`bench weights random` labelled random), the random models (`pretrained=False`, seeded), the weights digest of the
fingerprint, device moves; `encode(wav, sample_rate=None, lengths=None)` (the one signature of every codec: input
checked, resampled when given at another rate, a zero-padded batch coded item by item, the bitrate measured from the
codes and codebook sizes), `decode` (trimmed or zero-padded to the input length), `embed`; `bench weights fetch`,
`list` and `random` for its checkpoints. The nearest operating point and its message come from `bench.load_codec`.

A codec module supplies (class attributes and hooks):

    name, code_version, licence, paper         metadata (the registry in bench/codecs/__init__.py repeats it for listing)
    checkpoints, default_checkpoint            its released checkpoints (`Checkpoint`: cache key, hub repository, pins)
    variant_option                             the option that picks a checkpoint ("sample_rate", "variant"; None: one)
    weight_suffixes, random_layout             original files it maps (".th"); the layout `bench weights random` writes
    operating_points()                         read from the released config, never hard-coded
    __init__                                   checks its point options, then `self._setup(...)`
    config_for(key, tiny), _random_model(...)  the released config of a checkpoint; a random model of it
    _port_class(), _load_original(path)        the transformers class; the authors' own file (where mapped)
    _configure(config) -> Rates                what the loaded model's config says (rates, codebooks), checked
    _encode(x) -> codes, _decode(enc), _embedding(codes)    the model calls

Shapes: audio float32 `[B, C, T]` at `meta.sample_rate`; codes int64 `[B, K, N]`; embeddings float32 `[B, N, D]`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from bench.codecs import weights as W
from bench.codecs.base import Codec, CodecError, CodecMeta, Encoded
from bench.codecs.digests import files_digest
from bench.codecs.hub_pins import HubPin

log = logging.getLogger(__name__)


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
    """Bits per second of a batch of code streams `[B, K, N]` covering `seconds` of audio per item: every code
    costs `bits_per_code` (log2 of its codebook size), plus `side_bits` per item (Encodec 48 kHz's scales)."""
    b, k, n = codes.shape
    if seconds <= 0:
        raise CodecError("cannot compute a bitrate for empty audio")
    return (k * n * bits_per_code + side_bits) / seconds


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """One released checkpoint in the transformers layout (config.json + model.safetensors).

    key: its cache folder `weights_dir(codec, key)` and the name `--variant` takes; repo/revision/files: what `bench
    weights fetch` downloads and the sha256 of each file (None: not known here, the fetch then needs
    --trust-unpinned); source: where they were read; gated: the hub asks users to accept terms (`hf auth login`)."""

    key: str
    repo: str
    revision: str | None = None
    files: tuple[tuple[str, str | None], ...] = (("config.json", None), ("model.safetensors", None))
    source: str = ""
    gated: bool = False

    def pin(self) -> HubPin:
        return HubPin(self.repo, self.revision, dict(self.files), self.source)


@dataclasses.dataclass(frozen=True)
class Rates:
    """What a loaded config says of one operating point: sample rate (Hz), channels, code frames per second,
    entries of each of the K codebooks sent, and the nominal kbps (None: K x bits x frame rate)."""

    sample_rate: int
    frame_rate: float
    codebook_sizes: tuple[int, ...]
    channels: int = 1
    kbps: float | None = None

    @property
    def frame_bits(self) -> float:
        return sum(math.log2(s) for s in self.codebook_sizes)


class NeuralCodec(Codec):
    """A transformers codec at one operating point of one checkpoint (see the module docstring for the hooks)."""

    licence: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    checkpoints: ClassVar[dict[str, Checkpoint]] = {}
    default_checkpoint: ClassVar[str] = ""
    variant_option: ClassVar[str | None] = None
    weight_suffixes: ClassVar[tuple[str, ...]] = ()
    random_layout: ClassVar[str] = "hf"  # "original": `bench weights random` writes the authors' layout
    model: Any
    device: str
    checkpoint: Checkpoint

    # -- checkpoints --------------------------------------------------------------------------------

    @classmethod
    def _checkpoint_key(cls, name: Any) -> str:
        """A user's spelling of a checkpoint (a `variant_option` value) -> its key; codecs map their own."""
        return str(name).lower()

    @classmethod
    def _choices(cls) -> str:
        return ", ".join(cls.checkpoints)

    @classmethod
    def checkpoint_for(cls, name: Any = None) -> Checkpoint:
        """The checkpoint `name` names (None: the default); a CodecError listing the choices otherwise."""
        try:
            key = cls._checkpoint_key(cls.default_checkpoint if name is None else name)
        except ValueError:
            key = None
        if key not in cls.checkpoints:
            what = cls.variant_option or "variant"
            raise CodecError(f"{cls.name} has no {what}={name!r}; choose one of {cls._choices()}")
        return cls.checkpoints[key]

    @classmethod
    def config_for(cls, key: str, tiny: bool = False):
        """The released transformers config of checkpoint `key` (`tiny`: the narrow test configuration)."""
        raise NotImplementedError

    @classmethod
    def _port_class(cls):
        raise NotImplementedError

    @classmethod
    def _random_model(cls, key: str, tiny: bool, seed: int):
        """A random-init model of checkpoint `key`, built under `torch.manual_seed(seed)` (see `random_model`)."""
        return cls._port_class()(cls.config_for(key, tiny))

    @classmethod
    def random_model(cls, key: str, tiny: bool = False, seed: int = 0):
        """The random model `pretrained=False` runs and `bench weights random` saves (the global RNG untouched)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = cls._random_model(key, tiny, seed)
        return model.eval()

    # -- construction -------------------------------------------------------------------------------

    def _setup(self, variant: Any, point: dict[str, Any], weights: str | Path | None, device: str, pretrained: bool,
               tiny: bool, seed: int, **shown: Any) -> None:
        """The common constructor: options (point, random, tiny, `shown`, weights, device), the model from weights
        (found, checked, loaded) or random from `seed`, then `_configure` on its config, the meta and the device."""
        self.checkpoint = self.checkpoint_for(variant)
        if tiny and pretrained and weights is None:
            pretrained = False
        self.options = dict(point)
        if not pretrained:
            self.options.update(pretrained=False, seed=seed)
        if tiny:
            self.options["tiny"] = True
        self.options.update(shown)
        if weights is not None:
            self.options["weights"] = str(weights)
        self.options["device"] = device
        if pretrained:
            found = self._resolve_weights(weights)
            self.model = self._load(found).eval()
            self._weight_files, self._random_tag, random = found.files, "", W.is_random(found.path)
        else:
            self.model = self.random_model(self.checkpoint.key, tiny, seed)
            self._weight_files, random = [], True
            self._random_tag = f"{self.name}/{self.checkpoint.key}/random/tiny={tiny}/seed={seed}"
        self._digest: str | None = None
        self.rates = self._configure(self.model.config)
        self.frame_bits = self.rates.frame_bits
        self.nominal_kbps = (self.rates.kbps if self.rates.kbps is not None
                             else round(self.frame_bits * self.rates.frame_rate / 1000, 6))
        self.meta = CodecMeta(self.name, self.rates.sample_rate, self.rates.channels, self._meta_points(),
                              self.rates.frame_rate, True, self.licence, self.paper, random_weights=random,
                              codebook_sizes=self.rates.codebook_sizes)
        self.device = "cpu"
        if device != "cpu":
            self.to(device)

    def _meta_points(self) -> tuple[float, ...]:
        """The nominal kbps of this checkpoint's operating points (all of them for single-checkpoint codecs)."""
        opt = self.variant_option
        return tuple(p.kbps for p in self.operating_points()
                     if opt is None or opt not in p.options or p.options[opt] == self.options.get(opt))

    def _configure(self, config) -> Rates:
        """Read (and check) the loaded model's config: set what encode/decode need (hop, ...), return its Rates."""
        raise NotImplementedError

    @staticmethod
    def _config_rate(config) -> int:
        for attr in ("input_sampling_rate", "sampling_rate", "sample_rate"):
            if getattr(config, attr, None):
                return int(getattr(config, attr))
        raise CodecError("the model's config names no sample rate")

    # -- weights ------------------------------------------------------------------------------------

    @classmethod
    def find_weights(cls, variant: Any = None, weights: str | Path | None = None) -> W.Found | None:
        """The weights of checkpoint `variant` in `weights` (a Hugging Face folder, a folder holding `<key>/`, a
        model.safetensors file or an original file with one of `weight_suffixes`), else in the cache; None if absent."""
        key = cls.checkpoint_for(variant).key
        where = Path(weights).expanduser() if weights is not None else W.weights_dir(cls.name, key)
        if where.is_file() and where.name == "model.safetensors" and (where.parent / "config.json").is_file():
            return W.Found("hf", where.parent)  # a model.safetensors file names its Hugging Face folder
        return W.find_weights(where, cls.name, key, cls.weight_suffixes)

    @classmethod
    def weights_available(cls, variant: Any = None) -> bool:
        """True when checkpoint `variant`'s (default: the default one's) weights are in the cache."""
        return cls.find_weights(variant) is not None

    def _resolve_weights(self, weights: str | Path | None) -> W.Found:
        key = self.checkpoint.key
        found = self.find_weights(key, weights)
        if found is None:
            raise W.missing_weights(self.name, weights if weights is not None else W.weights_dir(self.name, key), key)
        W.verify_found(found)  # the sha256 of each file, against its pin or what the fetch recorded
        return found

    def _load(self, found: W.Found):
        """The model from a Hugging Face folder (checked to hold this checkpoint's sample rate) or an original file."""
        if found.kind != "hf":
            return self._load_original(found.path)
        model = self._port_class().from_pretrained(str(found.path), local_files_only=True)
        got, want = self._config_rate(model.config), self._config_rate(self.config_for(self.checkpoint.key))
        if got != want:
            hint = f"; pass {self.variant_option}={got}" if self.variant_option == "sample_rate" else ""
            raise CodecError(f"{found.path} holds a {got} Hz model, not the {want} Hz {self.name} "
                             f"{self.checkpoint.key}: these are not its weights{hint}")
        return model

    def _load_original(self, path: Path):
        raise CodecError(f"{path}: {self.name} loads a Hugging Face folder (config.json + model.safetensors); no "
                         "original layout is mapped for it")

    def weights_digest(self) -> str:
        """sha256 over the weight files' names and contents (each file hashed once per version on disk,
        `bench.codecs.digests`); random models hash their recipe."""
        if self._digest is None:
            self._digest = (files_digest(self._weight_files) if self._weight_files
                            else hashlib.sha256(self._random_tag.encode()).hexdigest())
        return self._digest

    def to(self, device: str) -> "NeuralCodec":
        self.device = str(device)
        self.model.to(self.device)
        return self

    # -- the work -----------------------------------------------------------------------------------

    @torch.inference_mode()
    def encode(self, wav: Any, sample_rate: int | None = None, lengths: list[int] | None = None) -> Encoded:
        """wav float32 `[B, C, T]` at `meta.sample_rate` (or at `sample_rate`: resampled first) -> Encoded, codes
        `[B, K, N]`, bitrate measured from them. `lengths`: where each item of a zero-padded batch ends; such items
        are coded one by one as if alone (codes padded with -1, `frames` and `item_bitrates` per item)."""
        x = self.check_input(wav, lengths)
        sr = self.meta.sample_rate
        if sample_rate is not None and int(sample_rate) != sr:
            x, lengths = _resampled(x, int(sample_rate), sr, lengths)
        b, _, t = x.shape
        if lengths is not None and any(int(n) < t for n in lengths):
            return self._encode_items(x, [int(n) for n in lengths])
        out = self._encode(x)
        codes, extra, side_bits = out if isinstance(out, tuple) else (out, {}, 0.0)
        codes = codes.to("cpu", torch.int64)
        if t == 0:
            raise CodecError("cannot compute a bitrate for empty audio")
        bitrate = (codes.shape[-1] * self.frame_bits + side_bits) / (t / sr)
        return Encoded(codes=codes, bitrate=bitrate, lengths=[t] * b, sample_rate=sr, extra=extra)

    def _encode_items(self, x: torch.Tensor, lengths: list[int]) -> Encoded:
        parts = [self.encode(x[i:i + 1, :, :n]) for i, n in enumerate(lengths)]
        frames = [p.codes.shape[-1] for p in parts]
        codes = torch.full((len(parts), parts[0].codes.shape[1], max(frames)), -1, dtype=torch.int64)
        for i, p in enumerate(parts):
            codes[i, :, : frames[i]] = p.codes[0]
        bitrate = sum(p.bitrate * n for p, n in zip(parts, lengths)) / sum(lengths)  # all bits / all seconds
        return Encoded(codes=codes, bitrate=bitrate, lengths=lengths, sample_rate=self.meta.sample_rate,
                       extra={"items": [p.extra for p in parts]}, frames=frames,
                       item_bitrates=[p.bitrate for p in parts])

    @torch.inference_mode()
    def decode(self, enc: Encoded) -> torch.Tensor:
        """Encoded -> float32 `[B, C, T]` at `meta.sample_rate`, T = the encoded input length (the decoder's
        output trimmed, or zero-padded at the end); items of a batch coded one by one are decoded one by one."""
        t = max(enc.lengths) if enc.lengths else None
        if enc.frames is not None:
            items = [self.decode(Encoded(enc.item_codes(i), enc.item_bitrates[i] if enc.item_bitrates else enc.bitrate,
                                         [enc.lengths[i]], enc.sample_rate, extra=enc.extra["items"][i]))
                     for i in range(enc.codes.shape[0])]
            return torch.cat([F.pad(y, (0, t - y.shape[-1])) for y in items])
        y = self._decode(enc).float().cpu()
        y = y if y.ndim == 3 else y[:, None]
        t = y.shape[-1] if t is None else t
        return F.pad(y, (0, max(0, t - y.shape[-1])))[..., :t]

    @torch.inference_mode()
    def embed(self, wav: Any) -> torch.Tensor:
        """wav `[B, C, T]` -> float32 `[B, N, D]`: the quantised latent the decoder receives, per code frame."""
        codes = self.encode(wav).codes.to(self.device)
        return self._embedding(codes).float().cpu()

    def _encode(self, x: torch.Tensor):
        """Checked audio `[B, C, T]` (CPU) -> codes `[B, K, N]`, or (codes, extra, side bits per item)."""
        raise NotImplementedError

    def _decode(self, enc: Encoded) -> torch.Tensor:
        """Encoded -> audio `[B, C, T']` (any device; the base trims it)."""
        raise NotImplementedError

    def _embedding(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes `[B, K, N]` on the model's device -> the decoder's input `[B, N, D]`."""
        raise NotImplementedError

    # -- bench weights fetch / list / random ----------------------------------------------------------

    @classmethod
    def _source(cls, ck: Checkpoint, source: str):
        """What `fetch(source=...)` downloads for checkpoint `ck`: (HubPin, files) or a URL `Release`."""
        if source == "hub":
            pin = ck.pin()
            return pin, list(pin.files)
        raise ValueError(f"{cls.name} has no {source!r} release to fetch; use source='hub'")

    @classmethod
    def fetch(cls, dest: Path | None = None, variant: str | None = None, trust_unpinned: bool = False,
              source: str = "hub") -> Path:
        """`bench weights fetch NAME`: each checkpoint (or `variant`'s) into `dest/<key>/` (default: the cache), every
        file checked against its pinned sha256; refused before any download where a pin is missing, unless
        trust_unpinned (then recorded). source="original": the authors' release where the codec names one."""
        from bench.codecs.fetching import fetch_sources

        chosen = [cls.checkpoint_for(variant)] if variant is not None else list(cls.checkpoints.values())
        root = Path(dest) if dest else W.weights_dir(cls.name)
        for ck in chosen:
            if ck.gated:
                log.info("%s is gated on the hub: accept its terms there and run `hf auth login` first", ck.repo)
        fetch_sources([(*cls._source(ck, source), root / ck.key) for ck in chosen], trust_unpinned)
        return root

    @classmethod
    def list_weights(cls) -> list[dict[str, Any]]:
        """Rows {codec, variant, where, present} for `bench weights list` (the cache only)."""
        rows = []
        for key in cls.checkpoints:
            where = W.weights_dir(cls.name, key)
            found = W.find_weights(where, cls.name, key, cls.weight_suffixes)
            rows.append({"codec": cls.name, "variant": key, "where": found.path if found else where,
                         "present": found is not None})
        return rows

    @classmethod
    def write_random(cls, dest: str | Path, variant: Any = None, tiny: bool = False, seed: int = 0,
                     layout: str | None = None) -> Path:
        """`bench weights random NAME --dest D`: the random model of checkpoint `variant` saved as the release is laid
        out (layout "hf": D/<key>/config.json + model.safetensors; "original": the authors' file), D marked random."""
        key = cls.checkpoint_for(variant).key
        model = cls.random_model(key, tiny, seed)
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        W.mark_random(dest)
        if (layout or cls.random_layout) == "original":
            return cls._save_original(model, dest, key)
        folder = dest / key
        folder.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(str(folder))
        return folder

    @classmethod
    def _save_original(cls, model, dest: Path, key: str) -> Path:
        raise ValueError(f"{cls.name} writes random weights in the Hugging Face layout only (layout='hf')")


def _resampled(x: torch.Tensor, rate: int, sr: int, lengths: list[int] | None) -> tuple[torch.Tensor, list[int] | None]:
    """A batch `[B, C, T]` at `rate` -> at `sr` (soxr, `bench.audio.resample`), each item's own samples resampled."""
    from bench import audio as au

    spans = lengths if lengths is not None else [x.shape[-1]] * x.shape[0]
    items = [au.resample(x[i, :, : int(n)].numpy(), rate, sr) for i, n in enumerate(spans)]
    out = torch.zeros(x.shape[0], x.shape[1], max(it.shape[-1] for it in items))
    for i, it in enumerate(items):
        out[i, :, : it.shape[-1]] = torch.from_numpy(it)
    return out, ([it.shape[-1] for it in items] if lengths is not None else None)
