"""Speaker similarity: cosine of WavLM-Base-Plus-SV speaker embeddings of reference and reconstruction.

Model: `microsoft/wavlm-base-plus-sv` (WavLM Base+ fine-tuned on VoxCeleb1 for speaker verification, an
x-vector head over the transformer: Chen et al., "WavLM: large-scale self-supervised pre-training for full stack
speech processing", 2022) through transformers' `WavLMForXVector` and its `Wav2Vec2FeatureExtractor`, used as
the model card does: both signals (16 kHz mono) go through the feature extractor as one padded batch, the
model's `embeddings` are compared by cosine similarity. 1 is the same voice print; the model card's
same-speaker threshold is 0.86. Higher is better.

Weights are handled like a codec's: never fetched at import or construction. `bench weights fetch spk-sim`
downloads config.json, preprocessor_config.json and pytorch_model.bin from the hub into
`<bench home>/weights/spk-sim/` (checked files, see bench.codecs.weights: no digest is pinned here, so the fetch
asks for --trust-unpinned and records the digests it saw); `spk-sim:weights=DIR` reads any directory in that
layout (offline). Without weights, `weights_available()` is False (the default run leaves the metric out) and
scoring raises one WeightsMissingError naming the fetch command. The weight files' content digest, the
transformers and torch versions and the device class are the metric's `backend()`, so scores from other
weights or another device never share a key.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from bench.metrics.base import Metric, MetricError, MetricMeta, as_numpy, check_pair, device_type, package_version

log = logging.getLogger(__name__)

RATE = 16000
NAME = "spk-sim"
HUB_REPO = "microsoft/wavlm-base-plus-sv"
CONFIG_FILES = ("config.json", "preprocessor_config.json")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # either; safetensors preferred when both are there
FETCH_FILES = ("config.json", "preprocessor_config.json", "pytorch_model.bin")

_MODELS: dict[tuple[str, str], tuple[Any, Any]] = {}  # (model dir, device) -> (feature extractor, model)


def default_dir() -> Path:
    """`<bench home>/weights/spk-sim`: where `bench weights fetch spk-sim` puts the model."""
    from bench.codecs.weights import weights_dir

    return weights_dir(NAME)


def model_files(folder: str | Path) -> list[Path] | None:
    """The files a model folder loads from (configs + one weights file), or None if it lacks any."""
    folder = Path(folder).expanduser()
    if not all((folder / f).is_file() for f in CONFIG_FILES):
        return None
    weights = [folder / f for f in WEIGHT_FILES if (folder / f).is_file()]
    return [folder / f for f in CONFIG_FILES] + weights[:1] if weights else None


def missing_weights(looked_in: Path):
    """The WeightsMissingError (the codecs' one, from the weights cache) naming the fetch command."""
    from bench.codecs.weights import WeightsMissingError

    return WeightsMissingError(
        f"{NAME}: no WavLM-Base-Plus-SV weights in {looked_in} (config.json, preprocessor_config.json and "
        f"model.safetensors or pytorch_model.bin). Download them with `bench weights fetch {NAME} --trust-unpinned` "
        f"(needs a network), or point to a local copy of {HUB_REPO} with `--metric {NAME}:weights=DIR`.")


def fetch_weights(dest: Path | None = None, variant: str | None = None, trust_unpinned: bool = False) -> Path:
    """`bench weights fetch spk-sim`: the model's files from the hub into `dest` (default: `default_dir()`),
    each hashed before it is installed. No digest is pinned for this repository, so without `trust_unpinned`
    this refuses before downloading anything (UnpinnedError naming the flag)."""
    from bench.codecs import weights

    if variant not in (None, "", HUB_REPO.split("/")[-1]):
        raise ValueError(f"{NAME} has one variant, {HUB_REPO.split('/')[-1]}; leave --variant out")
    root = Path(dest).expanduser() if dest else default_dir()
    pin = weights.HubPin(HUB_REPO, None, {f: None for f in FETCH_FILES})
    weights._fetch_hub_files(pin, list(FETCH_FILES), root, trust_unpinned)
    return root


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors `[D]` (float64), in [-1, 1]; MetricError for a zero vector."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise MetricError(f"{NAME}: embeddings of different sizes {a.shape} and {b.shape}")
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if not (na > 0 and nb > 0 and np.isfinite(na) and np.isfinite(nb)):
        raise MetricError(f"{NAME}: a speaker embedding is zero or not finite; no similarity is defined")
    return float(np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0))


def load_model(folder: Path, device: str = "cpu"):
    """(feature extractor, WavLMForXVector in eval mode on `device`) from a model folder, once per process."""
    key = (str(Path(folder).resolve()), str(device))
    if key in _MODELS:
        return _MODELS[key]
    try:
        from transformers import Wav2Vec2FeatureExtractor, WavLMForXVector
    except ImportError as err:
        raise MetricError(f"{NAME} needs transformers with WavLM ({err}): pip install 'transformers>=4.45'") from None
    from bench.codecs import weights

    files = model_files(folder)
    if files is None:
        raise missing_weights(Path(folder))
    weights.verify_files(files)  # against the digests `bench weights fetch` recorded, where it made the folder
    log.info("loading %s from %s on %s", HUB_REPO, folder, device)
    extractor = Wav2Vec2FeatureExtractor.from_pretrained(str(folder))
    model = WavLMForXVector.from_pretrained(str(folder)).to(device).eval()
    _MODELS[key] = (extractor, model)
    return _MODELS[key]


def embeddings(extractor, model, signals: list[np.ndarray]) -> np.ndarray:
    """`[N, D]` x-vectors of mono float32 16 kHz signals, batched and padded as the model card does."""
    import torch

    device = next(model.parameters()).device
    inputs = extractor(signals, sampling_rate=RATE, padding=True, return_tensors="pt")
    inputs = {k: v.to(device) for k, v in inputs.items()}
    with torch.inference_mode():
        out = model(**inputs).embeddings
    return out.float().cpu().numpy()


class SpeakerSimilarity(Metric):
    """Cosine similarity of WavLM-Base-Plus-SV embeddings. score(ref, rec `[C, T]`, sample_rate, item) ->
    {"spk-sim": cosine}. Options: weights (a model folder; default the cache), device (cpu, cuda, ...).
    Both change only where the numbers come from: the weights' content digest and the device class are in
    backend(), not in the display identity."""

    name: ClassVar[str] = NAME
    code_version: ClassVar[str] = "1"
    RUNTIME_OPTIONS: ClassVar[tuple[str, ...]] = ("weights", "device")

    def __init__(self, weights: str | None = None, device: str = "cpu"):
        options: dict[str, Any] = {}
        if weights:
            options["weights"] = str(weights)
        if str(device) != "cpu":
            options["device"] = str(device)
        super().__init__(**options)
        self.folder = Path(weights).expanduser() if weights else default_dir()
        self.device = str(device)
        self._backend_info: dict[str, Any] | None = None
        self.meta = MetricMeta(
            name=NAME, sample_rate=RATE, higher_is_better=True, domains=("speech",), unit="cosine",
            definition=(f"cosine similarity of {HUB_REPO} x-vectors (transformers {package_version('transformers')} "
                        "WavLMForXVector) of reference and reconstruction at 16 kHz"))

    def weights_available(self) -> bool:
        """Whether the model folder holds a loadable model (the default run leaves the metric out otherwise)."""
        return model_files(self.folder) is not None

    def require_weights(self) -> list[Path]:
        """The model's files; WeightsMissingError naming `bench weights fetch spk-sim` if they are absent."""
        files = model_files(self.folder)
        if files is None:
            raise missing_weights(self.folder)
        return files

    def backend(self) -> dict[str, Any]:
        """The model (hub repository, digest of its files, whether they are random test weights), transformers
        and torch versions and the device class."""
        if self._backend_info is None:
            from bench.codecs.digests import files_digest
            from bench.codecs.weights import is_random

            files = model_files(self.folder)
            self._backend_info = {
                "model": HUB_REPO, "model_files": files_digest(files) if files else "missing",
                "random_weights": bool(files) and is_random(self.folder),
                "transformers": package_version("transformers"), "torch": package_version("torch"),
                "device": device_type(self.device)}
        return self._backend_info

    def score(self, ref, rec, sample_rate: int, item=None) -> dict[str, float]:
        from bench import audio as au

        r = as_numpy(ref)
        d = as_numpy(rec)
        check_pair(r, d, self.name)
        pair = np.concatenate([r.mean(axis=0, keepdims=True), d.mean(axis=0, keepdims=True)]).astype(np.float32)
        if sample_rate != RATE:
            pair = au.resample(pair, sample_rate, RATE)
        for x, what in ((pair[:1], "reference"), (pair[1:], "reconstruction")):
            try:
                au.check(x, RATE, name=what)
            except au.AudioError as err:
                raise MetricError(f"{NAME}: {err}; a speaker embedding needs a signal") from None
        self.require_weights()
        extractor, model = load_model(self.folder, self.device)
        emb = embeddings(extractor, model, [pair[0], pair[1]])
        return {NAME: cosine(emb[0], emb[1])}
