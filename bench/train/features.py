"""Frozen AudioMAE features of a task's audio, stacked as the SemantiCodec encoder stacks them, cached on disk.

What one item becomes (the same steps and functions as `SemantiCodec.tokens` up to the semantic lookup):
audio `[C, T]` at any rate -> channel mean -> 16 kHz (soxr) -> zero-padded to whole 10.24 s segments (at least
one sample added), centred on its global mean -> Kaldi fbank, normalised (`[S * 1024, 128]`) -> AudioMAE
features of each 1024-frame window (`[512, 768]`, mean of the final norm of blocks 9-11) -> patch stacking
(`stack_patches`, K = 100 / token_rate) `[W, F]` per window -> the first N rows of the item, N = the official
token count (`codec.token_count`). Row i of an item's features is what the encoder looks up in the codebook to
emit the i-th semantic token, so k-means centroids of these rows are codebook entries the encoder can use.

Streaming: the fbank is computed a few segments at a time (exactly: each chunk reads the 240 samples that its
last frames share with the next segment), the windows of several items share one AudioMAE batch, and each
item's rows go straight into a memory-mapped `.npy` file, renamed into place when complete. Memory therefore
depends on the batch size and the longest single item, never on how many items there are.

Cache: one file per item under `<cache>/<key[:2]>/<key>.npy`, key = sha256 of (this module's version, the
codec's code version, the token rate, a digest of the AudioMAE tensors, the item's resolved path and id, and the
item's content signature: size and mtime for a file, a sample digest for in-memory audio). A second run over
the same data reads the files and never runs the model; a changed file gets a new key and is re-extracted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

log = logging.getLogger(__name__)

FEATURES_VERSION = "1"  # bump when the rows written for an item can change
SEGMENT = 163840  # samples per 10.24 s window at 16 kHz
FRAME_LENGTH, FRAME_SHIFT = 400, 160  # Kaldi fbank: 25 ms frames every 10 ms at 16 kHz
PREFETCH = 2  # items decoded and resampled ahead of the model (in a thread)

ProgressFactory = Callable[[int, str], Any]  # (total, description) -> object with update(n) and close()


class FeatureError(ValueError):
    """Bad input to the feature pass: no weights, mismatched checkpoint, no usable audio."""


# -- the model ---------------------------------------------------------------------------------------------


def encoder_config(token_rate: int, tiny: bool = False):
    """The SemantiCodec EncoderConfig at `token_rate` (the vocabulary does not change the features)."""
    from bench.codecs.semanticodec import config as C

    C.check_point(int(token_rate), C.VOCABS[0])
    return C.get_config(int(token_rate), C.VOCABS[0], tiny=tiny).encoder


def find_encoder_checkpoint(root: str | Path, token_rate: int) -> Path:
    """`encoder.ckpt` of `token_rate` under `root`, in the Hugging Face layout (`semanticodec_tokenrate_R/`) or
    the official `checkpoint_path` layout (the rate folder itself); `root` may also be the file."""
    from bench.codecs.base import WeightsMissingError
    from bench.codecs.semanticodec.weights import rate_dir

    root = Path(root).expanduser()
    if root.is_file():
        return root
    candidates = [root / rate_dir(token_rate) / "encoder.ckpt", root / "encoder.ckpt"]
    for path in candidates:
        if path.is_file():
            return path
    raise WeightsMissingError(
        f"no SemantiCodec encoder checkpoint for token_rate={token_rate} in {root} (looked for "
        f"{candidates[0]} and {candidates[1]}); run `bench weights fetch semanticodec`, or for a wiring test "
        f"`bench weights random semanticodec --dest DIR --variant {token_rate}/4096`, or pass --random-weights")


def load_audiomae(cfg, weights: str | Path):
    """The AudioMAE of `encoder.ckpt` under `weights` (strict: every `audiomae.*` key, by name and shape)."""
    import torch

    from bench.codecs import weights as W
    from bench.codecs.semanticodec.audiomae import AudioMAE
    from bench.codecs.semanticodec.weights import CheckpointMismatchError, check_state_dict

    path = find_encoder_checkpoint(weights, cfg.token_rate)
    W.verify_files([path])
    state = W.load_checkpoint(path, mmap=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict) and len(state) <= 3:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointMismatchError(f"{path}: expected a plain state_dict, got {type(state).__name__}")
    with torch.device("meta"):
        mae = AudioMAE(cfg)
    expected = {f"audiomae.{k}": v for k, v in mae.state_dict().items()}
    found = {k: v for k, v in state.items() if k.startswith("audiomae.")}
    cls = found.get("audiomae.model.cls_token")
    if cls is not None and int(cls.shape[-1]) != cfg.mae_dim:  # a tiny checkpoint without --tiny, or the reverse
        fix = "pass --tiny (tiny weights)" if int(cls.shape[-1]) < cfg.mae_dim else "drop --tiny"
        raise CheckpointMismatchError(f"{path}: its AudioMAE is {int(cls.shape[-1])} wide, the configured one "
                                      f"{cfg.mae_dim}: {fix}")
    check_state_dict(found, expected, "AudioMAE of the encoder checkpoint", path)
    mae.load_state_dict({k[len("audiomae."):]: v for k, v in found.items()}, strict=True, assign=True)
    log.info("AudioMAE loaded from %s", path)
    return mae.eval().requires_grad_(False)


def random_audiomae(cfg, seed: int = 0):
    """A random-init AudioMAE (module defaults; CLS, mask and position tables N(0, 0.02)), from `seed`."""
    import torch

    from bench.codecs.semanticodec.audiomae import AudioMAE

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        mae = AudioMAE(cfg)
        with torch.no_grad():
            m = mae.model
            for p in (m.cls_token, m.pos_embed, m.mask_token, m.decoder_pos_embed):
                p.normal_(0, 0.02)
    return mae.eval().requires_grad_(False)


def audiomae_digest(mae) -> str:
    """sha256 (24 hex digits) over the names, shapes and bytes of the AudioMAE tensors that features use
    (the MAE decoder, never run, is left out): a new encoder.ckpt with the same AudioMAE keeps the cache."""
    h = hashlib.sha256()
    for key, value in sorted(mae.state_dict().items()):
        if key.startswith(("model.decoder", "model.mask_token")):
            continue
        arr = np.ascontiguousarray(value.detach().cpu().float().numpy())
        h.update(f"{key}|{tuple(arr.shape)}|".encode())
        h.update(memoryview(arr).cast("B"))
    return h.hexdigest()[:24]


class FeatureExtractor:
    """Normalised fbank windows `[n, 1024, 128]` -> stacked AudioMAE features `[n, W, F]` (float32, numpy).

    `batch_size` windows go through AudioMAE at a time (they may come from several items)."""

    def __init__(self, audiomae, cfg, device: str = "cpu", batch_size: int = 16):
        import torch

        if int(batch_size) < 1:
            raise FeatureError(f"batch size must be at least 1 window, got {batch_size}")
        self.cfg = cfg
        self.device = torch.device(device)
        self.audiomae = audiomae.to(self.device)
        self.batch_size = int(batch_size)

    @property
    def feature_dim(self) -> int:
        return self.cfg.feature_dim

    @property
    def rows_per_window(self) -> int:
        return self.cfg.window_tokens

    def __call__(self, windows) -> np.ndarray:
        import torch

        from bench.codecs.semanticodec.audiomae import stack_patches

        with torch.inference_mode():
            feats = stack_patches(self.audiomae(windows.to(self.device)), self.cfg.stack, self.cfg.grid)
            return feats.float().cpu().numpy()


# -- audio -> fbank windows ----------------------------------------------------------------------------------


def prepare_audio(item) -> np.ndarray:
    """An item's audio as the codec sees it: float32 `[T]` mono (channel mean) at 16 kHz, checked
    (AudioError naming the item for NaN/Inf, silence, or less than one 0.16 s patch)."""
    from bench.audio import check, resample
    from bench.codecs.semanticodec import config as C

    data, sr = item.load()
    mono = np.asarray(data, dtype=np.float32)
    mono = mono.mean(axis=0, keepdims=True) if mono.ndim == 2 else mono[None]
    if sr != C.SAMPLE_RATE:
        mono = resample(mono, int(sr), C.SAMPLE_RATE)
    item.release()
    check(mono, C.SAMPLE_RATE, min_seconds=C.PATCH_SECONDS, name=f"item {item.id}")
    return np.ascontiguousarray(mono[0])


def fbank_windows(wave: np.ndarray, chunk_segments: int = 16, device: str = "cpu") -> Iterator:
    """16 kHz mono `[T]` -> its normalised AudioMAE input, `chunk_segments` windows at a time: tensors
    `[c, 1024, 128]` that together equal `semanticodec_fbank` of the whole item (same padding, global mean,
    zero rows for the 2 frames Kaldi does not produce at the end, normalisation)."""
    import torch

    from bench.codecs.semanticodec.fbank import AUDIOMAE_MEAN, AUDIOMAE_STD, kaldi_fbank, n_segments

    n = int(wave.shape[-1])
    segs = n_segments(n, SEGMENT)
    padded = torch.zeros(segs * SEGMENT, device=device)
    padded[:n] = torch.as_tensor(wave, dtype=torch.float32, device=device)
    padded = padded - padded.mean()  # the official code centres the whole padded file, its zeros included
    frames = SEGMENT // FRAME_SHIFT  # 1024 per window
    tail = FRAME_LENGTH - FRAME_SHIFT  # samples the last frames of a window read from the next one
    for s0 in range(0, segs, max(1, int(chunk_segments))):
        c = min(int(chunk_segments), segs - s0)
        piece = padded[s0 * SEGMENT: min((s0 + c) * SEGMENT + tail, padded.shape[0])]
        fb = kaldi_fbank(piece.unsqueeze(0))[0]  # [c * 1024 (or 2 fewer at the end), 128]
        out = fb.new_zeros(c * frames, fb.shape[-1])
        m = min(fb.shape[0], c * frames)
        out[:m] = fb[:m]
        yield ((out - AUDIOMAE_MEAN) / (AUDIOMAE_STD * 2)).reshape(c, frames, -1)


# -- the cache -----------------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """`$BENCH_HOME/cache/train/semanticodec-features` (default `~/.cache/bench/...`)."""
    from bench.codecs.weights import bench_home

    return bench_home() / "cache" / "train" / "semanticodec-features"


class FeatureCache:
    """Per-item feature files `[N_i, F]` float32 under `root`, keyed by content and model (module docstring)."""

    def __init__(self, root: str | Path, context: dict[str, Any]):
        self.root = Path(root).expanduser()
        self.context = json.dumps(context, sort_keys=True)

    def key(self, item) -> str:
        # the id as well as the path: several items may read one file (segment=S windows, MUSDB stems)
        where = str(Path(item.path).expanduser().resolve()) if item.path is not None else "memory"
        return hashlib.sha256(f"{self.context}\n{where}\n{item.id}\n{item.signature()}".encode()).hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npy"

    def rows(self, key: str, dim: int) -> int | None:
        """Rows of the cached file of `key`, None if absent (a damaged or mis-shaped file is removed)."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            arr = np.load(path, mmap_mode="r")
            if arr.ndim == 2 and arr.shape[1] == dim and arr.dtype == np.float32:
                return int(arr.shape[0])
        except (OSError, ValueError) as err:
            log.warning("feature cache %s unreadable (%s): extracting again", path, err)
        path.unlink(missing_ok=True)
        return None

    def writer(self, key: str, rows: int, dim: int) -> "_ItemWriter":
        return _ItemWriter(self.path(key), rows, dim)


class _ItemWriter:
    """Rows of one item written in order into a memory-mapped temporary `.npy`, renamed into place at commit."""

    def __init__(self, final: Path, rows: int, dim: int):
        final.parent.mkdir(parents=True, exist_ok=True)
        self.final = final
        self.tmp = final.with_name(f"{final.stem}.tmp-{os.getpid()}.npy")
        self.rows = int(rows)
        self.filled = 0
        self.windows_left = 0
        self._mm = np.lib.format.open_memmap(self.tmp, mode="w+", dtype=np.float32, shape=(self.rows, dim))

    def add(self, feats: np.ndarray) -> None:
        """Window features `[c, W, F]` (in order); rows past the item's token count are dropped."""
        flat = feats.reshape(-1, feats.shape[-1])
        take = min(len(flat), self.rows - self.filled)
        self._mm[self.filled: self.filled + take] = flat[:take]
        self.filled += take
        self.windows_left -= feats.shape[0]

    def commit(self) -> None:
        self._mm.flush()
        del self._mm
        os.replace(self.tmp, self.final)

    def abort(self) -> None:
        self._mm = None
        self.tmp.unlink(missing_ok=True)


class _Batcher:
    """Collects fbank windows of several items into AudioMAE batches and hands each item its rows back."""

    def __init__(self, extractor: FeatureExtractor, on_done: Callable[[_ItemWriter], None]):
        self.extractor = extractor
        self.on_done = on_done
        self.parts: list[tuple[_ItemWriter, Any]] = []
        self.pending = 0
        self.open: set[_ItemWriter] = set()
        self.model_seconds = 0.0

    def add(self, writer: _ItemWriter, windows) -> None:
        self.open.add(writer)
        while windows.shape[0]:
            take = min(self.extractor.batch_size - self.pending, windows.shape[0])
            self.parts.append((writer, windows[:take]))
            self.pending += take
            windows = windows[take:]
            if self.pending >= self.extractor.batch_size:
                self.flush()

    def flush(self) -> None:
        if not self.parts:
            return
        import torch

        t0 = time.perf_counter()
        feats = self.extractor(torch.cat([w for _, w in self.parts]))
        self.model_seconds += time.perf_counter() - t0
        start = 0
        for writer, w in self.parts:
            writer.add(feats[start: start + w.shape[0]])
            start += w.shape[0]
            if writer.windows_left == 0:
                writer.commit()
                self.open.discard(writer)
                self.on_done(writer)
        self.parts, self.pending = [], 0

    def abort(self) -> None:
        for writer in self.open:
            writer.abort()
        self.open.clear()


# -- the pass ------------------------------------------------------------------------------------------------


@dataclass
class FeatureSet:
    """The features of a set of items: one `[N_i, F]` float32 file per item, in the items' order."""

    dim: int
    files: list[Path] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    cached: int = 0  # items read from the cache
    extracted: int = 0  # items run through AudioMAE
    failures: list[tuple[str, str]] = field(default_factory=list)  # (item id, error)
    extracted_seconds: float = 0.0  # seconds of audio (16 kHz, unpadded) run through AudioMAE
    wall_seconds: float = 0.0  # wall time of the pass
    model_seconds: float = 0.0  # of which in AudioMAE

    @property
    def n_vectors(self) -> int:
        return int(sum(self.rows))

    def item(self, i: int) -> np.ndarray:
        """Item i's features `[N_i, F]` (memory-mapped, read only)."""
        return np.load(self.files[i], mmap_mode="r")

    def gather(self, out: np.ndarray, indices: np.ndarray | None = None, chunk: int = 65536) -> np.ndarray:
        """Copy rows into `out` `[M, F]` (an array or a memmap), all rows in order or the sorted global
        `indices`, a chunk at a time (memory stays at `chunk` rows)."""
        pos, offset = 0, 0
        for i, n in enumerate(self.rows):
            mm = self.item(i)
            if indices is None:
                local = None
                count = n
            else:
                lo, hi = np.searchsorted(indices, [offset, offset + n])
                local = indices[lo:hi] - offset
                count = len(local)
            for s in range(0, count, chunk):
                rows = mm[s: s + chunk] if local is None else mm[local[s: s + chunk]]
                out[pos: pos + len(rows)] = rows
                pos += len(rows)
            offset += n
        if pos != len(out):
            raise RuntimeError(f"gathered {pos} rows into an array of {len(out)}")  # a bug, not bad input
        return out


def _prefetch(pool: ThreadPoolExecutor, entries: list, load: Callable) -> Iterator:
    """(entry, future of load(entry's item)) in order, keeping PREFETCH loads running ahead."""
    queue: deque = deque()
    it = iter(entries)
    for entry in it:
        queue.append((entry, pool.submit(load, entry[0])))
        if len(queue) >= PREFETCH:
            break
    while queue:
        entry, fut = queue.popleft()
        nxt = next(it, None)
        if nxt is not None:
            queue.append((nxt, pool.submit(load, nxt[0])))
        yield entry, fut


def extract_features(items: Iterable, extractor: FeatureExtractor, cache: FeatureCache,
                     progress: ProgressFactory | None = None) -> FeatureSet:
    """The stacked AudioMAE features of every item, from the cache or computed (and cached).

    An item that cannot be read, is silent or shorter than 0.16 s is recorded in `failures` (with a warning)
    and left out; the others go on."""
    from bench.audio import AudioError
    from bench.codecs.semanticodec.codec import token_count
    from bench.codecs.semanticodec.fbank import n_segments

    items = list(items)
    t0 = time.perf_counter()
    dim, rate = extractor.feature_dim, extractor.cfg.token_rate
    slots: list[tuple[str, Path, int] | None] = [None] * len(items)
    fs = FeatureSet(dim=dim)
    bar = progress(len(items), "AudioMAE features") if progress else None

    def tick():
        if bar is not None:
            bar.update(1)

    todo = []
    for i, item in enumerate(items):
        key = cache.key(item)
        rows = cache.rows(key, dim)
        if rows is None:
            todo.append((item, key, i))
        else:
            slots[i] = (item.id, cache.path(key), rows)
            fs.cached += 1
            tick()
    if fs.cached:
        log.info("features of %d of %d items read from the cache %s", fs.cached, len(items), cache.root)

    owner: dict[int, tuple[int, str]] = {}

    def done(writer: _ItemWriter) -> None:
        i, item_id = owner.pop(id(writer))
        slots[i] = (item_id, writer.final, writer.rows)
        fs.extracted += 1
        tick()

    batcher = _Batcher(extractor, done)
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-train-audio") as pool:
            for (item, key, i), fut in _prefetch(pool, todo, prepare_audio):
                try:
                    wave = fut.result()
                except (AudioError, OSError) as err:
                    fs.failures.append((item.id, str(err)))
                    log.warning("skipped: %s", err)
                    tick()
                    continue
                n = int(wave.shape[-1])
                writer = cache.writer(key, token_count(n, rate), dim)
                writer.windows_left = n_segments(n, SEGMENT)
                owner[id(writer)] = (i, item.id)
                fs.extracted_seconds += n / 16000
                for windows in fbank_windows(wave, extractor.batch_size, extractor.device):
                    batcher.add(writer, windows)
            batcher.flush()
    except BaseException:
        batcher.abort()
        raise
    finally:
        if bar is not None:
            bar.close()
    for slot in slots:
        if slot is not None:
            fs.ids.append(slot[0])
            fs.files.append(slot[1])
            fs.rows.append(slot[2])
    fs.wall_seconds = time.perf_counter() - t0
    fs.model_seconds = batcher.model_seconds
    return fs


def cache_context(mae, cfg) -> dict[str, Any]:
    """What, besides the item, decides the rows: code versions, token rate, the AudioMAE weights."""
    from bench.codecs.semanticodec.codec import SemantiCodec

    return {"features": FEATURES_VERSION, "semanticodec": SemantiCodec.code_version, "token_rate": cfg.token_rate,
            "feature_dim": cfg.feature_dim, "audiomae": audiomae_digest(mae)}
