"""SemantiCodec weights: official Hugging Face layout written, found, verified and loaded (tiny random model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bench.codecs.base import WeightsMissingError
from bench.codecs.semanticodec import weights as W
from bench.codecs.semanticodec.codec import SemantiCodec


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    codec = SemantiCodec(tiny=True, token_rate=50, vocab=8192, seed=7)
    root = tmp_path_factory.mktemp("sc_weights")
    W.save_official(codec.encoder, codec.decoder, codec.cfg, root)
    return codec, root


def test_layout_paths(saved):
    _, root = saved
    # file-name number is V/2; combine_{512/K}
    assert (root / "semanticodec_tokenrate_50" / "encoder.ckpt").is_file()
    assert (root / "semanticodec_tokenrate_50" / "decoder.ckpt").is_file()
    npy = root / "codebook_idx" / "combine_256_audioset_dominate" / "codebook_4096_0.npy"
    assert npy.is_file()
    table = np.load(npy)
    assert table.dtype == np.float32 and table.shape == (8192, 2 * 32)  # V rows, F = 2 * tiny width
    assert W.codebook_relpath(100, 32768) == "codebook_idx/combine_512_audioset_dominate/codebook_16384_0.npy"
    assert W.codebook_relpath(25, 4096) == "codebook_idx/combine_128_audioset_dominate/codebook_2048_0.npy"
    assert W.weights_available(50, 8192, root) and not W.weights_available(50, 4096, root)
    rows = {r["variant"].split()[0]: r for r in W.list_weights(root)}
    assert rows["tokenrate_50"]["present"] and "8192" in [r for r in W.list_weights(root) if r["present"]][0]["variant"]
    assert not rows["tokenrate_100"]["present"] and not rows["tokenrate_25"]["present"]


def test_load_gives_identical_codes(saved):
    codec, root = saved
    loaded = SemantiCodec(tiny=True, token_rate=50, vocab=8192, weights=str(root), seed=99)
    for (k, v), (k2, v2) in zip(codec.encoder.state_dict().items(), loaded.encoder.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    for (k, v), (k2, v2) in zip(codec.decoder.state_dict().items(), loaded.decoder.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    assert torch.equal(codec.encoder.centroids, loaded.encoder.centroids)
    rng = np.random.default_rng(0)
    x = torch.from_numpy((0.1 * rng.standard_normal((1, 1, 20000))).astype(np.float32))
    assert torch.equal(codec.encode(x).codes, loaded.encode(x).codes)
    assert loaded.weights_digest() != "random" and len(loaded.weights_digest()) == 16


def test_official_checkpoint_path_layout_accepted(saved, tmp_path):
    _, root = saved
    d = tmp_path / "my_ckpt"
    d.mkdir()
    for name in ("encoder.ckpt", "decoder.ckpt"):
        (d / name).symlink_to(root / "semanticodec_tokenrate_50" / name)
    (d / "codebook_idx").symlink_to(root / "codebook_idx")
    files = W.locate(d, 50, 8192)
    assert files.encoder == d / "encoder.ckpt"
    SemantiCodec(tiny=True, token_rate=50, vocab=8192, weights=str(d))


def test_missing_file_names_file_and_command(saved, tmp_path, monkeypatch):
    _, root = saved
    with pytest.raises(WeightsMissingError, match=r"codebook_2048_0\.npy.*bench weights fetch semanticodec"):
        SemantiCodec(tiny=True, token_rate=50, vocab=4096, weights=str(root))
    with pytest.raises(WeightsMissingError, match=r"does not exist.*bench weights fetch semanticodec"):
        W.locate(tmp_path / "nowhere", 100, 16384)
    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "home"))
    (tmp_path / "home" / "weights" / "semanticodec").mkdir(parents=True)
    with pytest.raises(WeightsMissingError, match=r"semanticodec_tokenrate_100.encoder\.ckpt.*bench weights fetch"):
        W.locate(None, 100, 16384)
    assert not SemantiCodec.weights_available()
    assert SemantiCodec.weights_available(50, 8192, weights=root) and not SemantiCodec.weights_available(100, weights=root)


def _copy_layout(root: Path, dest: Path) -> None:
    for p in root.rglob("*"):
        if p.is_file():
            q = dest / p.relative_to(root)
            q.parent.mkdir(parents=True, exist_ok=True)
            q.write_bytes(p.read_bytes())


def test_key_and_shape_mismatch_named(saved, tmp_path):
    _, root = saved
    _copy_layout(root, tmp_path)
    enc_path = tmp_path / "semanticodec_tokenrate_50" / "encoder.ckpt"
    state = torch.load(enc_path, weights_only=True)
    del state["encoder.weight_hh_l1_reverse"]
    state["audiomae.model.norm.weight"] = torch.zeros(5)
    state["extra.thing"] = torch.zeros(1)
    torch.save(state, enc_path)
    with pytest.raises(W.CheckpointMismatchError) as err:
        SemantiCodec(tiny=True, token_rate=50, vocab=8192, weights=str(tmp_path))
    msg = str(err.value)
    assert "encoder.weight_hh_l1_reverse" in msg and "extra.thing" in msg
    assert "audiomae.model.norm.weight: file (5,) vs model (32,)" in msg
    # a checkpoint of another token rate: every LSTM shape differs
    with pytest.raises(W.CheckpointMismatchError, match="same token rate"):
        SemantiCodec(tiny=True, token_rate=100, vocab=8192, weights=str(_rename_rate(tmp_path, root)))


def _rename_rate(tmp: Path, root: Path) -> Path:
    d = tmp / "other"
    _copy_layout(root, d)
    (d / "semanticodec_tokenrate_50").rename(d / "semanticodec_tokenrate_100")
    (d / "codebook_idx" / "combine_256_audioset_dominate").rename(d / "codebook_idx" / "combine_512_audioset_dominate")
    return d


def test_codebook_shape_checked(saved, tmp_path):
    _, root = saved
    _copy_layout(root, tmp_path)
    np.save(tmp_path / W.codebook_relpath(50, 8192), np.zeros((10, 3), np.float32))
    with pytest.raises(W.CheckpointMismatchError, match=r"expected \(8192, 64\)"):
        SemantiCodec(tiny=True, token_rate=50, vocab=8192, weights=str(tmp_path))


def test_fetch_requests_official_names():
    """`bench weights fetch semanticodec` asks the hub for the official file names (the download itself, its
    pins and checksums are tested in tests/test_weights.py)."""
    from bench.codecs import weights as shared

    assert shared.semanticodec_files((100,), (16384,)) == [
        "semanticodec_tokenrate_100/encoder.ckpt", "semanticodec_tokenrate_100/decoder.ckpt",
        "codebook_idx/combine_512_audioset_dominate/codebook_8192_0.npy"]
    with pytest.raises(ValueError, match="25, 50, 100"):
        W.parse_variant("tokenrate_30")
    assert W.parse_variant(None) == (25, 50, 100)


def test_weights_from_bench_weights_random_are_marked(saved, tmp_path):
    """Official-layout files count as released unless `bench weights random` marked their folder (the codec
    then labels its results random; tiny models always are)."""
    from bench.codecs import weights as common
    from bench.codecs.random_weights import write_random

    _, root = saved
    assert not any(common.is_random(p) for p in root.rglob("*.ckpt"))
    dest = write_random("semanticodec", tmp_path / "rw", variant="50/8192", tiny=True)
    ckpts = list(dest.rglob("*.ckpt"))
    assert ckpts and all(common.is_random(p) for p in ckpts) and common.is_random(dest)
    assert SemantiCodec(tiny=True, token_rate=50, vocab=8192, weights=dest).meta.random_weights
