"""What `bench weights fetch` may bring: the released checkpoints of Encodec and DAC, and the pinned revision and sha256
of every file that could be read for them (data only: no torch, no network, no imports from the rest of bench).

`Release`: one checkpoint of one codec variant, its hub repository and the authors' original file (`RELEASES`, by
(codec, variant); `VARIANTS`: the cache's variant names). `HubPin`: one Hugging Face repository as fetched, a commit
and each file's sha256 (`HUB_PINS`). `URL_PINS`: full digests of the original release files, where published. The
transformers-only codecs (Mimi, X-Codec, ...) keep their pins beside their code (`bench.codecs.neural.Checkpoint`).
The verified downloads that use these pins live in `bench.codecs.fetching`.
"""

from __future__ import annotations

from dataclasses import dataclass


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


# -- pins: which revision and which bytes a fetch may bring
#
# Every file `bench weights fetch` downloads is checked against a full sha256 before it is moved into the
# cache. The digests below were read from the hub's own pages (each HubPin names the page); a value not
# published where we could read it is None, never a guess. A fetch that would bring a file without a known
# digest refuses, unless `--trust-unpinned` is given: then it downloads (the pinned revision, else the
# current commit of main, resolved once), checks what it can, and records the revision and the digest of
# every file in `bench_home()/pins.json`, so later fetches are pinned to them (trust on first use), and in
# the folder's manifest, so later loads verify them (`verify_files`).


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
