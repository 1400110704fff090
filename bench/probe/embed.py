"""Embedders for the probe: what turns one clip into frames `[N, D]` before time pooling.

Three kinds, named in every result's metadata (`embedding_kind`):

- "logmel": the reference row. Log-mel of the UNCODED audio: mono, 16 kHz, 25 ms Hann windows
  (400 samples, FFT 512) every 10 ms, 64 HTK mel bands 0-8 kHz, log(power + 1e-6).
- "codec-latent": the codec's own `embed(wav)` -> `[1, N, D]` (wav `[1, C, T]` at codec.meta.sample_rate).
- "decoded-logmel": for codecs without `embed()` (opus, mp3, codec2, identity): the same log-mel of the
  codec's DECODED audio, so weight-free codecs get an accuracy that drops when coding destroys
  information. Not comparable with "codec-latent" rows: different features, same probe.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import numpy as np

from bench import audio as au

log = logging.getLogger(__name__)

POOLINGS = ("mean", "meanstd")
EMBEDDING_KINDS = ("logmel", "codec-latent", "decoded-logmel")

# item -> (decoded audio float32 [C, T], its sample rate); see bench/metrics/probe.py
EncodeDecode = Callable[[Any], "tuple[np.ndarray, int]"]


def pool(frames: np.ndarray, pooling: str = "mean") -> np.ndarray:
    """`[N, D]` frames -> `[D]` (mean over time) or `[2D]` (mean then std, population std)."""
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim != 2 or frames.shape[0] == 0:
        raise ValueError(f"expected frames [N>0, D], got shape {frames.shape}")
    if pooling == "mean":
        out = frames.mean(axis=0)
    elif pooling == "meanstd":
        out = np.concatenate([frames.mean(axis=0), frames.std(axis=0)])
    else:
        raise ValueError(f"unknown pooling {pooling!r}; use one of {', '.join(POOLINGS)}")
    return out.astype(np.float32)


def mel_filterbank(n_mels: int, n_fft: int, sample_rate: int, fmin: float = 0.0,
                   fmax: float | None = None) -> np.ndarray:
    """HTK-scale triangular mel filters `[n_mels, n_fft // 2 + 1]` (peak 1, no area normalisation)."""
    fmax = sample_rate / 2 if fmax is None else fmax
    hz_to_mel = lambda f: 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)  # noqa: E731
    mel_to_hz = lambda m: 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)  # noqa: E731
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None] - lower) / (centre - lower)
    falling = (upper - freqs[None]) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling))


class LogMel:
    """Log-mel frames of a clip. `frames(audio [C, T], sample_rate) -> [N, n_mels]` at 100 frames/s."""

    kind = "logmel"

    def __init__(self, n_mels: int = 64, sample_rate: int = 16000, win_ms: float = 25.0, hop_ms: float = 10.0,
                 n_fft: int = 512):
        self.n_mels, self.sample_rate, self.n_fft = n_mels, sample_rate, n_fft
        self.win = int(round(sample_rate * win_ms / 1000))
        self.hop = int(round(sample_rate * hop_ms / 1000))
        if self.win > n_fft:
            raise ValueError(f"window {self.win} samples is longer than n_fft {n_fft}")
        self._fb = mel_filterbank(n_mels, n_fft, sample_rate).astype(np.float32)

    @property
    def name(self) -> str:
        return f"logmel{self.n_mels}@{self.sample_rate // 1000}k"

    def frames(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        import torch

        x = au.to_channels(np.asarray(audio, dtype=np.float32), 1)
        x = au.resample(x, sample_rate, self.sample_rate)[0]
        if len(x) < self.win:  # too short for one window: pad so every clip yields a frame
            x = np.pad(x, (0, self.win - len(x)))
        from bench.probe.mlp import torch_threads

        pad_mode = "reflect" if len(x) > self.n_fft // 2 else "constant"  # reflect needs T > n_fft/2
        with torch_threads(1):
            window = torch.hann_window(self.win, periodic=True)
            spec = torch.stft(torch.from_numpy(np.ascontiguousarray(x)), n_fft=self.n_fft, hop_length=self.hop,
                              win_length=self.win, window=window, center=True, pad_mode=pad_mode,
                              return_complex=True)
            mel = torch.from_numpy(self._fb) @ spec.abs().pow(2)  # [n_mels, N]
            return torch.log(mel + 1e-6).T.contiguous().numpy()

    def describe(self) -> dict[str, Any]:
        return {"embedder": self.name, "embedding_kind": self.kind}


def _codec_input(codec, audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
    """`[C, T]` at sample_rate -> `[C', T']` at the codec's rate and channel count ("input" keeps them)."""
    rate = getattr(codec.meta, "sample_rate", None)
    channels = getattr(codec.meta, "channels", None)
    rate = rate if isinstance(rate, int) and rate > 0 else sample_rate
    x = np.asarray(audio, dtype=np.float32)
    if isinstance(channels, int) and channels > 0:
        x = au.to_channels(x, channels)
    return au.resample(x, sample_rate, rate), rate


def codec_roundtrip(codec, audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
    """Encode then decode one clip `[C, T]`; returns the decoded `[C', T']` and the codec's rate."""
    import torch

    x, rate = _codec_input(codec, audio, sample_rate)
    wav = torch.from_numpy(np.ascontiguousarray(x))[None]
    with torch.no_grad():
        if getattr(codec.meta, "sample_rate", None) is None:  # rate-agnostic (identity): tell it the rate
            rec = codec.decode(codec.encode(wav, sample_rate=rate))
        else:
            rec = codec.decode(codec.encode(wav))
    rec = rec[0].detach().cpu().numpy().astype(np.float32)
    return au.fit_length(rec, x.shape[-1]), rate


class DecodedLogMel:
    """Log-mel of a codec's decoded audio. `encode_decode(item)` may supply the decoded audio instead."""

    kind = "decoded-logmel"

    def __init__(self, codec, encode_decode: EncodeDecode | None = None, logmel: LogMel | None = None):
        self.codec, self.encode_decode = codec, encode_decode
        self.logmel = logmel or LogMel()

    @property
    def name(self) -> str:
        return f"{getattr(self.codec, 'label', 'codec')}/{self.logmel.name}"

    def item_frames(self, item) -> np.ndarray:
        if self.encode_decode is not None:
            rec, rate = self.encode_decode(item)
        else:
            audio, sr = item.load()
            rec, rate = codec_roundtrip(self.codec, audio, sr)
        return self.logmel.frames(rec, rate)

    def describe(self) -> dict[str, Any]:
        return {"embedder": self.name, "embedding_kind": self.kind}


class CodecLatent:
    """The codec's `embed()` output (the quantised latent), frames `[N, D]`."""

    kind = "codec-latent"

    def __init__(self, codec):
        self.codec = codec
        self.batch = max(1, int(getattr(codec, "batch_items", 1)))  # items per `embed_items` call

    @property
    def name(self) -> str:
        return f"{getattr(self.codec, 'label', 'codec')}/embed"

    def item_frames(self, item) -> np.ndarray:
        import torch

        audio, sr = item.load()
        x, _ = _codec_input(self.codec, audio, sr)
        with torch.no_grad():
            emb = self.codec.embed(torch.from_numpy(np.ascontiguousarray(x))[None])
        if emb.ndim != 3 or emb.shape[0] != 1:
            raise ValueError(f"{self.name}: embed() returned shape {tuple(emb.shape)}, expected [1, N, D]")
        return emb[0].detach().float().cpu().numpy()

    def items_frames(self, items: list) -> list:
        """Frames `[N_i, D]` of several items from one `codec.embed_items` call; per item the array or the
        error. Items that do not load fail alone; if the batch raises, each item is embedded alone."""
        import torch

        out: list = [None] * len(items)
        ready = []
        for k, item in enumerate(items):
            try:
                audio, sr = item.load()
                au.check(audio, sr, name=f"item {item.id}")  # empty, NaN or silent: fails alone, not the batch
                ready.append((k, torch.from_numpy(np.ascontiguousarray(_codec_input(self.codec, audio, sr)[0]))))
            except Exception as err:  # noqa: BLE001 - this item's failure
                out[k] = err
        try:
            with torch.no_grad():
                embs = self.codec.embed_items([x for _, x in ready]) if len(ready) > 1 else None
        except Exception:  # noqa: BLE001 - find the item at fault by running them alone
            log.debug("probe: batched embed failed; embedding items one by one", exc_info=True)
            embs = None
        for j, (k, _) in enumerate(ready):
            if embs is not None:
                out[k] = embs[j].detach().float().cpu().numpy()
                continue
            try:
                out[k] = self.item_frames(items[k])
            except NotImplementedError:
                raise
            except Exception as err:  # noqa: BLE001
                out[k] = err
        return out

    def describe(self) -> dict[str, Any]:
        return {"embedder": self.name, "embedding_kind": self.kind}


class ReferenceLogMel(LogMel):
    """LogMel with the item interface (`item_frames`), for the uncoded reference row."""

    def item_frames(self, item) -> np.ndarray:
        audio, sr = item.load()
        return self.frames(audio, sr)


def has_embed(codec) -> bool:
    """True if the codec has a usable `embed()`.

    A class that does not override `Codec.embed` has none; one that overrides it only to raise
    NotImplementedError (the classic codecs) is found out by embedding 0.1 s of faint noise.
    """
    import torch

    from bench.codecs.base import Codec

    if getattr(type(codec), "embed", None) is getattr(Codec, "embed"):
        return False
    cached = getattr(codec, "_probe_has_embed", None)
    if cached is not None:
        return cached
    rate = getattr(codec.meta, "sample_rate", None) or 16000
    channels = getattr(codec.meta, "channels", None) or 1
    noise = 1e-3 * torch.randn(1, channels, rate // 10, generator=torch.Generator().manual_seed(0))
    try:
        with torch.no_grad():
            codec.embed(noise)
        found = True
    except NotImplementedError:
        found = False
    except Exception:  # noqa: BLE001 - it has an embed(); a real item will report the real error
        found = True
    try:
        codec._probe_has_embed = found
    except AttributeError:
        pass
    return found


def make_embedder(codec_or_embedder=None, encode_decode: EncodeDecode | None = None, embedding: str = "auto"):
    """Resolve what to embed with.

    None or "logmel" -> the uncoded log-mel reference; an object with `item_frames` -> itself; a codec
    (or a codec spec string for `bench.load_codec`) -> "codec-latent" if it has `embed()` and
    embedding is "auto" or "latent", else "decoded-logmel".
    """
    if codec_or_embedder is None or codec_or_embedder == "logmel":
        return ReferenceLogMel()
    if hasattr(codec_or_embedder, "item_frames"):
        return codec_or_embedder
    codec = codec_or_embedder
    if isinstance(codec, str):
        import bench

        codec = bench.load_codec(codec)
    if embedding not in ("auto", "latent", "decoded"):
        raise ValueError(f"unknown embedding {embedding!r}; use auto, latent or decoded")
    if embedding == "latent" and not has_embed(codec):
        raise ValueError(f"codec {codec!r} has no embed(); use embedding=decoded (log-mel of decoded audio)")
    if embedding == "decoded" or not has_embed(codec):
        return DecodedLogMel(codec, encode_decode)
    return CodecLatent(codec)
