"""The SemantiCodec semantic codebook: k-means (faiss) over stacked AudioMAE features, in the official layout.

The official codebooks are float32 `[V, F]` tables of k-means centroids (F = 768 K, K = 100 / token_rate),
stored as `codebook_idx/combine_{512/K}_audioset_dominate/codebook_{V/2}_0.npy` (the file name carries V/2).
The encoder assigns a feature to the centroid of least squared Euclidean distance and the decoder is fed the
centroid itself, so the k-means here is plain Euclidean (faiss `spherical=False`): spherical k-means would
give unit-norm centroids, far from the features (LayerNorm outputs of norm ~sqrt(F)) that the L2 lookup and
the decoder expect.

k-means: `faiss.Kmeans` with the given seed, iterations and initialisation (faiss' default uniform random
sampling of V training vectors; k-means++ or AFK-MC2 on request). At most `max_points_per_centroid` (faiss'
own default, 256) vectors per centroid are used, drawn with the seed from the cached features into a
memory-mapped file, so the training set, not the data, bounds memory.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.fsutil import share

log = logging.getLogger(__name__)

INIT_METHODS = ("random", "kmeans++", "afkmc2")
RECOMMENDED_PER_CENTROID = 39  # faiss warns below this many training vectors per centroid


class CodebookError(ValueError):
    """Bad input to codebook training, with what to do in the message."""


class TooFewVectorsError(CodebookError):
    pass


class CodebookShapeError(CodebookError):
    pass


# -- k-means -------------------------------------------------------------------------------------------------


@dataclass
class KMeansResult:
    centroids: np.ndarray  # [k, d] float32
    inertia: float  # sum over the training vectors of the squared L2 distance to the nearest centroid
    sizes: np.ndarray  # int64 [k]: training vectors assigned to each centroid
    objective: list[float]  # faiss' objective at each iteration (before that iteration's update)
    n_vectors: int
    seconds: float  # training + the final assignment

    @property
    def empty(self) -> int:
        """Centroids no training vector is nearest to."""
        return int((self.sizes == 0).sum())


def assign(x: np.ndarray, centroids: np.ndarray, chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid (squared L2, exact, faiss IndexFlatL2) of each row of `x` `[n, d]`: (ids int64 `[n]`,
    squared distances float32 `[n]`), `chunk` rows at a time (x may be a memmap)."""
    import faiss

    index = faiss.IndexFlatL2(centroids.shape[1])
    index.add(np.ascontiguousarray(centroids, dtype=np.float32))
    ids = np.empty(len(x), dtype=np.int64)
    dist = np.empty(len(x), dtype=np.float32)
    for s in range(0, len(x), chunk):
        d, i = index.search(np.ascontiguousarray(x[s: s + chunk], dtype=np.float32), 1)
        ids[s: s + chunk], dist[s: s + chunk] = i[:, 0], d[:, 0]
    return ids, dist


def kmeans(x: np.ndarray, k: int, iterations: int = 25, seed: int = 0, spherical: bool = False,
           init: str = "random", max_points_per_centroid: int = 256, verbose: bool = False) -> KMeansResult:
    """k-means of `x` `[n, d]` float32 (an array or a memmap) into `k` centroids with `faiss.Kmeans`.

    faiss trains on at most `k * max_points_per_centroid` rows (its own seeded subsample beyond that); the
    returned inertia and sizes are those of the final centroids over all of `x`."""
    import faiss

    n, d = x.shape
    if n < k:
        raise TooFewVectorsError(f"k-means into {k} centroids needs at least {k} vectors, got {n}")
    if init not in INIT_METHODS:
        raise CodebookError(f"unknown k-means init {init!r}; choose one of {', '.join(INIT_METHODS)}")
    if int(iterations) < 1:
        raise CodebookError(f"k-means needs at least 1 iteration, got {iterations}")
    methods = {"random": faiss.ClusteringInitMethod_RANDOM, "kmeans++": faiss.ClusteringInitMethod_KMEANS_PLUS_PLUS,
               "afkmc2": faiss.ClusteringInitMethod_AFK_MC2}
    t0 = time.perf_counter()
    km = faiss.Kmeans(int(d), int(k), niter=int(iterations), seed=int(seed), spherical=bool(spherical),
                      max_points_per_centroid=int(max_points_per_centroid), min_points_per_centroid=1,
                      init_method=methods[init], verbose=bool(verbose))
    km.train(np.ascontiguousarray(x, dtype=np.float32))  # a float32 C-contiguous memmap is not copied
    centroids = np.ascontiguousarray(km.centroids, dtype=np.float32)
    ids, dist = assign(x, centroids)
    inertia = float(dist.astype(np.float64).sum())
    sizes = np.bincount(ids, minlength=k).astype(np.int64)
    return KMeansResult(centroids=centroids, inertia=inertia, sizes=sizes, objective=[float(v) for v in km.obj],
                        n_vectors=int(n), seconds=time.perf_counter() - t0)


def sample_indices(n: int, cap: int, seed: int = 0) -> np.ndarray | None:
    """Sorted indices of `cap` of `n` rows drawn without replacement with `seed`; None when n <= cap (all)."""
    if n <= cap:
        return None
    return np.sort(np.random.default_rng(int(seed)).choice(n, size=int(cap), replace=False))


# -- the file ------------------------------------------------------------------------------------------------


def feature_dim(token_rate: int, tiny: bool = False) -> int:
    """F of the codebook at `token_rate`: 768 K (tiny: its AudioMAE width K)."""
    from bench.codecs.semanticodec import config as C

    return C.get_config(int(token_rate), C.VOCABS[0], tiny=tiny).encoder.feature_dim


def check_codebook(table: Any, token_rate: int, vocab: int, tiny: bool = False, where: str = "codebook") -> None:
    """Raise CodebookShapeError unless `table` (an array) is `[vocab, F]` float32 for `token_rate`, naming
    the token rate its width belongs to when it belongs to another."""
    from bench.codecs.semanticodec import config as C

    dim = feature_dim(token_rate, tiny)
    shape = tuple(getattr(table, "shape", ()))
    if shape == (int(vocab), dim) and np.dtype(getattr(table, "dtype", None)) == np.float32:
        return
    hint = ""
    if len(shape) == 2 and shape[1] != dim:
        other = [r for r in C.TOKEN_RATES if feature_dim(r, tiny) == shape[1]]
        hint = (f"; width {shape[1]} is that of token_rate={other[0]}" if other
                else f"; width {shape[1]} matches no token rate (F = {feature_dim(100, tiny)} x 100/token_rate)")
    elif len(shape) == 2 and shape[0] != int(vocab):
        hint = f"; it has {shape[0]} rows: pass --vocab {shape[0]}" if shape[0] in C.VOCABS else ""
    elif len(shape) == 2:
        hint = f"; dtype {getattr(table, 'dtype', None)}, float32 expected"
    raise CodebookShapeError(f"{where} has shape {shape}, expected ({int(vocab)}, {dim}) float32 for "
                             f"token_rate={int(token_rate)}, vocab={int(vocab)}{hint}")


def codebook_path(out: str | Path, token_rate: int, vocab: int) -> Path:
    """`out` itself when it names a `.npy` file, else the official place under the folder `out`:
    `out/codebook_idx/combine_{512/K}_audioset_dominate/codebook_{V/2}_0.npy`."""
    from bench.codecs.semanticodec.weights import codebook_relpath

    out = Path(out).expanduser()
    if out.suffix.lower() == ".npy":
        return out
    return out / codebook_relpath(int(token_rate), int(vocab))


def write_codebook(table: np.ndarray, path: str | Path, token_rate: int, vocab: int, tiny: bool = False) -> Path:
    """Write the `[V, F]` float32 table atomically (a temporary file in the same folder, then a rename)."""
    table = np.ascontiguousarray(table)
    check_codebook(table, token_rate, vocab, tiny, where="the trained codebook")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npy", dir=path.parent)
    share(fd)  # readable as an open() would make it, not 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, table)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# -- the whole stage -----------------------------------------------------------------------------------------


@dataclass
class CodebookReport:
    path: Path
    token_rate: int
    vocab: int
    feature_dim: int
    items: int
    cached: int
    extracted: int
    failures: list[tuple[str, str]]
    n_frames: int  # feature vectors of all items
    n_train: int  # of which k-means trained on
    extracted_seconds: float
    feature_seconds: float
    kmeans: KMeansResult
    weights: str  # where the AudioMAE came from
    extra: dict[str, Any] = field(default_factory=dict)

    def lines(self) -> list[str]:
        km = self.kmeans
        feat = (f"features: {self.items} items ({self.cached} from the cache, {self.extracted} extracted, "
                f"{len(self.failures)} skipped), {self.n_frames} frames of dimension {self.feature_dim}")
        if self.extracted:
            speed = self.extracted_seconds / max(self.feature_seconds, 1e-9)
            feat += (f"; {self.extracted_seconds:.1f} s of audio in {self.feature_seconds:.1f} s "
                     f"({speed:.1f} s of audio per second)")
        return [
            feat,
            (f"k-means: {self.vocab} centroids over {self.n_train} vectors, {len(km.objective)} iterations in "
             f"{km.seconds:.1f} s; mean squared distance {km.inertia / max(km.n_vectors, 1):.4g}, "
             f"{km.empty} centroids unused"),
            f"codebook [{self.vocab}, {self.feature_dim}] float32 written to {self.path}",
        ]


def resolve_items(tasks: list[str], limit: int | None = None) -> list:
    """Items of every task (`bench run`'s resolver: files:DIR, dataset and HEAR tasks, demo tasks), the
    first `limit` of each."""
    from bench.selection import check_limit, task_items
    from bench.tasks import load_task

    if not tasks:
        raise CodebookError("give at least one --task (e.g. files:DIR, demo-speech, libritts:ROOT)")
    limit = check_limit(limit)
    items = []
    for name in tasks:
        task = load_task(name)
        found = task_items(task, limit)
        if not found:
            raise CodebookError(f"task {name}: no audio found (0 items)")
        items.extend(found)
    return items


def train_codebook(tasks: list[str], token_rate: int, vocab: int, out: str | Path, weights: str | Path | None = None,
                   random_weights: bool = False, tiny: bool = False, limit: int | None = None, seed: int = 0,
                   iterations: int = 25, device: str = "cpu", batch_size: int = 16, cache_dir: str | Path | None = None,
                   max_points_per_centroid: int = 256, init: str = "random", force: bool = False,
                   progress=None) -> CodebookReport:
    """AudioMAE features of the tasks' audio -> k-means into `vocab` centroids -> the codebook file.

    out: a `.npy` path, or a folder that receives the official layout (pass the weights folder itself, and
    `bench run --codec semanticodec:token_rate=R,vocab=V --weights DIR` loads the new codebook).
    weights: a folder (or encoder.ckpt) holding the AudioMAE; random_weights: a random AudioMAE (seed), for
    wiring tests. Raises TooFewVectorsError when the audio yields fewer frames than `vocab`."""
    from bench.codecs.semanticodec import config as C
    from bench.codecs.semanticodec.weights import load_codebook

    from . import features as Fe

    C.check_point(int(token_rate), int(vocab))
    token_rate, vocab = int(token_rate), int(vocab)
    if (weights is None) == (not random_weights):
        raise CodebookError("give either --weights DIR (a SemantiCodec checkpoint folder) or --random-weights")
    if int(max_points_per_centroid) < 1:
        raise CodebookError(f"max points per centroid must be at least 1, got {max_points_per_centroid}")
    if init not in INIT_METHODS:
        raise CodebookError(f"unknown k-means init {init!r}; choose one of {', '.join(INIT_METHODS)}")
    path = codebook_path(out, token_rate, vocab)
    if path.exists() and not force:
        raise CodebookError(f"{path} exists; pass --force to replace it (or another --out)")
    items = resolve_items(list(tasks), limit)

    cfg = Fe.encoder_config(token_rate, tiny)
    mae = Fe.random_audiomae(cfg, seed) if random_weights else Fe.load_audiomae(cfg, weights)
    cache = Fe.FeatureCache(cache_dir or Fe.default_cache_dir(), Fe.cache_context(mae, cfg))
    extractor = Fe.FeatureExtractor(mae, cfg, device=device, batch_size=batch_size)
    fs = Fe.extract_features(items, extractor, cache, progress=progress)

    frames_per_second = token_rate / 2
    if fs.n_vectors == 0:
        first = f" (first: {fs.failures[0][1]})" if fs.failures else ""
        raise CodebookError(f"no audio found: none of the {len(items)} items gave features{first}")
    if fs.n_vectors < vocab:
        raise TooFewVectorsError(
            f"{fs.n_vectors} frames ({fs.n_vectors / frames_per_second:.1f} s of audio at token_rate={token_rate}) "
            f"are too few for {vocab} centroids: k-means needs at least {vocab} frames "
            f"({vocab / frames_per_second:.0f} s), and {RECOMMENDED_PER_CENTROID * vocab} "
            f"({RECOMMENDED_PER_CENTROID * vocab / frames_per_second / 3600:.1f} h) for {RECOMMENDED_PER_CENTROID} "
            "per centroid; add audio (--task) or choose a smaller --vocab")
    if fs.n_vectors < RECOMMENDED_PER_CENTROID * vocab:
        log.warning("%d frames for %d centroids (%.1f per centroid): faiss recommends at least %d per centroid",
                    fs.n_vectors, vocab, fs.n_vectors / vocab, RECOMMENDED_PER_CENTROID)

    # the training set: all frames, or max_points_per_centroid * vocab of them drawn with the seed,
    # gathered into a memory-mapped file beside the cache (removed afterwards)
    indices = sample_indices(fs.n_vectors, int(max_points_per_centroid) * vocab, seed)
    n_train = fs.n_vectors if indices is None else len(indices)
    cache.root.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="kmeans-train-", suffix=".npy", dir=cache.root)
    os.close(fd)
    try:
        train = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n_train, fs.dim))
        fs.gather(train, indices)
        train.flush()
        log.info("k-means: %d centroids over %d of %d frames, %d iterations (faiss, seed %d, init %s)",
                 vocab, n_train, fs.n_vectors, iterations, seed, init)
        result = kmeans(train, vocab, iterations=iterations, seed=seed, init=init,
                        max_points_per_centroid=max_points_per_centroid)
        del train
    finally:
        Path(tmp).unlink(missing_ok=True)

    write_codebook(result.centroids, path, token_rate, vocab, tiny)
    load_codebook(path, token_rate, vocab, cfg.feature_dim)  # the codec's own loader accepts it
    return CodebookReport(
        path=path, token_rate=token_rate, vocab=vocab, feature_dim=fs.dim, items=len(items), cached=fs.cached,
        extracted=fs.extracted, failures=fs.failures, n_frames=fs.n_vectors, n_train=n_train,
        extracted_seconds=fs.extracted_seconds, feature_seconds=fs.wall_seconds, kmeans=result,
        weights="random (seed %d)" % seed if random_weights else str(weights),
        extra={"model_seconds": fs.model_seconds, "cache": str(cache.root)})
