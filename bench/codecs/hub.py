"""The base of transformers codecs whose variants are named checkpoints (Mimi, X-Codec, X-Codec2).

A variant is one Hugging Face repository (`HubVariant`: cache folder key, repository, pinned revision and sha256
where known). Weights come from `bench weights fetch NAME` (pinned, checked), from `--weights DIR` (a Hugging Face
folder: config.json + model.safetensors, or the authors' original file where a codec maps it), or are random
(`pretrained=False`; `bench weights random NAME --dest D` writes them in the released layout, marked random).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import torch

from bench.codecs import weights as W
from bench.codecs.base import CodecError
from bench.codecs.neural import NeuralCodec


@dataclasses.dataclass(frozen=True)
class HubVariant:
    """One released checkpoint: the cache folder name (`key`), its Hugging Face repository, the commit it is pinned
    to (None: not known here; `--trust-unpinned` records the one fetched) and the sha256 of its files (None where no
    digest could be read)."""

    key: str
    repo: str
    revision: str | None = None
    sha256: tuple[tuple[str, str | None], ...] = (("config.json", None), ("model.safetensors", None))
    source: str = ""  # where the repository id, revision and digests were read


class HubCodec(NeuralCodec):
    """A transformers codec whose variants are named (`variants`: key -> HubVariant), loaded from a Hugging Face
    folder (config.json + model.safetensors) or, where a subclass maps it (`_load_original`), the authors' file.

    Subclasses set `variants`, `default_variant`, `weight_suffixes` and implement `_port_class`, `_random_model` and
    `_config_rate` (the sample rate a loaded config declares)."""

    variants: ClassVar[dict[str, HubVariant]] = {}  # type: ignore[assignment]
    default_variant: ClassVar[str] = ""

    @classmethod
    def variant_for(cls, name: Any = None) -> HubVariant:
        key = str(name if name is not None else cls.default_variant).lower()
        if key not in cls.variants:
            raise CodecError(f"{cls.name} has no variant {name!r}; choose one of {', '.join(cls.variants)}")
        return cls.variants[key]

    @classmethod
    def find_weights(cls, variant: Any = None, weights: str | Path | None = None) -> W.Found | None:
        v = cls.variant_for(variant)
        where = Path(weights).expanduser() if weights is not None else W.weights_dir(cls.name, v.key)
        if where.is_file() and where.name == "model.safetensors" and (where.parent / "config.json").is_file():
            return W.Found("hf", where.parent)  # a model.safetensors file names its Hugging Face folder
        return W.find_weights(where, cls.name, v.key, cls.weight_suffixes)

    @classmethod
    def weights_available(cls, variant: Any = None) -> bool:
        return cls.find_weights(variant) is not None

    def _resolve_weights(self, weights: str | Path | None) -> W.Found:
        found = self.find_weights(self.variant.key, weights)
        if found is None:
            looked = weights if weights is not None else W.weights_dir(self.name, self.variant.key)
            raise W.missing_weights(self.name, looked, self.variant.key)
        W.verify_found(found)  # the sha256 recorded at fetch time, where there is one
        if W.is_random(found.path):  # from `bench weights random`: label every result
            self.meta = dataclasses.replace(self.meta, random_weights=True)
        return found

    def _load(self, found: W.Found):
        if found.kind != "hf":
            return self._load_original(found.path)
        model = self._port_class().from_pretrained(str(found.path), local_files_only=True)
        rate = self._config_rate(model.config)
        if rate != self.meta.sample_rate:
            raise CodecError(f"{found.path} holds a {rate} Hz model, but {self.name} {self.variant.key} runs at "
                             f"{self.meta.sample_rate} Hz; these are not {self.name} {self.variant.key} weights")
        return model

    def _load_original(self, path: Path):
        raise CodecError(f"{path}: {self.name} loads a Hugging Face folder (config.json + model.safetensors); "
                         "no original layout is mapped for it")

    def _build(self, weights: str | Path | None, pretrained: bool, tiny: bool, seed: int) -> None:
        """self.model from weights (pretrained) or random-init from `seed` (tiny: the narrow test configuration)."""
        if pretrained:
            found = self._resolve_weights(weights)
            self.model = self._load(found)
            self._init_digest(found, "")
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                self.model = self._random_model(tiny)
            self._init_digest(None, f"{self.name}/{self.variant.key}/random/tiny={tiny}/seed={seed}")
        self.model.eval()
        self.device = "cpu"

    def _random_model(self, tiny: bool):
        raise NotImplementedError

    @staticmethod
    def _config_rate(config) -> int:
        return int(config.sampling_rate)

    @classmethod
    def fetch(cls, dest: Path | None = None, variant: str | None = None, trust_unpinned: bool = False) -> Path:
        """`bench weights fetch NAME`: each variant's (or `variant`'s) config.json + model.safetensors at the pinned
        revision, checked against the pinned sha256 (refused without pins unless trust_unpinned)."""
        chosen = [cls.variant_for(variant)] if variant else list(cls.variants.values())
        root = Path(dest) if dest else W.weights_dir(cls.name)
        pins = [W.HubPin(v.repo, v.revision, dict(v.sha256), v.source) for v in chosen]
        if not trust_unpinned:  # refuse before anything is downloaded, naming every unpinned file
            missing = [f"{p.repo} {f}" for p in pins for f, d in W._effective(p, list(p.files))[1].items() if d is None]
            if missing:
                raise W.UnpinnedError(W._unpinned_message(missing, None))
        for v, pin in zip(chosen, pins):
            W._fetch_hub_files(pin, list(pin.files), root / v.key, trust_unpinned)
        return root

    @classmethod
    def list_weights(cls) -> list[dict[str, Any]]:
        """Rows {codec, variant, where, present} for `bench weights list`."""
        rows = []
        for v in cls.variants.values():
            where = W.weights_dir(cls.name, v.key)
            found = W.find_weights(where, cls.name, v.key, cls.weight_suffixes)
            rows.append({"codec": cls.name, "variant": v.key, "where": found.path if found else where,
                         "present": found is not None})
        return rows
