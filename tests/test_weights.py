"""The shared weights cache: places, digests, checksum checks, finding and fetching (network mocked)."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest

from bench.codecs import weights as W
from bench.codecs.base import WeightsMissingError


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_places_follow_bench_home(home, monkeypatch):
    assert W.bench_home() == home
    assert W.weights_dir("dac", "16khz") == home / "weights" / "dac" / "16khz"
    monkeypatch.delenv("BENCH_HOME")
    assert W.bench_home() == Path.home() / ".cache" / "bench"


def test_sha256_known_answer(tmp_path):
    p = tmp_path / "abc"
    p.write_bytes(b"abc")
    # FIPS 180-2 test vector
    assert W.sha256_file(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    p.write_bytes(b"abcd")  # a changed file is hashed again (size/mtime key)
    assert W.sha256_file(p) == hashlib.sha256(b"abcd").hexdigest()


def test_digest_in_the_file_name_is_checked(tmp_path):
    data = b"not really a checkpoint"
    good = tmp_path / f"encodec_24khz-{hashlib.sha256(data).hexdigest()[:8]}.th"
    good.write_bytes(data)
    W.verify_original(good)
    bad = tmp_path / "encodec_24khz-d7cc33bc.th"  # the release's name, other content
    bad.write_bytes(data)
    with pytest.raises(W.ChecksumError, match="d7cc33bc"):
        W.verify_original(bad)


def test_digest_recorded_in_the_manifest_is_checked(tmp_path):
    p = tmp_path / "weights_16khz.pth"
    p.write_bytes(b"original bytes")
    W._write_manifest(tmp_path, "test", [p])
    W.verify_original(p)
    p.write_bytes(b"damaged bytes!")
    with pytest.raises(W.ChecksumError, match="bench weights fetch"):
        W.verify_original(p)


def _hf_dir(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text("{}")
    (d / "model.safetensors").write_bytes(b"x")
    return d


def test_find_weights_accepts_every_layout(tmp_path):
    hf = _hf_dir(tmp_path / "hf")
    assert W.find_weights(hf, "dac", "16khz", (".pth",)) == W.Found("hf", hf)
    assert W.find_weights(hf / "model.safetensors", "dac", "16khz", (".pth",)) == W.Found("hf", hf)
    cache = tmp_path / "cache"
    sub = _hf_dir(cache / "24khz")
    assert W.find_weights(cache, "dac", "24khz", (".pth",)) == W.Found("hf", sub)
    originals = tmp_path / "orig"
    originals.mkdir()
    for name in ("weights.pth", "weights_16khz.pth", "weights_24khz.pth"):
        (originals / name).write_bytes(b"x")
    assert W.find_weights(originals, "dac", "16khz", (".pth",)).path.name == "weights_16khz.pth"
    assert W.find_weights(originals, "dac", "44khz", (".pth",)).path.name == "weights.pth"
    assert W.find_weights(originals / "weights_24khz.pth", "dac", "24khz", (".pth",)).kind == "original"
    assert W.find_weights(tmp_path / "nowhere", "dac", "16khz", (".pth",)) is None
    assert W.find_weights(originals, "encodec", "24khz", (".th",)) is None


def test_missing_weights_names_the_commands(tmp_path):
    err = W.missing_weights("encodec", tmp_path, "24khz")
    assert isinstance(err, WeightsMissingError)
    assert "bench weights fetch encodec" in str(err) and "--weights PATH" in str(err) and str(tmp_path) in str(err)


def test_variant_names():
    assert W.normalise_variant("dac", 44100) == "44khz"
    assert W.normalise_variant("dac", "44.1khz") == "44khz"
    assert W.normalise_variant("encodec", "48000") == "48khz"
    assert W.normalise_variant("encodec", 24) == "24khz"
    with pytest.raises(ValueError, match="24khz, 48khz"):
        W.normalise_variant("encodec", 16000)


class FakeHub:
    """Stands in for `huggingface_hub.hf_hub_download` (and `HfApi.model_info`): serves `files[name]` bytes."""

    def __init__(self, files: dict[str, bytes], main: str = "c" * 40):
        self.files, self.main, self.calls = dict(files), main, []

    def download(self, repo_id, filename, revision=None, local_dir=None, **kwargs):
        self.calls.append((repo_id, filename, revision))
        if filename not in self.files:
            raise OSError(f"404: {filename}")
        path = Path(local_dir) / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.files[filename])
        return str(path)

    def install(self, monkeypatch):
        import huggingface_hub

        monkeypatch.setattr(huggingface_hub, "hf_hub_download", self.download)
        monkeypatch.setattr(huggingface_hub.HfApi, "model_info",
                            lambda api, repo_id, revision=None, **kw: type("Info", (), {"sha": self.main})())
        return self


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_hub_fetch_checks_every_file_against_its_pin_at_the_pinned_revision(home, monkeypatch):
    served = {"config.json": b'{"sampling_rate": 16000}', "model.safetensors": b"weights bytes"}
    pin = W.HubPin("descript/dac_16khz", "a" * 40, {n: _sha(b) for n, b in served.items()})
    monkeypatch.setitem(W.HUB_PINS, ("dac", "16khz"), pin)
    hub = FakeHub(served).install(monkeypatch)
    assert not any(r["present"] for r in W.list_weights() if r["codec"] == "dac")
    out = W.fetch("dac", variant="16000")  # every file pinned: no flag needed
    assert out == home / "weights" / "dac"
    assert hub.calls == [("descript/dac_16khz", n, "a" * 40) for n in served]
    assert (out / "16khz" / "model.safetensors").read_bytes() == b"weights bytes"
    manifest = json.loads((out / "16khz" / W.MANIFEST).read_text())
    assert manifest["source"] == "hf:descript/dac_16khz@" + "a" * 40
    assert manifest["files"] == {n: _sha(b) for n, b in served.items()}
    assert not W.pins_path().exists()  # nothing trusted on first use
    rows = {(r["codec"], r["variant"]): r["present"] for r in W.list_weights()}
    assert rows[("dac", "16khz")] and not rows[("dac", "24khz")] and not rows[("encodec", "24khz")]
    W.verify_found(W.find_weights(out / "16khz", "dac", "16khz", (".pth",)))
    (out / "16khz" / "model.safetensors").write_bytes(b"weights bytez")  # damaged after the fetch
    with pytest.raises(W.ChecksumError, match="bench weights fetch"):
        W.verify_found(W.find_weights(out / "16khz", "dac", "16khz", (".pth",)))


def test_a_download_that_does_not_match_its_pin_is_deleted_and_installs_nothing(home, monkeypatch):
    # the shipped pin of facebook/encodec_24khz: model.safetensors must be the published 37a7cb10... file
    hub = FakeHub({"config.json": b"{}", "model.safetensors": b"tampered"}).install(monkeypatch)
    with pytest.raises(W.ChecksumError) as err:
        W.fetch("encodec", variant="24khz", trust_unpinned=True)
    message = str(err.value)
    assert W.HUB_PINS[("encodec", "24khz")].files["model.safetensors"] in message
    assert _sha(b"tampered") in message and "deleted" in message
    assert _files_under(home) == []  # neither file installed, no staging left, nothing recorded
    assert {c[2] for c in hub.calls} == {"e5e900dde49c9faa32f4e3f6b07ea1894263b78a"}  # the pinned revision


def test_unpinned_files_are_refused_without_the_flag(home, monkeypatch):
    hub = FakeHub({}).install(monkeypatch)
    with pytest.raises(W.UnpinnedError) as err:
        W.fetch("semanticodec", variant="tokenrate_100")
    assert str(err.value).startswith("no pinned checksum for haoheliu/SemantiCodec semanticodec_tokenrate_100/")
    assert f"rerun with --trust-unpinned to download revision main and record its digests in {W.pins_path()}" \
        in str(err.value)
    with pytest.raises(W.UnpinnedError, match="facebook/encodec_24khz config.json.*revision e5e900dd"):
        W.fetch("encodec", variant="24khz")
    with pytest.raises(W.UnpinnedError, match="encodec_24khz-d7cc33bc.th"):  # 8 hex digits pin nothing
        W.fetch("encodec", variant="24khz", source="original")
    assert hub.calls == [] and _files_under(home) == []


def test_trust_on_first_use_records_the_revision_and_digests_and_pins_later_fetches(home, monkeypatch):
    from bench.codecs.semanticodec.config import VOCABS

    names = W.semanticodec_files((100,), VOCABS)
    served = {n: f"official {n}".encode() for n in names}
    hub = FakeHub(served, main="d" * 40).install(monkeypatch)
    root = W.fetch("semanticodec", variant="100", trust_unpinned=True)
    assert root == home / "weights" / "semanticodec"
    assert {c[2] for c in hub.calls} == {"d" * 40}  # main resolved once to a commit, then fetched at it
    assert all((root / n).read_bytes() == served[n] for n in names)
    pins = json.loads(W.pins_path().read_text())
    assert pins["hub"]["haoheliu/SemantiCodec"] == {"revision": "d" * 40, "files": {n: _sha(served[n]) for n in names}}
    W.verify_files([root / n for n in names])  # the load-time check knows every file now

    hub.calls.clear()
    W.fetch("semanticodec", variant="100")  # pinned by the record: no flag needed, present files kept
    assert hub.calls == []
    (root / names[0]).unlink()
    hub.files[names[0]] = b"a different file"  # the hub's copy changed since it was trusted
    with pytest.raises(W.ChecksumError, match=_sha(served[names[0]])):
        W.fetch("semanticodec", variant="100")
    assert not (root / names[0]).exists()
    (root / names[1]).write_bytes(b"damaged")
    with pytest.raises(W.ChecksumError):
        W.verify_files([root / names[1]])


def test_fetch_of_an_original_file_checks_its_digest(home, monkeypatch):
    import urllib.request

    served = {"bytes": b"corrupted download"}
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: io.BytesIO(served["bytes"]))
    with pytest.raises(W.ChecksumError, match="d7cc33bc"):  # trusted, but the prefix in its name still checks
        W.fetch("encodec", variant="24khz", source="original", trust_unpinned=True)
    assert _files_under(home) == []  # nothing half-written left
    # DAC publishes no digest: the download is recorded (pins.json and the folder's manifest)
    W.fetch("dac", variant="24khz", source="original", trust_unpinned=True)
    path = home / "weights" / "dac" / "24khz" / "weights_24khz.pth"
    assert path.read_bytes() == b"corrupted download"
    W.verify_original(path)
    url = W.RELEASES[("dac", "24khz")].original_url
    assert json.loads(W.pins_path().read_text())["url"][url] == _sha(b"corrupted download")
    served["bytes"] = b"something else"
    with pytest.raises(W.ChecksumError, match=_sha(b"corrupted download")):  # later fetches are pinned to it
        W.fetch("dac", variant="24khz", source="original")
    assert path.read_bytes() == b"corrupted download"


def test_fetch_without_network_says_what_to_do(home, monkeypatch):
    import urllib.request

    def offline(url, timeout=None):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(W.FetchError, match="--weights PATH"):
        W.fetch("dac", variant="16khz", source="original", trust_unpinned=True)
    with pytest.raises(ValueError, match="no weights to fetch for 'opus'; codecs with weights: dac, encodec") as err:
        W.fetch("opus")
    assert "semanticodec" in str(err.value)


def test_shipped_pins_are_full_digests_and_commits():
    for pin in W.HUB_PINS.values():
        assert pin.revision is None or len(pin.revision) == 40 and int(pin.revision, 16) >= 0
        for digest in pin.files.values():
            assert digest is None or len(digest) == 64 and int(digest, 16) >= 0
        assert pin.source.startswith("https://huggingface.co/" + pin.repo)


class _NotATensor:
    pass


def test_a_rejected_pickle_is_one_line_that_never_suggests_weights_only_false(tmp_path):
    import torch

    good = tmp_path / "good.pth"
    torch.save({"w": torch.ones(2)}, good)
    assert torch.equal(W.load_checkpoint(good)["w"], torch.ones(2))
    evil = tmp_path / "evil.pth"
    torch.save({"w": _NotATensor()}, evil)
    with pytest.raises(W.CheckpointError) as err:
        W.load_checkpoint(evil)
    assert str(err.value).startswith(f"{evil}: not a checkpoint in the official layout, or damaged")
    assert "weights_only" not in str(err.value) and "\n" not in str(err.value)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[:40])
    with pytest.raises(W.CheckpointError, match="truncated or damaged"):
        W.load_checkpoint(truncated, mmap=True)
