"""The shared weights cache: where checkpoints live, how they are found on disk, checked and loaded.

Layout: `bench_home()/weights/<codec>/<variant>/` (`$BENCH_HOME`, default `~/.cache/bench`). A variant
folder holds either a Hugging Face layout (`config.json` + `model.safetensors`) or the authors' original
release file (`encodec_24khz-d7cc33bc.th`, `weights_16khz.pth`, ...). Nothing here imports torch at module
level, and nothing here touches the network: the pins live in `bench.codecs.hub_pins`, the verified downloads
of `bench weights fetch` in `bench.codecs.fetching` (their names are still importable from here: `W.fetch`,
`W.HUB_PINS`, `W.UnpinnedError`, ...).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.codecs.base import WeightsMissingError
from bench.codecs.hub_pins import RELEASES, VARIANTS

log = logging.getLogger(__name__)

MANIFEST = "bench-weights.json"  # written beside fetched files: source and sha256 of each file
HF_FILES = ("config.json", "model.safetensors")
RANDOM_MARKER = "RANDOM_WEIGHTS.txt"  # written by `bench weights random`: results from there are labelled random


class ChecksumError(ValueError):
    """A weight file's sha256 does not match the published or recorded one."""


class CheckpointError(ValueError):
    """A weights file torch will not load: not a checkpoint in the official layout, or damaged."""


# -- places ---------------------------------------------------------------------------------------

def bench_home() -> Path:
    """`$BENCH_HOME`, or `~/.cache/bench`."""
    env = os.environ.get("BENCH_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "bench"


def weights_dir(codec: str, variant: str | None = None) -> Path:
    """The cache folder of one codec (and variant): `bench_home()/weights/<codec>[/<variant>]`."""
    d = bench_home() / "weights" / codec
    return d / variant if variant else d


# -- digests --------------------------------------------------------------------------------------



def mark_random(folder: str | Path) -> None:
    """Leave the marker that makes every result from these weights read "[random weights]"."""
    (Path(folder) / RANDOM_MARKER).write_text(
        "Random-init weights written by `bench weights random`, in the official layout, for wiring tests.\n"
        "Results computed from them say nothing about the codec; reports label them [random weights].\n")


def is_random(path: str | Path) -> bool:
    """Are the weights at `path` (a file or folder) from `bench weights random`? Looks for the marker in the
    folder itself and up to two levels above (the files sit in sub-folders of the folder passed to --weights)."""
    p = Path(path).expanduser()
    start = p if p.is_dir() else p.parent
    return any((d / RANDOM_MARKER).exists() for d in [start, *start.parents][:3])


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file (bench.codecs.digests: hashed once per version on disk, remembered across runs)."""
    from bench.codecs.digests import file_sha256

    return file_sha256(path)


def weights_digest(paths: list[Path]) -> str:
    """One sha256 over the named weight files (their names and contents), for codec fingerprints."""
    h = hashlib.sha256()
    for p in sorted(paths, key=lambda q: q.name):
        h.update(p.name.encode())
        h.update(sha256_file(p).encode())
    return h.hexdigest()


def check_sha256(path: Path, expected: str) -> None:
    """Raise ChecksumError unless the file's sha256 starts with `expected` (a full digest or a prefix)."""
    actual = sha256_file(path)
    if not actual.startswith(expected.lower()):
        raise ChecksumError(
            f"{path}: sha256 {actual[:len(expected)]}... does not match the expected {expected}; the file is "
            f"damaged or not the release it is named after. Delete it and run `bench weights fetch` again.")


_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.(th|pth|pt)$")


def verify_original(path: Path) -> None:
    """Check an original release file: the digest in its name (Encodec's `NAME-<sha256 prefix>.th`),
    a pinned digest for its release name, or the digest recorded by `fetch` in the folder's manifest."""
    m = _HASH_IN_NAME.search(path.name)
    if m:
        check_sha256(path, m.group(1))
        return
    recorded = _read_manifest(path.parent).get("files", {}).get(path.name)
    if recorded:
        check_sha256(path, recorded)
        return
    for rel in RELEASES.values():
        if rel.original_name == path.name and rel.sha256:
            check_sha256(path, rel.sha256)
            return
    log.info("%s: no published or recorded sha256 to check it against; loading it unchecked", path)


def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


def _write_manifest(folder: Path, source: str, files: list[Path]) -> None:
    data = {"version": 1, "source": source, "files": {p.name: sha256_file(p) for p in files}}
    (folder / MANIFEST).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


# -- finding weights ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Found:
    """Weights found on disk: `kind` is "hf" (a folder) or "original" (one release file)."""

    kind: str
    path: Path

    @property
    def files(self) -> list[Path]:
        if self.kind == "hf":
            return [self.path / n for n in HF_FILES if (self.path / n).exists()]
        return [self.path]


def _is_hf_dir(d: Path) -> bool:
    return (d / "config.json").is_file() and any(d.glob("*.safetensors"))


def find_weights(path: str | Path, codec: str, variant: str, suffixes: tuple[str, ...]) -> Found | None:
    """Resolve `path` to the weights of one variant, or None.

    Accepted: an original release file (suffix in `suffixes`); a Hugging Face folder; a `model.safetensors`
    file (its folder); a folder holding `<variant>/` (the cache layout), a Hugging Face folder named like
    the hub repository, or original files (the one named like the release, else the only one there).
    """
    p = Path(path).expanduser()
    if p.is_file():
        if p.suffix in suffixes:
            return Found("original", p)
        if p.suffix == ".safetensors" and _is_hf_dir(p.parent):
            return Found("hf", p.parent)
        return None
    if not p.is_dir():
        return None
    if _is_hf_dir(p):
        return Found("hf", p)
    rel = RELEASES.get((codec, variant))
    for sub in [variant, f"{codec}_{variant}"] + ([rel.hub_repo.split("/")[-1]] if rel else []):
        if (p / sub).is_dir():
            found = find_weights(p / sub, codec, variant, suffixes)
            if found:
                return found
    originals = sorted(q for q in p.iterdir() if q.is_file() and q.suffix in suffixes)
    if rel:
        stem = rel.original_name.split("-")[0].rsplit(".", 1)[0]  # "encodec_24khz", "weights_16khz"
        exact = [q for q in originals if q.name == rel.original_name]
        named = exact or [q for q in originals if q.name.startswith(stem + "-") or q.name.startswith(stem + ".")]
        if named:
            return Found("original", named[0])
    if len(originals) == 1:
        return Found("original", originals[0])
    return None


def missing_weights(codec_name: str, looked_in: str | Path | list, variant: str | None = None) -> WeightsMissingError:
    """The error for absent weights: it names `bench weights fetch NAME` and `--weights PATH`."""
    places = looked_in if isinstance(looked_in, list) else [looked_in]
    where = ", ".join(str(p) for p in places)
    which = f" ({variant})" if variant else ""
    return WeightsMissingError(
        f"{codec_name}{which}: no weights found in {where}. Download them with `bench weights fetch {codec_name}` "
        f"(needs a network), or point to a local copy with `--weights PATH` (a Hugging Face folder with "
        f"config.json + model.safetensors, or the authors' original checkpoint file). "
        f"For a random-weight model (tests) pass pretrained=False.")


def verify_files(paths: list[Path]) -> None:
    """Check each file against the sha256 its folder's manifest recorded at fetch time (ChecksumError on a
    mismatch); files without a record are loaded as they are (a hand-made folder passed with --weights)."""
    for p in paths:
        recorded = _read_manifest(Path(p).parent).get("files", {}).get(Path(p).name)
        if recorded:
            check_sha256(Path(p), recorded)


def verify_found(found: Found) -> None:
    """Verify the files of weights found on disk: an original file as `verify_original`, a Hugging Face folder
    against its manifest."""
    if found.kind == "original":
        verify_original(found.path)
    else:
        verify_files(found.files)


def load_checkpoint(path: str | Path, mmap: bool = False) -> Any:
    """`torch.load(path, weights_only=True)` on CPU, with one-line errors: a file holding anything but tensors
    and plain containers, or a damaged one, is a CheckpointError naming the file (torch's own message, which
    suggests turning the safe loader off, is not repeated: never do that for a file you did not make)."""
    import pickle

    import torch

    path = Path(path)
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        except RuntimeError:
            if not mmap:
                raise
            return torch.load(path, map_location="cpu", weights_only=True)  # legacy format: no mmap
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path}: not a checkpoint in the official layout, or damaged: it holds objects other than tensors and "
            "plain containers, which bench does not load. Fetch the official file again (bench weights fetch) or "
            "point --weights at it.") from None
    except (RuntimeError, EOFError, ValueError, OSError) as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        if "weights_only" in reason:
            reason = "rejected by the safe loader"
        raise CheckpointError(f"{path}: cannot be read as a PyTorch checkpoint ({reason}); the file is truncated "
                              "or damaged, or not a checkpoint: fetch it again (bench weights fetch)") from None


def normalise_variant(codec: str, variant: str | int | float) -> str:
    """'16khz', '16000', 16000, 16, '44.1khz', 44100 -> the cache's variant name ('16khz', '44khz')."""
    text = str(variant).lower().replace("khz", "").replace("hz", "").strip()
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    khz = value / 1000 if value >= 1000 else value
    for v in VARIANTS[codec]:
        if abs(float(v[:-3]) - khz) < 1.0:
            return v
    raise ValueError(f"{codec} has no variant {variant!r}; choose one of {', '.join(VARIANTS[codec])}")


# -- names that moved to bench.codecs.hub_pins and bench.codecs.fetching (imported from here by older code) ---------

_MOVED = {**{n: "bench.codecs.hub_pins" for n in ("Release", "HubPin", "HUB_PINS", "URL_PINS", "SEMANTICODEC_REPO",
                                                   "SEMANTICODEC_PIN")},
          **{n: "bench.codecs.fetching" for n in ("FETCHERS", "LISTERS", "UnpinnedError", "FetchError", "pins_path",
                                                   "fetch", "fetch_sources", "list_weights", "semanticodec_files",
                                                   "fetch_semanticodec", "_fetch_hub_files", "_fetch_url", "_effective",
                                                   "_unpinned_message", "_read_pins", "_write_pins", "_url_digest")}}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
