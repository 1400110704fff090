"""`bench weights fetch` and `bench weights list`: verified downloads into the weights cache.

Every file a fetch brings is downloaded into a staging folder, hashed in full and checked against its pinned sha256
(`bench.codecs.hub_pins`, or a codec's `Checkpoint`) before it is moved into place; a failed fetch installs nothing.
Without a pin the fetch refuses (UnpinnedError) unless `--trust-unpinned`: then it downloads the pinned revision (else
main, resolved once to a commit), and records the revision and every digest in `bench_home()/pins.json` (trust on
first use) and in the folder's manifest (checked at load time by `bench.codecs.weights.verify_files`).

Who fetches what: `FETCHERS` names each codec's fetcher as "module:attribute" (an attribute may be a class method,
"bench.codecs.mimi:Mimi.fetch"); a fetcher takes `(dest=None, variant=None, trust_unpinned=False)` and returns the
folder it filled. `LISTERS` name the `bench weights list` rows of each.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from bench.codecs.hub_pins import SEMANTICODEC_PIN, URL_PINS, HubPin, Release
from bench.codecs.weights import (
    MANIFEST,
    ChecksumError,
    _read_manifest,
    _write_manifest,
    bench_home,
    weights_dir,
)
from bench.fsutil import share

log = logging.getLogger(__name__)

_NEURAL = {"encodec": "Encodec", "dac": "DAC", "mimi": "Mimi", "xcodec": "XCodec", "xcodec2": "XCodec2",
           "neucodec": "NeuCodec", "wavtokenizer": "WavTokenizer", "higgs": "Higgs"}
FETCHERS: dict[str, str] = {
    "encodec": "bench.codecs.encodec:Encodec.fetch",
    "dac": "bench.codecs.dac:DAC.fetch",
    "semanticodec": "bench.codecs.fetching:fetch_semanticodec",
    "spk-sim": "bench.metrics.speaker:fetch_weights",  # a metric's model (WavLM-Base-Plus-SV)
    **{name: f"bench.codecs.{name}:{cls}.fetch" for name, cls in _NEURAL.items() if name not in ("encodec", "dac")},
}
LISTERS: dict[str, str] = {"semanticodec": "bench.codecs.semanticodec.weights:list_weights",
                           **{name: f"bench.codecs.{name}:{cls}.list_weights" for name, cls in _NEURAL.items()}}


class UnpinnedError(ValueError):
    """A fetch that would download files whose sha256 is not pinned; the message names the flag that allows it."""


class FetchError(ValueError):
    """A download failed (no network, missing file); the message says how to supply the weights by hand."""


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
    share(fd)  # readable as an open() would make it, not 0600
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
    fetcher = _resolve(FETCHERS[name])
    return Path(fetcher(dest=Path(dest).expanduser() if dest else None, variant=variant,
                        trust_unpinned=trust_unpinned, **kwargs))


def _resolve(target: str):
    """"module:attr.attr" -> the object (a function or a class method)."""
    module_name, _, path = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def fetch_sources(jobs: list[tuple[HubPin | Release, list[str] | None, Path]], trust_unpinned: bool = False) -> None:
    """Fetch each (hub pin and its files | original release file, target folder), all checked. Without
    trust_unpinned, refuses before anything is downloaded, naming every file that has no pinned sha256."""
    if not trust_unpinned:
        missing: list[str] = []
        revisions = set()
        for src, files, _ in jobs:
            if isinstance(src, Release):
                if _url_digest(src.original_url) is None:
                    missing.append(src.original_name)
                continue
            revision, expected = _effective(src, list(files))
            unpinned = [f"{src.repo} {f}" for f, d in expected.items() if d is None]
            missing += unpinned
            revisions |= {revision} if unpinned else set()
        if missing:
            raise UnpinnedError(_unpinned_message(missing, revisions.pop() if len(revisions) == 1 else None))
    for src, files, target in jobs:
        if isinstance(src, Release):
            _fetch_url(src, target, trust_unpinned)
        else:
            _fetch_hub_files(src, list(files), target, trust_unpinned)


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
    """Rows {codec, variant, where, present} for every codec with weights (the cache only)."""
    rows = []
    for codec in FETCHERS:
        try:
            lister = _resolve(LISTERS[codec]) if codec in LISTERS else None
        except (ImportError, AttributeError):
            lister = None
        if lister is not None:
            rows.extend(lister())
        else:
            where = weights_dir(codec)
            rows.append({"codec": codec, "variant": "-", "where": where,
                         "present": where.is_dir() and any(where.iterdir())})
    return rows
