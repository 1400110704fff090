"""The shared weights cache: where checkpoints live, how they are fetched, checked and found.

Layout: `bench_home()/weights/<codec>/<variant>/` (`$BENCH_HOME`, default `~/.cache/bench`). A variant
folder holds either a Hugging Face layout (`config.json` + `model.safetensors`) or the authors' original
release file (`encodec_24khz-d7cc33bc.th`, `weights_16khz.pth`, ...). Nothing here imports torch, and
nothing is ever fetched at import or construction time: only `fetch` (the `bench weights fetch NAME`
command) touches the network.

Each codec's fetcher is named in `FETCHERS` as "module:function"; a fetcher takes
`(dest: Path | None = None, variant: str | None = None, trust_unpinned: bool = False)` and returns the
folder it filled. Every downloaded file is checked against a full sha256 before it enters the cache; see
"pins" below for where the digests come from and what `--trust-unpinned` records.
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
    "semanticodec": "bench.codecs.weights:fetch_semanticodec",
    "spk-sim": "bench.metrics.speaker:fetch_weights",  # a metric's model (WavLM-Base-Plus-SV)
    "mimi": "bench.codecs.mimi:fetch_weights",
    "xcodec": "bench.codecs.xcodec:fetch_weights",
    "xcodec2": "bench.codecs.xcodec2:fetch_weights",
    "neucodec": "bench.codecs.neucodec:fetch",
    "wavtokenizer": "bench.codecs.wavtokenizer:fetch",
    "higgs": "bench.codecs.higgs:fetch",
}
# Codecs whose cache layout is not `<variant>/` list their own rows for `bench weights list`.
LISTERS: dict[str, str] = {"semanticodec": "bench.codecs.semanticodec.weights:list_weights",
                           "mimi": "bench.codecs.mimi:list_weights", "xcodec": "bench.codecs.xcodec:list_weights",
                           "xcodec2": "bench.codecs.xcodec2:list_weights",
                           "neucodec": "bench.codecs.neucodec:list_weights",
                           "wavtokenizer": "bench.codecs.wavtokenizer:list_weights",
                           "higgs": "bench.codecs.higgs:list_weights"}

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


# -- pins: which revision and which bytes a fetch may bring -----------------------------------------
#
# Every file `bench weights fetch` downloads is checked against a full sha256 before it is moved into the
# cache. The digests below were read from the hub's own pages (each HubPin names the page); a value not
# published where we could read it is None, never a guess. A fetch that would bring a file without a known
# digest refuses, unless `--trust-unpinned` is given: then it downloads (the pinned revision, else the
# current commit of main, resolved once), checks what it can, and records the revision and the digest of
# every file in `bench_home()/pins.json`, so later fetches are pinned to them (trust on first use), and in
# the folder's manifest, so later loads verify them (`verify_files`).


class UnpinnedError(ValueError):
    """A fetch that would download files whose sha256 is not pinned; the message names the flag that allows it."""


class CheckpointError(ValueError):
    """A weights file torch will not load: not a checkpoint in the official layout, or damaged."""


@dataclass(frozen=True)
class HubPin:
    """One Hugging Face repository as fetched: a commit (None: not known here) and each file's sha256."""

    repo: str
    revision: str | None
    files: dict[str, str | None]
    source: str = ""  # the page the values were read from


_HUB = "https://huggingface.co"
HUB_PINS: dict[tuple[str, str], HubPin] = {
    ("encodec", "24khz"): HubPin(
        "facebook/encodec_24khz", "e5e900dde49c9faa32f4e3f6b07ea1894263b78a",
        {"config.json": None, "model.safetensors": "37a7cb100f71a29e6c1d815aca8666a1d7ea8885ebe44c306c751a5103559d57"},
        f"{_HUB}/facebook/encodec_24khz/blob/e5e900dde49c9faa32f4e3f6b07ea1894263b78a/model.safetensors"),
    ("encodec", "48khz"): HubPin(
        "facebook/encodec_48khz", None,
        {"config.json": None, "model.safetensors": "47a15ffbaf7bb76176d0833e10590de0a8988a7848748608cefc36a1c88adfdc"},
        f"{_HUB}/facebook/encodec_48khz/blob/main/model.safetensors"),
    # DAC: the last upload of model.safetensors on main (commits/main/model.safetensors), whose digest the blob
    # page of a later branch shows; main's later commits change only README/config/preprocessor files.
    ("dac", "16khz"): HubPin(
        "descript/dac_16khz", None,
        {"config.json": None, "model.safetensors": "fcefdf834a3f059eab9569346f5d3c79c85e4220ba3622f373d18a70b3000229"},
        f"{_HUB}/descript/dac_16khz/blob/refs%2Fpr%2F1/model.safetensors (commit 1445673)"),
    ("dac", "24khz"): HubPin(
        "descript/dac_24khz", None,
        {"config.json": None, "model.safetensors": "7452e3fc6972991da871ae1a1c9d3e8e219aa247cc0f757018867d6a7fe59aaf"},
        f"{_HUB}/descript/dac_24khz/blob/refs%2Fpr%2F3/model.safetensors (commit a1589d4)"),
    ("dac", "44khz"): HubPin(
        "descript/dac_44khz", None,
        {"config.json": None, "model.safetensors": "6128ebff483a41422b0164d079a3773b0d8d82e64c4293d775994cbf8baf913a"},
        f"{_HUB}/descript/dac_44khz/blob/refs%2Fpr%2F2/model.safetensors (commit 90ce0f9)"),
}
# The authors' original release files: full digests where published (Encodec's names carry 8 hex digits only,
# which `verify_original` also checks; 32 bits pin nothing against a deliberate substitute).
URL_PINS: dict[str, str | None] = {rel.original_url: None for rel in RELEASES.values()}
# SemantiCodec (haoheliu/SemantiCodec): no revision or digest could be read offline; see `semanticodec_files`.
SEMANTICODEC_REPO = "haoheliu/SemantiCodec"
SEMANTICODEC_PIN = HubPin(SEMANTICODEC_REPO, None, {})


def pins_path() -> Path:
    """`bench_home()/pins.json`: revisions and digests recorded by fetches made with --trust-unpinned."""
    return bench_home() / "pins.json"


def _read_pins() -> dict[str, Any]:
    try:
        data = json.loads(pins_path().read_text())
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict) or data.get("version") != 1:
        data = {"version": 1}
    data.setdefault("hub", {})
    data.setdefault("url", {})
    return data


def _write_pins(data: dict[str, Any]) -> None:
    path = pins_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(data, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _effective(pin: HubPin, files: list[str]) -> tuple[str | None, dict[str, str | None]]:
    """The revision and digests a fetch of `files` uses: the shipped pins, completed by the local record
    (only for the revision it was recorded at)."""
    local = _read_pins()["hub"].get(pin.repo, {})
    revision = pin.revision or local.get("revision")
    recorded = local.get("files", {}) if local.get("revision") == revision else {}
    return revision, {f: pin.files.get(f) or recorded.get(f) for f in files}


def _unpinned_message(what: list[str], revision: str | None) -> str:
    """revision: the commit that would be fetched (None: main, as it is then)."""
    return (f"no pinned checksum for {', '.join(what)}; rerun with --trust-unpinned to download revision "
            f"{revision or 'main'} and record its digests in {pins_path()}")


# -- verified downloads ---------------------------------------------------------------------------

def _stream_sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _mismatch(what: str, digest: str, expected: str) -> ChecksumError:
    return ChecksumError(f"{what}: the download's sha256 {digest} does not match the pinned {expected}; the download "
                         "was deleted and nothing was installed. The file on the server changed or the transfer was "
                         "damaged: try again, and report it if it persists.")


def _staging(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=root, prefix=".download-"))


def _resolve_revision(repo: str) -> str:
    """The commit main points at now (so that what is recorded is a commit, never a moving branch)."""
    from huggingface_hub import HfApi

    try:
        sha = HfApi().model_info(repo, revision="main").sha
    except Exception as err:  # noqa: BLE001 - network errors come in many types
        raise FetchError(f"could not reach the hub for {repo} ({type(err).__name__}: {err}); without a network, "
                         "copy the files onto this machine and pass --weights PATH") from err
    if not sha:
        raise FetchError(f"the hub gave no commit for {repo}@main; try again later")
    return str(sha)


def _fetch_hub_files(pin: HubPin, files: list[str], root: Path, trust_unpinned: bool) -> dict[str, str]:
    """Download `files` of `pin.repo` into `root` (keeping their relative paths). Every file is downloaded into
    a staging folder and hashed in full; only when all of them match their pins are they moved into place, so
    a failed fetch installs nothing. Files already there with the expected digest are kept. Returns
    {file: sha256}."""
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as err:
        raise ImportError("fetching from the Hugging Face hub needs huggingface_hub: pip install huggingface_hub") from err
    revision, expected = _effective(pin, files)
    unpinned = [f for f in files if expected[f] is None]
    if unpinned and not trust_unpinned:
        raise UnpinnedError(_unpinned_message([f"{pin.repo} {f}" for f in unpinned], revision))
    if revision is None:
        revision = _resolve_revision(pin.repo)
    digests: dict[str, str] = {}
    todo = []
    for name in files:
        final = root / name
        known = expected[name] or _read_manifest(final.parent).get("files", {}).get(final.name)
        if final.is_file() and known and _stream_sha256(final) == known:  # already there, intact
            digests[name] = known
        else:
            todo.append(name)
    staging = _staging(root)
    try:
        staged = {}
        for name in todo:
            log.info("downloading %s/%s@%s", pin.repo, name, revision[:12])
            try:
                got = hf_hub_download(repo_id=pin.repo, filename=name, revision=revision, local_dir=str(staging))
            except Exception as err:  # noqa: BLE001 - network errors come in many types
                raise FetchError(f"could not download {pin.repo}/{name} ({type(err).__name__}: {err}). Without a "
                                 "network, copy the files onto this machine and pass --weights PATH.") from err
            digest = _stream_sha256(Path(got))
            if expected[name] is not None and digest != expected[name]:
                raise _mismatch(f"{pin.repo}/{name}@{revision[:12]}", digest, expected[name])
            staged[name] = (Path(got), digest)
        for name, (got, digest) in staged.items():  # all verified: install
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(got, root / name)
            digests[name] = digest
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if unpinned:
        _record_hub(pin.repo, revision, digests)
    _record_manifests(root, f"hf:{pin.repo}@{revision}", digests)
    return digests


def _record_hub(repo: str, revision: str, digests: dict[str, str]) -> None:
    data = _read_pins()
    entry = data["hub"].get(repo, {})
    if entry.get("revision") != revision:
        entry = {"revision": revision, "files": {}}
    entry["files"].update(digests)
    data["hub"][repo] = entry
    _write_pins(data)
    log.warning("recorded revision %s and %d digest(s) of %s in %s (trust on first use)", revision, len(digests),
                repo, pins_path())


def _record_manifests(root: Path, source: str, digests: dict[str, str]) -> None:
    """Each file's digest in the manifest of its own folder (what `verify_files` checks at load time)."""
    by_folder: dict[Path, dict[str, str]] = {}
    for name, digest in digests.items():
        path = root / name
        by_folder.setdefault(path.parent, {})[path.name] = digest
    for folder, files in by_folder.items():
        data = _read_manifest(folder)
        merged = {**data.get("files", {}), **files} if data.get("source") == source else files
        (folder / MANIFEST).write_text(json.dumps({"version": 1, "source": source, "files": merged},
                                                  indent=1, sort_keys=True) + "\n")


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


# -- fetching -------------------------------------------------------------------------------------

def fetch(name: str, dest: str | Path | None = None, variant: str | None = None, trust_unpinned: bool = False,
          **kwargs: Any) -> Path:
    """Download the weights of codec `name` (every variant unless `variant` is given) into `dest`
    (default: the cache). Returns the folder filled. Files without a pinned sha256 are refused (UnpinnedError)
    unless `trust_unpinned`; then their digests are recorded (see the pins section). Extra keyword
    arguments go to the fetcher (Encodec/DAC: `source="hub"` or `source="original"`)."""
    if name not in FETCHERS:
        known = ", ".join(sorted(FETCHERS))
        raise ValueError(f"no weights to fetch for {name!r}; codecs with weights: {known}")
    module_name, _, attr = FETCHERS[name].partition(":")
    fetcher = getattr(importlib.import_module(module_name), attr)
    return Path(fetcher(dest=Path(dest).expanduser() if dest else None, variant=variant,
                        trust_unpinned=trust_unpinned, **kwargs))


def fetch_encodec(dest: Path | None = None, variant: str | None = None, source: str = "hub",
                  trust_unpinned: bool = False) -> Path:
    return _fetch_codec("encodec", dest, variant, source, trust_unpinned)


def fetch_dac(dest: Path | None = None, variant: str | None = None, source: str = "hub",
              trust_unpinned: bool = False) -> Path:
    return _fetch_codec("dac", dest, variant, source, trust_unpinned)


def _fetch_codec(codec: str, dest: Path | None, variant: str | None, source: str, trust_unpinned: bool) -> Path:
    variants = VARIANTS[codec]
    if variant is not None:
        variant = normalise_variant(codec, variant)
    chosen = [variant] if variant else list(variants)
    root = Path(dest) if dest else weights_dir(codec)
    if source not in ("hub", "original"):
        raise ValueError(f"source must be 'hub' or 'original', not {source!r}")
    if not trust_unpinned:  # refuse before anything is downloaded, naming every unpinned file
        missing: list[str] = []
        revisions = set()
        for v in chosen:
            if source == "hub":
                pin = HUB_PINS[(codec, v)]
                revision, expected = _effective(pin, list(HF_FILES))
                unpinned = [f"{pin.repo} {f}" for f, d in expected.items() if d is None]
                missing += unpinned
                revisions |= {revision} if unpinned else set()
            elif _url_digest(RELEASES[(codec, v)].original_url) is None:
                missing.append(RELEASES[(codec, v)].original_name)
        if missing:
            raise UnpinnedError(_unpinned_message(missing, revisions.pop() if len(revisions) == 1 else None))
    for v in chosen:
        if source == "hub":
            _fetch_hub_files(HUB_PINS[(codec, v)], list(HF_FILES), root / v, trust_unpinned)
        else:
            _fetch_url(RELEASES[(codec, v)], root / v, trust_unpinned)
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


def _url_digest(url: str) -> str | None:
    return URL_PINS.get(url) or _read_pins()["url"].get(url)


def _fetch_url(rel: Release, target: Path, trust_unpinned: bool = False) -> None:
    """An original release file: streamed to a temp file in `target` while hashing, checked against the full
    pinned digest (else, with trust_unpinned, the digest prefix in its name, then recorded), then renamed."""
    import urllib.request

    expected = _url_digest(rel.original_url)
    if expected is None and not trust_unpinned:
        raise UnpinnedError(_unpinned_message([rel.original_name], None))
    final = target / rel.original_name
    log.info("downloading %s into %s", rel.original_url, final)
    staging = _staging(target)
    tmp = staging / rel.original_name
    try:
        h = hashlib.sha256()
        try:
            with open(tmp, "wb") as out, urllib.request.urlopen(rel.original_url, timeout=60) as resp:
                while block := resp.read(1 << 20):
                    h.update(block)
                    out.write(block)
        except Exception as err:  # noqa: BLE001
            raise FetchError(
                f"could not download {rel.original_url} ({type(err).__name__}: {err}). Without a network, copy the "
                f"file onto this machine and pass --weights PATH.") from err
        digest = h.hexdigest()
        if expected is not None and digest != expected:
            raise _mismatch(rel.original_name, digest, expected)
        if expected is None and rel.sha256 and not digest.startswith(rel.sha256):
            raise _mismatch(rel.original_name, digest, f"{rel.sha256} (the prefix in its name)")
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if _url_digest(rel.original_url) is None:
        data = _read_pins()
        data["url"][rel.original_url] = digest
        _write_pins(data)
        log.warning("recorded the sha256 of %s in %s (trust on first use)", rel.original_name, pins_path())
    _write_manifest(target, f"url:{rel.original_url}", [final])


def semanticodec_files(token_rates, vocabs) -> list[str]:
    """The repository paths of the official files for these token rates and vocabularies."""
    from bench.codecs.semanticodec.weights import codebook_relpath, rate_dir

    names: list[str] = []
    for rate in token_rates:
        names += [f"{rate_dir(rate)}/encoder.ckpt", f"{rate_dir(rate)}/decoder.ckpt"]
        names += [codebook_relpath(rate, v) for v in vocabs]
    return names


def fetch_semanticodec(dest: Path | None = None, variant: str | None = None, trust_unpinned: bool = False) -> Path:
    """The official SemantiCodec files (every token rate unless `variant` names one, each with its four
    codebooks; rate 100 alone is ~2.4 GB plus codebooks) into `dest` (default: the cache), each verified."""
    from bench.codecs.semanticodec.config import VOCABS
    from bench.codecs.semanticodec.weights import default_root, parse_variant

    root = Path(dest).expanduser() if dest is not None else default_root()
    _fetch_hub_files(SEMANTICODEC_PIN, semanticodec_files(parse_variant(variant), VOCABS), root, trust_unpinned)
    return root


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
        module_name, _, attr = LISTERS.get(codec, ":").partition(":")
        try:
            lister = getattr(importlib.import_module(module_name), attr, None) if module_name else None
        except ImportError:
            lister = None
        if lister is not None:
            rows.extend(lister())
        else:
            where = weights_dir(codec)
            rows.append({"codec": codec, "variant": "-", "where": where,
                         "present": where.is_dir() and any(where.iterdir())})
    return rows
