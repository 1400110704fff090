"""SemantiCodec encoder: normalised fbank windows -> (semantic, acoustic) token ids and their features.

Per 10.24 s window (1024 fbank frames): AudioMAE features, patch stacking to `[W, F]`, nearest k-means
centroid (semantic id), then `cat(features, centroid)` through a BiLSTM and a bias-free Linear to an
EMA VQ codebook of 8192 entries (acoustic id). Windows are independent, so all windows of all items
run as one batch (the official code loops over windows of a single file).

State-dict keys match the official `encoder.ckpt` (`audiomae.model.*`, `encoder.*` = nn.LSTM,
`encoder_output_linear.weight`, `quantizer._codebook.{initted, cluster_size, embed_avg, embed}`).
The semantic centroids `[V, F]` come from a separate .npy and are a non-persistent buffer.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import onednn
from .audiomae import AudioMAE, stack_patches
from .config import EncoderConfig
from .lstm import BiLSTM

MAE_WINDOWS = 2  # 10.24 s windows per AudioMAE pass (see `semantic_features`)


def _row_chunks(n: int, rows: int = 256):
    """Row slices for the nearest-neighbour searches: a `[256, codebook]` distance block stays in cache."""
    return [slice(s, min(s + rows, n)) for s in range(0, n, rows)]


class EuclideanCodebook(nn.Module):
    """The buffers of vector-quantize-pytorch's EMA codebook (one head); only `embed` is used."""

    def __init__(self, size: int, dim: int):
        super().__init__()
        self.register_buffer("initted", torch.tensor(True))
        self.register_buffer("cluster_size", torch.ones(1, size))
        self.register_buffer("embed_avg", torch.zeros(1, size, dim))
        self.register_buffer("embed", torch.zeros(1, size, dim))


class VectorQuantizer(nn.Module):
    """Nearest-code lookup in `_codebook.embed[0]` `[C, F]` (Euclidean), as vector-quantize-pytorch at inference."""

    def __init__(self, size: int, dim: int):
        super().__init__()
        self._codebook = EuclideanCodebook(size, dim)

    def indices(self, x: torch.Tensor) -> torch.Tensor:
        """x `[..., F]` -> int64 ids `[...]`.

        Same expression and order as the reference (-sqrt(clamp(|x|^2 + |c|^2 - 2 x.c, 1e-8)),
        argmax), so ties resolve identically.
        """
        embed = self._codebook.embed[0]
        flat = x.reshape(-1, x.shape[-1]).float()
        x2 = flat.pow(2).sum(-1, keepdim=True)
        c2 = embed.pow(2).sum(-1)
        out = torch.empty(flat.shape[0], dtype=torch.int64, device=flat.device)
        for rows in _row_chunks(flat.shape[0]):
            xy = onednn.linear(flat[rows], embed).mul_(-2)
            dist = (x2[rows] + c2).add_(xy).clamp_(min=1e-8).sqrt_().neg_()
            out[rows] = dist.argmax(dim=-1)
        return out.reshape(x.shape[:-1])

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """ids `[...]` -> code vectors `[..., F]`."""
        return self._codebook.embed[0][ids]


class SemantiCodecEncoder(nn.Module):
    """fbank windows `[n, 1024, 128]` -> tokens `[n, W, 2]` (semantic, acoustic)."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        f = cfg.feature_dim
        self.audiomae = AudioMAE(cfg)
        self.encoder = BiLSTM(input_size=2 * f, hidden_size=2 * f, num_layers=cfg.lstm_layers)
        self.encoder_output_linear = onednn.Linear(4 * f, f, bias=False)
        self.quantizer = VectorQuantizer(cfg.codebook_size, f)
        self.register_buffer("centroids", torch.zeros(cfg.vocab, f), persistent=False)

    def set_centroids(self, table: torch.Tensor) -> None:
        """Install the semantic k-means table `[V, F]` (float32)."""
        if tuple(table.shape) != (self.cfg.vocab, self.cfg.feature_dim):
            raise ValueError(
                f"semantic codebook has shape {tuple(table.shape)}, "
                f"expected ({self.cfg.vocab}, {self.cfg.feature_dim}) "
                f"for token_rate={self.cfg.token_rate}, vocab={self.cfg.vocab}"
            )
        self.centroids = table.to(device=self.centroids.device, dtype=torch.float32).contiguous()

    # -- pieces ---------------------------------------------------------------------------------

    def semantic_features(self, fbank: torch.Tensor) -> torch.Tensor:
        """fbank windows `[n, 1024, 128]` -> stacked AudioMAE features `A` `[n, W, F]`.

        AudioMAE takes MAE_WINDOWS windows per pass (windows are independent): its per-block activations then
        stay small enough (12.6 MB for the 3072-wide MLP at 2 windows) to be reused from the heap instead of
        being faulted in afresh for every block (50 MB each at 8 windows; measured: ~0.6 M minor faults per
        encode of 8 windows before)."""
        feats = [self.audiomae(fbank[s: s + MAE_WINDOWS]) for s in range(0, fbank.shape[0], MAE_WINDOWS)]
        return stack_patches(torch.cat(feats) if len(feats) > 1 else feats[0], self.cfg.stack, self.cfg.grid)

    def semantic_ids(self, feat: torch.Tensor) -> torch.Tensor:
        """`[n, W, F]` -> nearest centroid ids `[n, W]` (squared L2 via |a|^2 + |c|^2 - 2a.c, first minimum)."""
        c = self.centroids
        flat = feat.reshape(-1, feat.shape[-1])
        f2 = flat.pow(2).sum(dim=1, keepdim=True)
        c2 = c.pow(2).sum(dim=1, keepdim=True).t()
        out = torch.empty(flat.shape[0], dtype=torch.int64, device=flat.device)
        for rows in _row_chunks(flat.shape[0]):
            dots = onednn.linear(flat[rows], c)
            out[rows] = torch.min((f2[rows] + c2).sub_(dots, alpha=2), dim=1)[1]
        return out.reshape(feat.shape[:2])

    @staticmethod
    def padding_cutoff(fbank: torch.Tensor) -> torch.Tensor:
        """Fraction of each window before its trailing run of flat frames (std over bins <= 1e-7) `[n]`.

        The official detector: cutoff = (last non-flat frame + 1) / 1024, 1.0 if no frame is flat,
        0.0 if all are (or if exactly one is not: a quirk of the official code, kept).
        """
        flat = torch.std(fbank, dim=-1) <= 1e-7  # [n, T]
        t = fbank.shape[1]
        idx = torch.arange(1, t + 1, device=fbank.device)
        last = torch.where(~flat, idx, torch.zeros_like(idx)).amax(dim=1)  # last non-flat frame + 1, 0 if none
        full = ~flat.any(dim=1)
        # official quirk: with exactly one non-flat frame its index lookup fails and the cutoff becomes 0
        single = (~flat).sum(dim=1) == 1
        last = torch.where(single & ~full, torch.zeros_like(last), last)
        return torch.where(full, torch.full_like(last, t), last).double() / t

    def condition_input(self, feat: torch.Tensor, sem_ids: torch.Tensor, cutoff: torch.Tensor) -> torch.Tensor:
        """BiLSTM input `[n, W, 2F]` = features ++ their centroids, rows from ceil(W * cutoff) on set to -1."""
        x = torch.cat([feat, self.centroids[sem_ids]], dim=-1)
        w = x.shape[1]
        for i, frac in enumerate(cutoff.tolist()):
            start = int(math.ceil(w * frac))
            x[i, start:] = -1.0  # "mark_out_padding": padding rows become -1 before the LSTM
        return x

    def acoustic_ids(self, feat: torch.Tensor, sem_ids: torch.Tensor, cutoff: torch.Tensor) -> torch.Tensor:
        """BiLSTM + Linear + VQ: `[n, W, F]`, `[n, W]`, cutoff `[n]` -> acoustic ids `[n, W]`."""
        out = self.encoder(self.condition_input(feat, sem_ids, cutoff))[0]
        return self.quantizer.indices(self.encoder_output_linear(out))

    # -- whole ------------------------------------------------------------------------------------

    def forward(self, fbank: torch.Tensor, batch_size: int | None = None,
                autocast_dtype: torch.dtype | None = None) -> torch.Tensor:
        """fbank windows `[n, 1024, 128]` -> tokens int64 `[n, W, 2]` (semantic, acoustic).

        `batch_size` windows run together (None: all); results do not depend on it beyond float
        round-off in the batched matrix products. `autocast_dtype` (e.g. torch.bfloat16) runs AudioMAE
        and the BiLSTM under autocast; the two nearest-neighbour searches stay in float32. Not
        bit-faithful: ~99 % of tokens equal the float32 ones at rate 100 (random weights).
        """
        n = fbank.shape[0]
        step = n if not batch_size else int(batch_size)
        fast = torch.autocast(fbank.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None)
        exact = torch.autocast(fbank.device.type, enabled=False)
        out = []
        for s in range(0, n, max(step, 1)):
            chunk = fbank[s: s + step]
            with fast:
                feat = self.semantic_features(chunk).float()
            with exact:
                sem = self.semantic_ids(feat)
                x = self.condition_input(feat, sem, self.padding_cutoff(chunk))
            with fast:
                h = self.encoder_output_linear(self.encoder(x)[0]).float()
            with exact:
                aco = self.quantizer.indices(h)
            out.append(torch.stack([sem, aco], dim=-1))
        return torch.cat(out, dim=0)

    def tokens_to_features(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens `[..., 2]` (semantic, acoustic) -> decoder features `[..., 2F]` = acoustic ++ semantic."""
        return torch.cat([self.quantizer.lookup(tokens[..., 1]), self.centroids[tokens[..., 0]]], dim=-1)
