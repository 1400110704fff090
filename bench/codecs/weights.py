"""The shared weights cache: where checkpoints live, how they are fetched, checked and found.

Layout: `bench_home()/weights/<codec>/<variant>/` (`$BENCH_HOME`, default `~/.cache/bench`). A variant
folder holds either a Hugging Face layout (`config.json` + `model.safetensors`) or the authors' original
release file (`encodec_24khz-d7cc33bc.th`, `weights_16khz.pth`, ...). Nothing here imports torch, and
nothing is ever fetched at import or construction time: only `fetch` (the `bench weights fetch NAME`
command) touches the network.

Each codec's fetcher is named in `FETCHERS` as "module:function"; a fetcher takes
`(dest: Path | None = None, variant: str | None = None)` and returns the folder it filled.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.codecs.base import WeightsMissingError

log = logging.getLogger(__name__)

FETCHERS: dict[str, str] = {
    "encodec": "bench.codecs.weights:fetch_encodec",
    "dac": "bench.codecs.weights:fetch_dac",
    "semanticodec": "bench.codecs.semanticodec.weights:fetch_weights",
}

MANIFEST = "bench-weights.json"  # written beside fetched files: source and sha256 of each file
HF_FILES = ("config.json", "model.safetensors")
RANDOM_MARKER = "RANDOM_WEIGHTS.txt"  # written by `bench weights random`: results from there are labelled random


class ChecksumError(ValueError):
    """A weight file's sha256 does not match the published or recorded one."""


class FetchError(ValueError):
    """A download failed (no network, missing file); the message says how to supply the weights by hand."""


@dataclass(frozen=True)
class Release:
    """One checkpoint of one codec variant: its hub repository and the authors' original file."""

    codec: str
    variant: str
    hub_repo: str
    original_url: str
    original_name: str
    sha256: str | None = None  # full or prefix; None where no digest is published (we record our own)


RELEASES: dict[tuple[str, str], Release] = {}


def _release(codec: str, variant: str, hub: str, url: str, sha: str | None) -> None:
    RELEASES[(codec, variant)] = Release(codec, variant, hub, url, url.rsplit("/", 1)[-1], sha)


# Encodec's file names carry the first 8 hex digits of their sha256 (torch.hub's convention).
_release("encodec", "24khz", "facebook/encodec_24khz",
         "https://dl.fbaipublicfiles.com/encodec/v0/encodec_24khz-d7cc33bc.th", "d7cc33bc")
_release("encodec", "48khz", "facebook/encodec_48khz",
         "https://dl.fbaipublicfiles.com/encodec/v0/encodec_48khz-7e698e3e.th", "7e698e3e")
# DAC publishes no digests: fetch records the sha256 it downloaded in the manifest, and loads check it.
_release("dac", "16khz", "descript/dac_16khz",
         "https://github.com/descriptinc/descript-audio-codec/releases/download/0.0.5/weights_16khz.pth", None)
_release("dac", "24khz", "descript/dac_24khz",
         "https://github.com/descriptinc/descript-audio-codec/releases/download/0.0.4/weights_24khz.pth", None)
_release("dac", "44khz", "descript/dac_44khz",
         "https://github.com/descriptinc/descript-audio-codec/releases/download/0.0.1/weights.pth", None)

VARIANTS: dict[str, tuple[str, ...]] = {"encodec": ("24khz", "48khz"), "dac": ("16khz", "24khz", "44khz")}


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

_DIGESTS: dict[tuple[str, int, int], str] = {}


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
    """Hex sha256 of a file, read in 1 MiB blocks (cached by path, size and mtime)."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(chunk):
                h.update(block)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


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


# -- fetching -------------------------------------------------------------------------------------

def fetch(name: str, dest: str | Path | None = None, variant: str | None = None, **kwargs: Any) -> Path:
    """Download the weights of codec `name` (every variant unless `variant` is given) into `dest`
    (default: the cache). Returns the folder filled. Extra keyword arguments go to the fetcher
    (Encodec/DAC: `source="hub"` or `source="original"`)."""
    if name not in FETCHERS:
        known = ", ".join(sorted(FETCHERS))
        raise ValueError(f"no weights to fetch for {name!r}; codecs with weights: {known}")
    module_name, _, attr = FETCHERS[name].partition(":")
    fetcher = getattr(importlib.import_module(module_name), attr)
    return Path(fetcher(dest=Path(dest).expanduser() if dest else None, variant=variant, **kwargs))


def fetch_encodec(dest: Path | None = None, variant: str | None = None, source: str = "hub") -> Path:
    return _fetch_codec("encodec", dest, variant, source)


def fetch_dac(dest: Path | None = None, variant: str | None = None, source: str = "hub") -> Path:
    return _fetch_codec("dac", dest, variant, source)


def _fetch_codec(codec: str, dest: Path | None, variant: str | None, source: str) -> Path:
    variants = VARIANTS[codec]
    if variant is not None:
        variant = normalise_variant(codec, variant)
    chosen = [variant] if variant else list(variants)
    root = Path(dest) if dest else weights_dir(codec)
    if source not in ("hub", "original"):
        raise ValueError(f"source must be 'hub' or 'original', not {source!r}")
    for v in chosen:
        rel = RELEASES[(codec, v)]
        target = root / v
        target.mkdir(parents=True, exist_ok=True)
        if source == "hub":
            _fetch_hub(rel, target)
        else:
            _fetch_url(rel, target)
    return root


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


def _fetch_hub(rel: Release, target: Path) -> None:
    try:
        from huggingface_hub import snapshot_download
    except ImportError as err:
        raise ImportError("fetching from the Hugging Face hub needs huggingface_hub: "
                          "pip install huggingface_hub") from err
    log.info("downloading %s into %s", rel.hub_repo, target)
    try:
        snapshot_download(repo_id=rel.hub_repo, local_dir=str(target),
                          allow_patterns=["config.json", "model.safetensors", "preprocessor_config.json"])
    except Exception as err:  # noqa: BLE001 - network errors come in many types
        raise FetchError(
            f"could not download {rel.hub_repo} ({type(err).__name__}: {err}). Without a network, copy the "
            f"files (config.json, model.safetensors) or the original {rel.original_name} onto this machine and "
            f"pass --weights PATH.") from err
    _write_manifest(target, f"hf:{rel.hub_repo}", [target / n for n in HF_FILES if (target / n).exists()])


def _fetch_url(rel: Release, target: Path) -> None:
    import urllib.request

    final = target / rel.original_name
    log.info("downloading %s into %s", rel.original_url, final)
    fd, tmp = tempfile.mkstemp(dir=target, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(rel.original_url, timeout=60) as resp:
            shutil.copyfileobj(resp, out, length=1 << 20)
        if rel.sha256:
            check_sha256(Path(tmp), rel.sha256)
        os.replace(tmp, final)
    except Exception as err:  # noqa: BLE001
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, ChecksumError):
            raise
        raise FetchError(
            f"could not download {rel.original_url} ({type(err).__name__}: {err}). Without a network, copy the "
            f"file onto this machine and pass --weights PATH.") from err
    _write_manifest(target, f"url:{rel.original_url}", [final])


# -- listing --------------------------------------------------------------------------------------

def list_weights() -> list[dict[str, Any]]:
    """Rows {codec, variant, where, present} for every codec variant with weights (the cache only)."""
    rows = []
    for codec, variants in VARIANTS.items():
        suffixes = (".th",) if codec == "encodec" else (".pth",)
        for v in variants:
            where = weights_dir(codec, v)
            found = find_weights(where, codec, v, suffixes)
            rows.append({"codec": codec, "variant": v, "where": found.path if found else where,
                         "present": found is not None})
    for codec in FETCHERS:
        if codec in VARIANTS:
            continue
        module_name = FETCHERS[codec].partition(":")[0]
        try:
            lister = getattr(importlib.import_module(module_name), "list_weights", None)
        except ImportError:
            lister = None
        if lister is not None:
            rows.extend(lister())
        else:
            where = weights_dir(codec)
            rows.append({"codec": codec, "variant": "-", "where": where,
                         "present": where.is_dir() and any(where.iterdir())})
    return rows
