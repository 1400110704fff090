"""`bench train semanticodec codebook`: k-means against faiss / sklearn / planted clusters, AudioMAE features
equal to what the encoder looks up, the feature cache, the official codebook file, the CLI end to end.
Tiny configuration (AudioMAE width 32) and synthetic audio throughout."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest
import soundfile as sf
import torch

from bench.codecs.semanticodec import weights as SW
from bench.codecs.semanticodec.codec import SemantiCodec, token_count
from bench.codecs.semanticodec.fbank import semanticodec_fbank
from bench.tasks import load_task
from bench.train import codebook as CB
from bench.train import features as Fe


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "home"))  # digests and default caches stay in the test


def _signal(seconds: float, seed: int, sr: int = 16000) -> np.ndarray:
    """Half-second pieces of random tones, chirps and coloured noise (varied spectra, so varied features)."""
    rng = np.random.default_rng(seed)
    out = []
    piece = sr // 2
    t = np.arange(piece) / sr
    for _ in range(int(np.ceil(seconds * 2))):
        kind = rng.integers(3)
        if kind == 0:
            x = np.sin(2 * np.pi * rng.uniform(80, 6000) * t)
        elif kind == 1:
            f0, f1 = rng.uniform(100, 7000, 2)
            x = np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t * t))
        else:
            x = np.convolve(rng.standard_normal(piece), np.ones(int(rng.integers(1, 40))), "same")
            x /= np.abs(x).max()
        out.append(rng.uniform(0.05, 0.6) * x)
    return np.concatenate(out)[: int(seconds * sr)].astype(np.float32)


def _write_tree(root: Path, seconds: list[float], sr: int = 16000, seed: int = 0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i, s in enumerate(seconds):
        sf.write(root / f"clip{i}.wav", _signal(s, seed + i, sr), sr, subtype="FLOAT")
    return root


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    """Random tiny SemantiCodec weights in the official layout at token rate 100, vocab 4096."""
    from bench.codecs.random_weights import write_random

    root = tmp_path_factory.mktemp("sc_tiny_weights")
    write_random("semanticodec", root, variant="100/4096", tiny=True, seed=3)
    return root


@pytest.fixture(scope="module")
def big_tree(tmp_path_factory):
    """90 s of audio in 3 files: 4512 frames at token rate 100, enough for 4096 centroids."""
    return _write_tree(tmp_path_factory.mktemp("tree90"), [30.0, 30.0, 30.0])


# -- k-means --------------------------------------------------------------------------------------------------


def _blobs(k=8, d=16, per=200, spread=0.05, seed=0):
    rng = np.random.default_rng(seed)
    means = rng.uniform(-10, 10, (k, d)).astype(np.float32)
    x = np.concatenate([m + spread * rng.standard_normal((per, d)) for m in means]).astype(np.float32)
    return x[rng.permutation(len(x))], means


def test_kmeans_recovers_planted_clusters():
    x, means = _blobs()
    res = CB.kmeans(x, 8, iterations=20, seed=1, init="kmeans++")
    # match each planted mean to its nearest centroid: a permutation, within the blobs' standard error
    dist = ((means[:, None, :] - res.centroids[None]) ** 2).sum(-1)
    match = dist.argmin(axis=1)
    assert sorted(match.tolist()) == list(range(8))
    assert np.abs(res.centroids[match] - means).max() < 5 * 0.05 / np.sqrt(200)  # 5 standard errors
    assert res.sizes.tolist() == [200] * 8 and res.empty == 0
    # the planted partition's own inertia (about its true means) bounds the optimum from above, closely
    own = ((x - means[((x[:, None] - means[None]) ** 2).sum(-1).argmin(1)]) ** 2).sum()
    assert 0.97 * own < res.inertia <= own


def test_kmeans_inertia_is_faiss_own_and_close_to_sklearn():
    rng = np.random.default_rng(5)
    # overlapping clusters: a real optimisation problem, not a planted one
    x = (rng.standard_normal((3000, 12)) + rng.integers(0, 6, (3000, 1)) * 0.8).astype(np.float32)
    k, iters, seed = 24, 15, 7
    ours = CB.kmeans(x, k, iterations=iters, seed=seed)

    def inertia(c):  # independent: float64 numpy, every distance
        return float(((x[:, None, :].astype(np.float64) - c[None].astype(np.float64)) ** 2).sum(-1).min(1).sum())

    assert ours.inertia == pytest.approx(inertia(ours.centroids), rel=1e-5)
    ref = faiss.Kmeans(12, k, niter=iters, seed=seed)  # faiss' own, same data and settings
    ref.train(x)
    np.testing.assert_allclose(ours.centroids, ref.centroids, rtol=0, atol=1e-6)
    assert ours.inertia == pytest.approx(inertia(ref.centroids), rel=1e-5)
    assert ours.inertia <= ref.obj[-1] * (1 + 1e-5)  # final centroids are no worse than the last assignment
    assert len(ours.objective) == iters and ours.sizes.sum() == len(x)

    from sklearn.cluster import KMeans

    sk = KMeans(n_clusters=k, n_init=3, random_state=0).fit(x)
    assert 0.8 * sk.inertia_ < ours.inertia < 1.15 * sk.inertia_


def test_kmeans_seed_and_too_few_vectors():
    x, _ = _blobs(k=4, per=50)
    a, b = CB.kmeans(x, 16, iterations=5, seed=3), CB.kmeans(x, 16, iterations=5, seed=3)
    assert np.array_equal(a.centroids, b.centroids)
    assert not np.array_equal(a.centroids, CB.kmeans(x, 16, iterations=5, seed=4).centroids)
    with pytest.raises(CB.TooFewVectorsError, match="at least 300 vectors, got 200"):
        CB.kmeans(x, 300)
    idx = CB.sample_indices(1000, 100, seed=2)
    assert len(idx) == 100 and len(set(idx.tolist())) == 100 and np.all(np.diff(idx) > 0)
    assert CB.sample_indices(100, 100) is None


# -- features ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [0.5, 10.24, 21.0])
def test_chunked_fbank_equals_the_codec_fbank(seconds):
    wave = _signal(seconds, 11)
    whole, segs = semanticodec_fbank(torch.from_numpy(wave)[None], [len(wave)])
    for chunk in (1, 2, 16):
        parts = torch.cat(list(Fe.fbank_windows(wave, chunk)))
        assert parts.shape == (segs[0], 1024, 128)
        torch.testing.assert_close(parts.reshape(1, -1, 128), whole, rtol=0, atol=2e-6)


@pytest.mark.parametrize("rate", [100, 50, 25])
def test_features_are_what_the_encoder_looks_up(tmp_path, rate):
    """Rows of an item = the stacked AudioMAE features the codec's encoder computes, in token order, trimmed
    to the token count."""
    from bench.codecs.random_weights import write_random

    root = write_random("semanticodec", tmp_path / "w", variant=f"{rate}/4096", tiny=True, seed=rate)
    codec = SemantiCodec(tiny=True, token_rate=rate, vocab=4096, weights=str(root))
    cfg = Fe.encoder_config(rate, tiny=True)
    extractor = Fe.FeatureExtractor(Fe.load_audiomae(cfg, root), cfg, batch_size=3)
    tree = _write_tree(tmp_path / "audio", [3.1, 12.5], sr=22050)
    items = load_task(f"files:{tree}").items()
    fs = Fe.extract_features(items, extractor, Fe.FeatureCache(tmp_path / "cache", Fe.cache_context(
        extractor.audiomae, cfg)))
    assert fs.extracted == 2 and fs.dim == cfg.feature_dim == 32 * (100 // rate)
    for i, item in enumerate(load_task(f"files:{tree}").items()):
        x16, n16 = codec._prepare(torch.from_numpy(item.audio)[None], item.sample_rate, None)
        fb, segs = semanticodec_fbank(x16, n16)
        with torch.inference_mode():
            ref = codec.encoder.semantic_features(fb[0].reshape(segs[0], 1024, 128)).reshape(-1, fs.dim)
        ref = ref[: token_count(n16[0], rate)].numpy()
        got = fs.item(i)
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-4)


def _count_calls(extractor):
    calls = []
    extractor.audiomae.register_forward_hook(lambda mod, inp, out: calls.append(inp[0].shape[0]))
    return calls


def test_feature_cache_skips_the_model_and_notices_a_changed_file(tmp_path):
    cfg = Fe.encoder_config(100, tiny=True)
    tree = _write_tree(tmp_path / "audio", [2.0, 11.0])
    cache_root = tmp_path / "cache"

    def run(seed=0):
        extractor = Fe.FeatureExtractor(Fe.random_audiomae(cfg, seed), cfg, batch_size=4)
        calls = _count_calls(extractor)
        cache = Fe.FeatureCache(cache_root, Fe.cache_context(extractor.audiomae, cfg))
        return Fe.extract_features(load_task(f"files:{tree}").items(), extractor, cache), calls

    first, calls = run()
    assert first.extracted == 2 and first.cached == 0 and sum(calls) == 1 + 2  # windows: 1 + 2, in one batch
    rows = [np.array(first.item(i)) for i in range(2)]
    assert first.rows == [token_count(32000, 100), token_count(176000, 100)]
    second, calls = run()
    assert calls == [] and second.cached == 2 and second.extracted == 0
    assert second.files == first.files and all(np.array_equal(second.item(i), rows[i]) for i in range(2))
    # a changed file is extracted again, alone; the other stays cached
    sf.write(tree / "clip1.wav", _signal(11.0, 99), 16000, subtype="FLOAT")
    third, calls = run()
    assert third.cached == 1 and third.extracted == 1 and sum(calls) == 2
    assert third.files[0] == first.files[0] and third.files[1] != first.files[1]
    assert not np.allclose(third.item(1), rows[1])
    # other AudioMAE weights: another key
    other, calls = run(seed=1)
    assert other.extracted == 2 and sum(calls) == 3
    assert not list(cache_root.rglob("*.tmp-*"))


def test_bad_items_are_skipped_and_counted(tmp_path):
    cfg = Fe.encoder_config(100, tiny=True)
    tree = _write_tree(tmp_path / "audio", [2.0])
    sf.write(tree / "silent.wav", np.zeros(16000, dtype=np.float32), 16000)
    (tree / "broken.wav").write_bytes(b"not audio")
    extractor = Fe.FeatureExtractor(Fe.random_audiomae(cfg), cfg)
    fs = Fe.extract_features(load_task(f"files:{tree}").items(), extractor,
                             Fe.FeatureCache(tmp_path / "c", Fe.cache_context(extractor.audiomae, cfg)))
    assert fs.extracted == 1 and fs.ids == ["clip0"] and sorted(i for i, _ in fs.failures) == ["broken", "silent"]


def test_gather_draws_the_training_rows_in_order(tmp_path):
    rng = np.random.default_rng(0)
    parts = [rng.standard_normal((n, 5)).astype(np.float32) for n in (7, 1, 12)]
    fs = Fe.FeatureSet(dim=5)
    for i, p in enumerate(parts):
        np.save(tmp_path / f"{i}.npy", p)
        fs.files.append(tmp_path / f"{i}.npy")
        fs.rows.append(len(p))
    every = np.concatenate(parts)
    assert np.array_equal(fs.gather(np.empty((20, 5), np.float32), chunk=3), every)
    idx = CB.sample_indices(20, 9, seed=4)
    out = np.lib.format.open_memmap(tmp_path / "train.npy", mode="w+", dtype=np.float32, shape=(9, 5))
    assert np.array_equal(fs.gather(out, idx, chunk=2), every[idx])


# -- the codebook file --------------------------------------------------------------------------------------


def test_codebook_file_loads_through_the_official_loader(tmp_path):
    table = np.random.default_rng(0).standard_normal((4096, 64)).astype(np.float32)
    path = CB.codebook_path(tmp_path, 50, 4096)
    assert path == tmp_path / "codebook_idx/combine_256_audioset_dominate/codebook_2048_0.npy"
    CB.write_codebook(table, path, 50, 4096, tiny=True)
    loaded = SW.load_codebook(path, 50, 4096, 64)
    assert loaded.dtype == torch.float32 and np.array_equal(loaded.numpy(), table)
    assert CB.codebook_path(tmp_path / "mine.npy", 50, 4096) == tmp_path / "mine.npy"
    with pytest.raises(CB.CodebookShapeError, match=r"width 32 is that of token_rate=100"):
        CB.write_codebook(table[:, :32], path, 50, 4096, tiny=True)
    with pytest.raises(CB.CodebookShapeError, match=r"expected \(4096, 1536\).*width 768 is that of token_rate=100"):
        CB.check_codebook(np.zeros((4096, 768), np.float32), 50, 4096)
    with pytest.raises(CB.CodebookShapeError, match="pass --vocab 8192"):
        CB.check_codebook(np.zeros((8192, 64), np.float32), 50, 4096, tiny=True)
    assert list(path.parent.iterdir()) == [path]  # no temporary left behind


def test_trained_codebook_is_what_the_encoder_uses(tmp_path, tiny_weights, big_tree):
    """Train into the weights folder, load the codec from it: its centroids are the file's, and every semantic
    token it emits is the nearest centroid of the feature row we computed for that frame."""
    cache = tmp_path / "cache"
    report = CB.train_codebook([f"files:{big_tree}"], 100, 4096, out=tiny_weights, weights=tiny_weights, tiny=True,
                               iterations=4, seed=0, cache_dir=cache, force=True)
    assert report.path == tiny_weights / SW.codebook_relpath(100, 4096)
    assert report.n_frames == 3 * token_count(480000, 100) == report.n_train
    table = np.load(report.path)
    codec = SemantiCodec(tiny=True, token_rate=100, vocab=4096, weights=str(tiny_weights))
    assert np.array_equal(codec.encoder.centroids.numpy(), table)

    cfg = Fe.encoder_config(100, tiny=True)
    extractor = Fe.FeatureExtractor(Fe.load_audiomae(cfg, tiny_weights), cfg)
    calls = _count_calls(extractor)
    items = load_task(f"files:{big_tree}").items()
    fs = Fe.extract_features(items, extractor, Fe.FeatureCache(cache, Fe.cache_context(extractor.audiomae, cfg)))
    assert fs.cached == 3 and calls == []
    c64 = table.astype(np.float64)
    batch = torch.from_numpy(np.stack([item.audio for item in items]))  # [3, 1, T]: one batched encode
    codes = codec.encode(batch, items[0].sample_rate).codes
    for i in range(len(items)):
        sem = codes[i, 0].numpy()
        feats = np.asarray(fs.item(i), dtype=np.float64)
        d = (feats ** 2).sum(1)[:, None] + (c64 ** 2).sum(1)[None] - 2 * feats @ c64.T
        nearest = d.argmin(1)
        assert len(sem) == len(feats)
        # equal, up to float32 near-ties in the codec's own distance
        gap = d[np.arange(len(sem)), sem] - d[np.arange(len(sem)), nearest]
        assert (sem == nearest).mean() > 0.999 and gap.max() < 1e-4 * d.max()
    # a training set capped at 1 frame per centroid: drawn from the cache, no model run
    capped = CB.train_codebook([f"files:{big_tree}"], 100, 4096, out=tmp_path / "capped.npy", weights=tiny_weights,
                               tiny=True, iterations=2, cache_dir=cache, max_points_per_centroid=1)
    assert capped.cached == 3 and capped.extracted == 0 and capped.n_train == 4096 < capped.n_frames


# -- the command --------------------------------------------------------------------------------------------


def _cli(*args):
    from bench.cli import main

    return main(["train", "semanticodec", "codebook", *map(str, args)])


def test_cli_end_to_end_with_random_weights(tmp_path, big_tree, capsys):
    out = tmp_path / "out"
    args = ["--task", f"files:{big_tree}", "--token-rate", 100, "--vocab", 4096, "--random-weights", "--tiny",
            "--out", out, "--iterations", 3, "--cache", tmp_path / "cache"]
    assert _cli(*args) == 0
    path = out / "codebook_idx/combine_512_audioset_dominate/codebook_2048_0.npy"
    assert SW.load_codebook(path, 100, 4096, 32).shape == (4096, 32)
    capsys.readouterr()
    assert _cli(*args) == 2  # refuses to replace it
    assert "exists; pass --force" in capsys.readouterr().err
    assert _cli(*args, "--force", "--out", tmp_path / "cb.npy") == 0 and (tmp_path / "cb.npy").is_file()


def test_cli_errors_are_one_line(tmp_path, capsys, tiny_weights):
    small = _write_tree(tmp_path / "small", [3.0])
    base = ["--token-rate", 100, "--random-weights", "--tiny", "--out", tmp_path / "o", "--cache", tmp_path / "c"]
    assert _cli("--task", f"files:{small}", "--vocab", 4096, *base) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "152 frames" in err and "at least 4096 frames (82 s)" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _cli("--task", f"files:{empty}", "--vocab", 4096, *base) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "no audio files" in err
    assert _cli("--task", f"files:{small}", "--vocab", 4096, "--token-rate", 100, "--weights", tmp_path / "none",
                "--tiny", "--out", tmp_path / "o") == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "bench weights fetch semanticodec" in err
    assert _cli("--task", f"files:{small}", "--vocab", 4096, "--token-rate", 100, "--weights", tiny_weights,
                "--out", tmp_path / "o") == 2  # tiny weights, full-size configuration
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "its AudioMAE is 32 wide, the configured one 768: pass --tiny" in err
