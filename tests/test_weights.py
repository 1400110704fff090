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


def test_fetch_from_the_hub_fills_the_cache(home, monkeypatch):
    import huggingface_hub

    calls = []

    def fake_snapshot(repo_id, local_dir, allow_patterns):
        calls.append(repo_id)
        _hf_dir(Path(local_dir))
        return local_dir

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    assert not any(r["present"] for r in W.list_weights() if r["codec"] == "dac")
    out = W.fetch("dac", variant="16000")
    assert out == home / "weights" / "dac" and calls == ["descript/dac_16khz"]
    manifest = json.loads((out / "16khz" / W.MANIFEST).read_text())
    assert manifest["source"] == "hf:descript/dac_16khz"
    assert manifest["files"]["model.safetensors"] == hashlib.sha256(b"x").hexdigest()
    rows = {(r["codec"], r["variant"]): r["present"] for r in W.list_weights()}
    assert rows[("dac", "16khz")] and not rows[("dac", "24khz")] and not rows[("encodec", "24khz")]
    W.fetch("encodec", dest=home / "elsewhere")  # every variant, into dest
    assert calls[1:] == ["facebook/encodec_24khz", "facebook/encodec_48khz"]
    assert (home / "elsewhere" / "48khz" / "config.json").exists()


def test_fetch_of_an_original_file_checks_its_digest(home, monkeypatch):
    import urllib.request

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: io.BytesIO(b"corrupted download"))
    with pytest.raises(W.ChecksumError, match="d7cc33bc"):
        W.fetch("encodec", variant="24khz", source="original")
    assert list((home / "weights" / "encodec" / "24khz").iterdir()) == []  # nothing half-written left
    # DAC publishes no digest: the download is recorded and later loads check against the record
    W.fetch("dac", variant="24khz", source="original")
    path = home / "weights" / "dac" / "24khz" / "weights_24khz.pth"
    assert path.read_bytes() == b"corrupted download"
    W.verify_original(path)


def test_fetch_without_network_says_what_to_do(home, monkeypatch):
    import urllib.request

    def offline(url, timeout=None):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(W.FetchError, match="--weights PATH"):
        W.fetch("dac", variant="16khz", source="original")
    with pytest.raises(ValueError, match="dac, encodec, semanticodec"):
        W.fetch("opus")
