"""`SemantiCodec`: the bench Codec wrapping our encoder and latent-diffusion decoder.

Audio in: float32 `[B, C, T]` at any sample rate (resampled to 16 kHz with soxr, channels averaged to
mono; the official code keeps channel 0 only). Codes out: int64 `[B, 2, N]` (semantic, acoustic), -1
past each item's own end; `official_tokens` gives the official `[B, N, 2]` layout. Decoded audio:
float32 `[B, 1, T]` at 16 kHz, trimmed to each item's input length.

What the official pipeline does and we reproduce (documented quirks included):
* encode: each item is zero-padded to whole 10.24 s segments, always adding at least one sample (an
  input that is an exact multiple gains a silent segment); its token count is
  N = ceil(8 D' / 0.16 / K) with D' = D + (0.16 - D mod 0.16) (duration rounded up, always adding).
* decode: tokens are cut into windows of W = 512/K with an overlap of int(W * 0.0625); each window is
  right-padded with -1 rows, decoded to 163 872 samples (HiFi-GAN gives 32 more than 10.24 s), and
  windows are cross-faded over 10 240 samples with numpy's float64 linspace ramps; because each window
  is 163 872 long, later windows land +32 samples late. The result is trimmed to N/8 * 0.16 * K s.
Batching: the windows of all items go through the encoder and the decoder's UNet together (`batch_size`
windows at a time; by default 16 in the encoder and 8 in the decoder, which bounds memory on long
files; on CPU the VAE and vocoder then take one window at a time, which is faster there), under
`torch.inference_mode`. `bench run` passes 8 items per call (`batch_items`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

import numpy as np
import torch

from bench.audio import check, resample
from bench.codecs import weights as W
from bench.codecs.base import Codec, CodecError, CodecMeta, Encoded, OperatingPoint

from . import config as C
from .encoder import SemantiCodecEncoder
from .fbank import semanticodec_fbank

log = logging.getLogger(__name__)

_AUTOCAST = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}
ENCODE_BATCH, DECODE_BATCH = 16, 8  # default windows per forward pass (memory bound on long files)
OVERLAP_SAMPLES = int(C.SEGMENT_SECONDS * C.OVERLAP_RATIO * C.SAMPLE_RATE)  # 10240 (0.64 s)


def token_count(n_samples: int, token_rate: int) -> int:
    """Official N for a 16 kHz signal of `n_samples` (same float operations as `load_audio`)."""
    k = 100 / token_rate
    duration = n_samples / C.SAMPLE_RATE
    duration = duration + (C.PATCH_SECONDS - duration % C.PATCH_SECONDS)
    return math.ceil(8 * duration / C.PATCH_SECONDS / k)


def output_samples(n_tokens: int, token_rate: int) -> int:
    """Official decoded length in samples for N tokens: N/8 * 16 frames * 10 ms * K."""
    k = 100 / token_rate
    return int((n_tokens / 8) * 16 * 0.01 * k * C.SAMPLE_RATE)


def split_windows(n_tokens: int, window: int, overlap_ratio: float = C.OVERLAP_RATIO) -> list[tuple[int, int]]:
    """Official token windowing: [start, end) pairs of length W, hop W - int(W * ratio), remainder last."""
    overlap = int(window * overlap_ratio)
    spans, start = [], 0
    while start + window < n_tokens:
        spans.append((start, start + window))
        start += window - overlap
    if n_tokens - start > 0:
        spans.append((start, n_tokens))
    return spans


def overlap_add(windows: np.ndarray, overlap: int = OVERLAP_SAMPLES) -> np.ndarray:
    """Cross-fade `[n, L]` float32 windows -> `[(n-1)(L-overlap) + L]`, exactly as the official numpy code
    (float64 linspace ramps multiplied into float32 arrays)."""
    out = windows[0].copy()
    for w in windows[1:]:
        w = w.copy()
        w[:overlap] *= np.linspace(0, 1, overlap)
        out[-overlap:] *= np.linspace(1, 0, overlap)
        out[-overlap:] += w[:overlap]
        out = np.concatenate([out, w[overlap:]])
    return out


def official_tokens(enc_or_codes: Encoded | torch.Tensor) -> torch.Tensor:
    """Our codes `[B, 2, N]` (or an Encoded) -> the official layout `[B, N, 2]`."""
    codes = enc_or_codes.codes if isinstance(enc_or_codes, Encoded) else enc_or_codes
    return codes.transpose(1, 2).contiguous()


class SemantiCodec(Codec):
    """SemantiCodec (Liu et al. 2024): AudioMAE semantic tokens + BiLSTM/VQ acoustic tokens, latent-diffusion decoder.

    Options: token_rate (25/50/100 tokens/s, both streams counted), vocab (4096/8192/16384/32768 semantic
    k-means entries), sampler ("ddim": the official DDIM; "dpmpp-2m" / "unipc": diffusers' DPM-Solver++(2M) and
    UniPC ODE solvers on the same timesteps, see samplers.py), ddim_steps (50; alias `steps`), cfg_scale (2.0),
    eta (DDIM only: 1.0 by default; the ODE solvers take 0), weights (directory in the official
    Hugging Face layout; default the cache filled by `bench weights fetch semanticodec`), tiny (a tiny
    random-weight model for tests and demos; with weights=DIR it loads tiny weights saved by
    `weights.save_official`), pretrained (False: random weights at full size), device,
    seed (random init and default decode noise), batch_size (windows per forward pass; None: 16 encoding, 8 decoding),
    precision (None/"fp32": bit-faithful to the official float32 code; "bf16"/"fp16": autocast in AudioMAE,
    the BiLSTM and the decoder, nearest-neighbour searches kept in float32 - faster on CPUs with AVX-512
    BF16 and on GPUs, not identical: at rate 100 ~99 % of tokens equal and the decoded window within
    ~7e-4 of float32 (peak 0.05), measured with random weights).
    """

    name = "semanticodec"
    code_version = "2"  # 2: sampler option (ddim | dpmpp-2m | unipc) in options and label
    mixes_channels = True  # channels are averaged to mono
    batch_items = 8  # items per runner call: their windows share the BiLSTM and UNet batches

    def __init__(self, token_rate: int = 100, vocab: int = 16384, ddim_steps: int = 50, cfg_scale: float = 2.0,
                 eta: float | None = None, weights: str | None = None, tiny: bool = False, pretrained: bool = True,
                 device: str = "cpu", seed: int = 0, batch_size: int | None = None, precision: str | None = None,
                 sampler: str = "ddim", steps: int | None = None):
        try:
            self.cfg = C.get_config(int(token_rate), int(vocab), tiny=bool(tiny))
        except ValueError as err:
            raise CodecError(str(err)) from None
        if steps is not None:  # alias of ddim_steps (the step count of every sampler)
            if ddim_steps not in (50, steps):
                raise CodecError(f"semanticodec: steps={steps} and ddim_steps={ddim_steps} disagree; give one of them")
            ddim_steps = steps
        self._check_steps(ddim_steps)
        self.sampler, eta = self._check_sampler(sampler, eta)
        self.token_rate, self.vocab = self.cfg.token_rate, self.cfg.vocab
        self.ddim_steps, self.cfg_scale, self.eta = int(ddim_steps), float(cfg_scale), float(eta)
        self.seed, self.batch_size, self.precision = int(seed), batch_size, precision
        self.device = torch.device(device)
        random_weights = bool(tiny) or not pretrained
        self.options: dict[str, Any] = {
            "token_rate": self.token_rate, "vocab": self.vocab, "ddim_steps": self.ddim_steps,
            "cfg_scale": self.cfg_scale, "eta": self.eta, "sampler": self.sampler,
        }
        if tiny:
            self.options["tiny"] = True
        if random_weights:
            self.options.update(pretrained=False, seed=self.seed)
        elif self.seed != 0:  # the seed draws the decoder's noise with loaded weights too (0: the default, unshown)
            self.options["seed"] = self.seed
        if weights is not None:
            self.options["weights"] = str(weights)
        if precision not in (None, "fp32", "float32"):
            if precision not in _AUTOCAST:
                raise CodecError(f"precision must be fp32, bf16 or fp16, got {precision!r}")
            self.options["precision"] = self.precision_name  # one spelling per dtype: bfloat16 -> bf16
        self.meta = CodecMeta(
            name=self.name, sample_rate=C.SAMPLE_RATE, channels=1,
            operating_points=tuple(p.kbps for p in self.operating_points()),
            frame_rate=self.token_rate / 2, needs_weights=not random_weights,
            licence="MIT (official code); weights: see huggingface.co/haoheliu/SemantiCodec",
            paper="arXiv:2405.00233", random_weights=random_weights,
            codebook_sizes=(self.vocab, self.cfg.encoder.codebook_size),  # semantic k-means, acoustic VQ
        )
        self._digest = "random" if random_weights else None
        # tiny models are random unless a directory of (tiny) weights is given, e.g. one written by save_official
        load = weights is not None or not random_weights
        self.encoder, self.decoder = self._build(weights, random_weights, load)

    # -- construction -----------------------------------------------------------------------------

    def _check_steps(self, ddim_steps) -> int:
        from .ddim import ddim_timesteps

        try:
            ddim_timesteps(int(ddim_steps), self.cfg.decoder.timesteps)
        except (ValueError, TypeError) as err:
            raise CodecError(f"semanticodec: {err}") from None
        return int(ddim_steps)

    @staticmethod
    def _check_sampler(sampler, eta) -> tuple[str, float]:
        """(canonical sampler name, eta): eta None -> 1.0 for ddim (official default), 0.0 for the ODE solvers."""
        from .samplers import ODE_SAMPLERS, check_sampler

        try:
            name = check_sampler(sampler)
        except ValueError as err:
            raise CodecError(f"semanticodec: {err}") from None
        if eta is None:
            return name, 0.0 if name in ODE_SAMPLERS else 1.0
        if name in ODE_SAMPLERS and float(eta) != 0.0:
            raise CodecError(f"semanticodec: eta={eta} applies to sampler=ddim only; {name} is an ODE solver (eta=0)")
        return name, float(eta)

    def _build(self, weights, random_weights: bool, load: bool):
        from .decoder import LatentDiffusionDecoder
        from .weights import load_official

        if load:
            # shapes only, then every tensor comes from the files (strict): no time spent on a random init
            with torch.device("meta"):
                encoder = SemantiCodecEncoder(self.cfg.encoder)
                decoder = LatentDiffusionDecoder(self.cfg.decoder)
            encoder.to_empty(device="cpu")
            decoder.to_empty(device="cpu")
            self._weight_files = load_official(encoder, decoder, self.cfg, weights)
            self._digest = None
            if W.is_random(self._weight_files.encoder):  # from `bench weights random`: label every result
                self.meta = dataclasses.replace(self.meta, random_weights=True)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                encoder = SemantiCodecEncoder(self.cfg.encoder)
                decoder = LatentDiffusionDecoder(self.cfg.decoder)
                randomise(encoder, decoder)
        encoder.eval().requires_grad_(False)
        decoder.eval().requires_grad_(False)
        return encoder.to(self.device), decoder.to(self.device)

    @classmethod
    def operating_points(cls) -> list[OperatingPoint]:
        points = [
            OperatingPoint(C.bitrate(r, v) / 1000, {"token_rate": r, "vocab": v}, f"token_rate={r},vocab={v}")
            for r in C.TOKEN_RATES for v in C.VOCABS
        ]
        return sorted(points, key=lambda p: p.kbps)

    @classmethod
    def weights_available(cls, token_rate: int | None = None, vocab: int | None = None, weights=None) -> bool:
        """Are the official files of this point (default: of any point) present in `weights` (default: the cache)?"""
        from .weights import weights_available

        rates = [token_rate] if token_rate else list(C.TOKEN_RATES)
        vocabs = [vocab] if vocab else list(C.VOCABS)
        return any(weights_available(r, v, weights) for r in rates for v in vocabs)

    def to(self, device: str) -> "SemantiCodec":
        self.device = torch.device(device)
        self.encoder.to(self.device)
        self.decoder.to(self.device)
        return self

    def weights_digest(self) -> str:
        """16 hex digits of the sha256 over the three weight files' names and contents (each file hashed once
        per version on disk, `bench.codecs.digests`); "random" for random weights."""
        if self._digest is None:
            from bench.codecs.digests import files_digest

            files = (self._weight_files.encoder, self._weight_files.decoder, self._weight_files.codebook)
            self._digest = files_digest(files)[:16]
        return self._digest

    # -- audio in ---------------------------------------------------------------------------------

    def _prepare(self, wav, sample_rate: int | None, lengths) -> tuple[torch.Tensor, list[int]]:
        """`[B, C, T]` at sample_rate -> (`[B, T16]` mono at 16 kHz, valid lengths at 16 kHz); checks each item."""
        x = self.check_input(wav, lengths)  # dtype, layout, NaN/Inf, absurd levels (each names the item)
        sr = int(sample_rate or C.SAMPLE_RATE)
        b, _, t = x.shape
        lengths = [t] * b if lengths is None else [int(n) for n in lengths]
        items = []
        for i in range(b):
            a = x[i, :, : lengths[i]].detach().to("cpu", torch.float32).numpy().mean(axis=0, keepdims=True)
            a = resample(a, sr, C.SAMPLE_RATE) if sr != C.SAMPLE_RATE else a
            check(a, C.SAMPLE_RATE, min_seconds=C.PATCH_SECONDS, name=f"semanticodec item {i}")
            items.append(a[0])
        n16 = [len(a) for a in items]
        out = np.zeros((b, max(n16)), dtype=np.float32)
        for i, a in enumerate(items):
            out[i, : len(a)] = a
        return torch.from_numpy(out), n16

    # -- the work -----------------------------------------------------------------------------------

    @torch.inference_mode()
    def tokens(self, wav, sample_rate: int | None = None, lengths=None) -> tuple[list[torch.Tensor], list[int]]:
        """Per item official-layout tokens `[N_i, 2]` and 16 kHz lengths."""
        x16, n16 = self._prepare(wav, sample_rate, lengths)
        fb, segs = semanticodec_fbank(x16.to(self.device), n16)
        windows = torch.cat([fb[i, : s * C.MEL_FRAMES].reshape(s, C.MEL_FRAMES, -1) for i, s in enumerate(segs)])
        toks = self.encoder(windows, batch_size=self.batch_size or ENCODE_BATCH,
                            autocast_dtype=_AUTOCAST.get(self.precision))  # [n_windows, W, 2]
        out, start = [], 0
        for i, s in enumerate(segs):
            item = toks[start: start + s].reshape(-1, 2)
            out.append(item[: token_count(n16[i], self.token_rate)])
            start += s
        return out, n16

    def encode(self, wav, sample_rate: int | None = None, lengths=None) -> Encoded:
        """wav float32 `[B, C, T]` at `sample_rate` (default 16 kHz) -> Encoded with codes int64 `[B, 2, N]`.

        `lengths` (samples at `sample_rate`, one per item) marks where each item of a padded batch ends;
        items are encoded exactly as if alone and their codes padded with -1 to the longest.
        Raises AudioError naming the item for NaN/Inf, silent, or shorter-than-0.16 s audio.
        """
        toks, n16 = self.tokens(wav, sample_rate, lengths)
        n_max = max(len(t) for t in toks)
        codes = torch.full((len(toks), 2, n_max), -1, dtype=torch.int64)
        for i, t in enumerate(toks):
            codes[i, :, : len(t)] = t.T.cpu()
        bits_per_token = math.log2(self.vocab) + math.log2(self.cfg.encoder.codebook_size)
        frames = [len(t) for t in toks]
        seconds = sum(n16) / C.SAMPLE_RATE
        return Encoded(codes=codes, bitrate=sum(frames) * bits_per_token / seconds, lengths=n16,
                       sample_rate=C.SAMPLE_RATE, frames=frames,
                       item_bitrates=[n * bits_per_token * C.SAMPLE_RATE / m for n, m in zip(frames, n16)],
                       extra={"n_tokens": frames, "token_rate": self.token_rate, "vocab": self.vocab})

    def _item_tokens(self, enc: Encoded) -> list[torch.Tensor]:
        codes = enc.codes
        if codes.dim() != 3 or codes.shape[1] != 2:
            raise CodecError(f"semanticodec codes must be [B, 2, N] (semantic, acoustic), got {tuple(codes.shape)}")
        counts = enc.extra.get("n_tokens") or [int((codes[i, 0] >= 0).sum()) for i in range(codes.shape[0])]
        out = []
        for i, n in enumerate(counts):
            t = codes[i, :, :n].T.to(self.device)
            out_of_range = (t[:, 0] >= self.vocab).any() or (t[:, 1] >= self.cfg.encoder.codebook_size).any()
            if n == 0 or (t < 0).any() or out_of_range:
                raise CodecError(
                    f"item {i}: codes out of range for vocab={self.vocab} / {self.cfg.encoder.codebook_size} acoustic "
                    "codes (were they produced with another operating point?)"
                )
            out.append(t)
        return out

    @torch.inference_mode()
    def conditions(self, toks: list[torch.Tensor]) -> tuple[torch.Tensor, list[int]]:
        """Per item tokens `[N_i, 2]` -> (decoder windows `[n_windows, W, 2F]` right-padded with -1, windows per item)."""
        w = self.cfg.encoder.window_tokens
        conds, counts = [], []
        for t in toks:
            spans = split_windows(len(t), w)
            counts.append(len(spans))
            for a, b in spans:
                feat = self.encoder.tokens_to_features(t[a:b])
                if b - a < w:
                    feat = torch.cat([feat, feat.new_full((w - (b - a), feat.shape[-1]), -1.0)])
                conds.append(feat)
        return torch.stack(conds), counts

    @torch.inference_mode()
    def decode(self, enc: Encoded, ddim_steps: int | None = None, cfg_scale: float | None = None,
               eta: float | None = None, seed: int | None = None, noise: torch.Tensor | None = None,
               sampler: str | None = None) -> torch.Tensor:
        """Encoded -> float32 `[B, 1, T]` at 16 kHz, each item trimmed to its input length (zeros after).

        noise: initial latents `[n_windows, 8, 256, 16]`, one per 10.24 s window, items in order (exact
        comparisons). Window j of every item draws its x_T (when no noise is given) and its per-step noise
        (eta > 0) from a generator seeded with (seed, j), so an item's output does not depend on its batch.
        seed defaults to the codec's `seed` option.
        """
        sampler, eta = (self.sampler, self.eta if eta is None else eta) if sampler is None else (sampler, eta)
        sampler, eta = self._check_sampler(sampler, eta)
        toks = self._item_tokens(enc)
        cond, counts = self.conditions(toks)
        if noise is not None and tuple(noise.shape[:1]) != (cond.shape[0],):
            raise CodecError(
                f"noise must hold one latent per window: {cond.shape[0]} windows, got {tuple(noise.shape)}"
            )
        # one generator per window, seeded by (seed, window index in its item): x_T (unless given) and the
        # per-step eta noise then do not depend on which other items share the batch
        base = self.seed if seed is None else int(seed)
        gens = []
        for c in counts:
            for j in range(c):
                g = torch.Generator(device=self.device)
                g.manual_seed(base * 1_000_003 + j)
                gens.append(g)
        waves = self.decoder.decode_windows(
            cond, ddim_steps=self.ddim_steps if ddim_steps is None else self._check_steps(ddim_steps),
            cfg_scale=self.cfg_scale if cfg_scale is None else float(cfg_scale),
            eta=eta, noise=noise, generator=gens,
            batch_size=self.batch_size or DECODE_BATCH, precision=self.precision, sampler=sampler,
        ).float().cpu().numpy()
        lengths = list(enc.lengths) if enc.lengths else [output_samples(len(t), self.token_rate) for t in toks]
        out = np.zeros((len(toks), 1, max(lengths)), dtype=np.float32)
        start = 0
        for i, (t, c) in enumerate(zip(toks, counts)):
            y = overlap_add(waves[start: start + c])[: output_samples(len(t), self.token_rate)]
            n = min(len(y), lengths[i])
            out[i, 0, :n] = y[:n]
            start += c
        return torch.from_numpy(out)

    @torch.inference_mode()
    def embed(self, wav, sample_rate: int | None = None, lengths=None) -> torch.Tensor:
        """wav `[B, C, T]` -> decoder conditioning features `[B, N, 2F]` (acoustic ++ semantic).

        Rows past an item's own end are zero."""
        toks, _ = self.tokens(wav, sample_rate, lengths)
        n_max = max(len(t) for t in toks)
        out = torch.zeros(len(toks), n_max, 2 * self.cfg.encoder.feature_dim)
        for i, t in enumerate(toks):
            out[i, : len(t)] = self.encoder.tokens_to_features(t).float().cpu()
        return out

    @torch.inference_mode()
    def embed_items(self, wavs: list[torch.Tensor]) -> list[torch.Tensor]:
        """Clips `[C, T_i]` at 16 kHz -> `[N_i, 2F]` each, their windows encoded in one batch."""
        lengths = [int(w.shape[-1]) for w in wavs]
        batch = torch.zeros(len(wavs), wavs[0].shape[0], max(lengths))
        for i, w in enumerate(wavs):
            batch[i, :, : lengths[i]] = torch.as_tensor(w, dtype=torch.float32)
        toks, _ = self.tokens(batch, C.SAMPLE_RATE, lengths)
        return [self.encoder.tokens_to_features(t).float().cpu() for t in toks]

    def from_official(self, tokens: torch.Tensor, lengths: list[int] | None = None) -> Encoded:
        """Official tokens `[B, N, 2]` -> Encoded (lengths default to the official decoded length)."""
        codes = tokens.transpose(1, 2).contiguous().to(torch.int64)
        n = codes.shape[-1]
        lengths = lengths or [output_samples(n, self.token_rate)] * codes.shape[0]
        bits = n * codes.shape[0] * (math.log2(self.vocab) + 13)
        return Encoded(codes=codes, bitrate=bits / (sum(lengths) / C.SAMPLE_RATE), lengths=list(lengths),
                       sample_rate=C.SAMPLE_RATE, extra={"n_tokens": [n] * codes.shape[0]})


def randomise(encoder: SemantiCodecEncoder, decoder=None) -> None:
    """Random weights with sensible scales (module defaults plus the pieces they leave at zero)."""
    with torch.no_grad():
        mae = encoder.audiomae.model
        for p in (mae.cls_token, mae.pos_embed, mae.mask_token, mae.decoder_pos_embed):
            p.normal_(0, 0.02)
        cb = encoder.quantizer._codebook
        cb.embed.normal_(0, 0.1)
        cb.embed_avg.copy_(cb.embed)
        encoder.set_centroids(torch.randn(encoder.cfg.vocab, encoder.cfg.feature_dim))
        if decoder is not None and hasattr(decoder, "randomise"):
            decoder.randomise()
