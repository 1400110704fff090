"""The SemantiCodec training objective: acoustic encoder (BiLSTM + Linear + EMA VQ) and UNet, trained jointly.

One step on a batch of 16 kHz windows `[B, 163840]`:

* frozen (no grad): Kaldi fbank -> AudioMAE -> stacked features `A [B, W, F]` -> nearest k-means centroid
  (semantic ids), and the AudioLDM log-mel `[B, 1, 1024, 64]` -> VAE encoder -> posterior (mean, logvar)
  `[B, 8, 256, 16]` each; both are functions of the audio alone, so they may be cached per crop;
* trainable: BiLSTM + bias-free Linear on `cat(A, centroid)` -> `h [B, W, F]`, nearest acoustic code `q` with a
  straight-through estimator, commitment loss `|h - sg(q)|^2` (weight 1.0, vector-quantize-pytorch's
  definition), EMA codebook update (decay 0.9, Laplace smoothing eps 1e-5);
* condition `cat(q, centroid)` `[B, W, 2F]` (rows past the audio -1, as at inference), replaced per sample by
  zeros with probability `cond_drop` (the classifier-free-guidance "empty" condition), + positions;
* latent-diffusion loss of the official configuration: z = scale_factor * posterior sample, t ~ U{0..999},
  x_t = sqrt(acp_t) z + sqrt(1 - acp_t) eps on the linear beta schedule, v-prediction target
  v = sqrt(acp_t) eps - sqrt(1 - acp_t) z, loss = mean (UNet(x_t, t, ctx) - v)^2 (LDM `loss_simple`, logvar 0,
  no ELBO term).

Every random draw of a step comes from a generator seeded by (seed, step, process rank), so a resumed run
draws exactly what an uninterrupted run draws.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.codecs.semanticodec import config as C

# AudioLDM's 16 kHz / 64-mel STFT (the VAE's and HiFi-GAN's input domain; spec 6.3)
MEL_N_FFT, MEL_HOP, MEL_WIN, MEL_BINS, MEL_FMIN, MEL_FMAX = 1024, 160, 1024, 64, 0.0, 8000.0


@functools.lru_cache(maxsize=4)
def _mel_basis() -> torch.Tensor:
    from bench.metrics.spectral import slaney_mel_filterbank

    return torch.tensor(slaney_mel_filterbank(C.SAMPLE_RATE, MEL_N_FFT, MEL_BINS, MEL_FMIN, MEL_FMAX), dtype=torch.float32)


def audioldm_mel(wave: torch.Tensor, frames: int = C.MEL_FRAMES) -> torch.Tensor:
    """16 kHz waves `[B, T]` -> AudioLDM log-mel `[B, 1, frames, 64]` (the VAE's input and the vocoder's domain).

    As AudioLDM's TacotronSTFT: reflect-pad (n_fft - hop) / 2 each side, |STFT| (Hann 1024, hop 160, no
    centring), Slaney mel (librosa defaults, 0-8 kHz), log(clamp(x, 1e-5)); frames cut or zero-padded to
    `frames` (1024 per 10.24 s window, AudioLDM's target_length)."""
    pad = (MEL_N_FFT - MEL_HOP) // 2
    x = F.pad(wave.float().unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    spec = torch.stft(x, MEL_N_FFT, hop_length=MEL_HOP, win_length=MEL_WIN,
                      window=torch.hann_window(MEL_WIN, device=x.device), center=False, normalized=False,
                      onesided=True, return_complex=True).abs()  # [B, 513, N]
    mel = torch.log(torch.clamp(_mel_basis().to(x.device) @ spec, min=1e-5)).transpose(1, 2)  # [B, N, 64]
    n = mel.shape[1]
    mel = mel[:, :frames] if n >= frames else F.pad(mel, (0, 0, 0, frames - n))
    return mel.unsqueeze(1)


@dataclass(frozen=True)
class Objective:
    """Loss hyper-parameters (defaults: the official configuration; spec section 9)."""

    cond_drop: float = 0.1  # not stated by the release: AudioLDM-training-finetuning's unconditional_prob_cfg
    commitment_weight: float = 1.0  # vector-quantize-pytorch commitment_weight in the official encoder
    vq_decay: float = 0.9  # EuclideanCodebook decay in the official encoder
    vq_eps: float = 1e-5  # vector-quantize-pytorch's Laplace smoothing epsilon
    latent_sample: bool = True  # z = posterior.sample() (LDM); False: the posterior mean
    dead_code_threshold: float = 0.0  # vector-quantize-pytorch threshold_ema_dead_code (0: off, the official)


@dataclass
class Frozen:
    """What the frozen parts make of a batch (functions of the audio alone)."""

    feat: torch.Tensor  # [B, W, F] stacked AudioMAE features
    sem: torch.Tensor  # [B, W] semantic ids
    cutoff: torch.Tensor  # [B] share of each window that is audio
    mean: torch.Tensor  # [B, 8, 256, 16] VAE posterior mean (unscaled)
    logvar: torch.Tensor  # [B, 8, 256, 16] VAE posterior log-variance (clamped to [-30, 20])


def step_generator(seed: int, step: int, rank: int = 0, device: str | torch.device = "cpu") -> torch.Generator:
    """The generator of every random draw of one training step (t, noise, dropout, posterior sample)."""
    mixed = np.random.SeedSequence([int(seed), int(step), int(rank), 0x5EC]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator(device=device).manual_seed(int(mixed) & ((1 << 63) - 1))


class SemantiCodecTrainer(nn.Module):
    """The encoder (`SemantiCodecEncoder`) and decoder (`LatentDiffusionDecoder`) with the training objective.

    Trainable: `encoder.encoder` (BiLSTM), `encoder.encoder_output_linear`, `decoder.model` (UNet); the EMA VQ
    codebook is updated in `forward` while training. Everything else is frozen and kept in eval mode.
    """

    def __init__(self, encoder, decoder, objective: Objective = Objective()):
        super().__init__()
        self.encoder, self.decoder, self.objective = encoder, decoder, objective
        self.requires_grad_(False)
        for m in self.trainable_modules():
            m.requires_grad_(True)
        self.train()

    def trainable_modules(self) -> list[nn.Module]:
        return [self.encoder.encoder, self.encoder.encoder_output_linear, self.decoder.model]

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for m in self.trainable_modules() for p in m.parameters()]

    def train(self, mode: bool = True):
        super().train(False)  # frozen parts (AudioMAE, VAE, vocoder) always in eval mode
        self.training = mode
        for m in self.trainable_modules():
            m.train(mode)
        return self

    # -- frozen parts ---------------------------------------------------------------------------------------

    @torch.no_grad()
    def frozen(self, wave: torch.Tensor, lengths: list[int]) -> Frozen:
        """16 kHz windows `[B, 163840]` (item i valid in `[:lengths[i]]`) -> `Frozen` (float32)."""
        from bench.codecs.semanticodec.fbank import semanticodec_fbank

        enc, vae = self.encoder, self.decoder.first_stage_model
        with torch.autocast(wave.device.type, enabled=False):
            # frames of the window alone (the official framing of a clip of this length; its first window)
            fbank = semanticodec_fbank(wave.float(), lengths, segment=wave.shape[1],
                                       frames_per_segment=enc.cfg.mel_frames)[0][:, : enc.cfg.mel_frames]
            feat = enc.semantic_features(fbank).float()
            sem = enc.semantic_ids(feat)
            cutoff = enc.padding_cutoff(fbank)
            valid = torch.arange(wave.shape[1], device=wave.device)[None] < torch.tensor(lengths, device=wave.device)[:, None]
            mel = audioldm_mel(wave.float() * valid, frames=self.decoder.cfg.latent_t * 4)
            moments = vae.quant_conv(vae.encoder(mel))
            mean, logvar = moments.chunk(2, dim=1)
        return Frozen(feat, sem, cutoff, mean.contiguous(), logvar.clamp(-30.0, 20.0).contiguous())

    def latent(self, fz: Frozen, gen: torch.Generator | None) -> torch.Tensor:
        """Unscaled VAE latent of the batch `[B, 8, 256, 16]`: a posterior sample (or its mean)."""
        if not self.objective.latent_sample:
            return fz.mean
        eps = torch.randn(fz.mean.shape, generator=gen, device=fz.mean.device)
        return fz.mean + torch.exp(0.5 * fz.logvar) * eps

    # -- acoustic stream ------------------------------------------------------------------------------------

    def acoustic(self, fz: Frozen) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> (straight-through quantised `[B, W, F]`, acoustic ids `[B, W]`, commitment loss); EMA update
        of the acoustic codebook when training."""
        enc = self.encoder
        x = enc.condition_input(fz.feat.clone(), fz.sem, fz.cutoff)
        h = enc.encoder_output_linear(enc.encoder(x)[0]).float()
        with torch.autocast(h.device.type, enabled=False):
            ids = enc.quantizer.indices(h.detach())
            if self.training:
                self._ema_update(h.detach(), ids)
            q = enc.quantizer.lookup(ids)
            commit = F.mse_loss(h, q.detach())
        return h + (q - h).detach(), ids, commit

    @torch.no_grad()
    def _ema_update(self, h: torch.Tensor, ids: torch.Tensor) -> None:
        """vector-quantize-pytorch's EMA update of `_codebook` (cluster_size, embed_avg, embed), one head."""
        cb = self.encoder.quantizer._codebook
        size = cb.embed.shape[1]
        flat = h.reshape(-1, h.shape[-1])
        counts = torch.bincount(ids.reshape(-1), minlength=size).to(flat.dtype)
        sums = torch.zeros(size, flat.shape[1], device=flat.device, dtype=flat.dtype).index_add_(0, ids.reshape(-1), flat)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(counts)  # one codebook for all processes (sync_codebook)
            torch.distributed.all_reduce(sums)
        d = self.objective.vq_decay
        cb.cluster_size.mul_(d).add_(counts[None], alpha=1 - d)
        cb.embed_avg.mul_(d).add_(sums[None], alpha=1 - d)
        total = cb.cluster_size.sum(dim=-1, keepdim=True)
        smoothed = (cb.cluster_size + self.objective.vq_eps) / (total + size * self.objective.vq_eps) * total
        cb.embed.copy_(cb.embed_avg / smoothed.unsqueeze(-1))
        if self.objective.dead_code_threshold > 0:
            self._expire_codes(flat)

    @torch.no_grad()
    def _expire_codes(self, flat: torch.Tensor) -> None:
        """Codes whose EMA cluster size fell below the threshold take a random vector of this batch (drawn
        from a generator seeded by the codebook's state, so a resume redraws the same), as
        vector-quantize-pytorch's `expire_codes_`: their embed, embed_avg and cluster_size restart there."""
        cb = self.encoder.quantizer._codebook
        dead = cb.cluster_size[0] < self.objective.dead_code_threshold
        n = int(dead.sum())
        if n == 0:
            return
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            # every process must pick the same vectors: the first process's batch, broadcast
            torch.distributed.broadcast(flat, 0)
        seed = int(cb.cluster_size.double().sum().item() * 1e6) % (2**62)
        g = torch.Generator(device=flat.device).manual_seed(seed)
        pick = torch.randint(0, flat.shape[0], (n,), generator=g, device=flat.device)
        cb.embed[0, dead] = flat[pick]
        cb.embed_avg[0, dead] = flat[pick] * self.objective.dead_code_threshold
        cb.cluster_size[0, dead] = self.objective.dead_code_threshold

    # -- the loss -------------------------------------------------------------------------------------------

    def condition(self, q: torch.Tensor, fz: Frozen) -> torch.Tensor:
        """Decoder condition `[B, W, 2F]` = acoustic ++ semantic, rows past each window's audio set to -1."""
        cond = torch.cat([q, self.encoder.centroids[fz.sem].to(q.dtype)], dim=-1)
        w = cond.shape[1]
        starts = torch.tensor([math.ceil(w * f) for f in fz.cutoff.tolist()], device=cond.device)
        pad = torch.arange(w, device=cond.device)[None, :] >= starts[:, None]
        return torch.where(pad[..., None], torch.full_like(cond, -1.0), cond)

    def forward(self, fz: Frozen, gen: torch.Generator) -> dict[str, torch.Tensor]:
        """One training loss on the frozen outputs `fz`; all draws from `gen`. Returns loss, diffusion,
        commitment (scalars) and acoustic ids `[B, W]`."""
        dec = self.decoder
        b = fz.mean.shape[0]
        dev = fz.mean.device
        z = dec.scale_factor * self.latent(fz, gen)
        t = torch.randint(0, dec.cfg.timesteps, (b,), generator=gen, device=dev)
        eps = torch.randn(z.shape, generator=gen, device=dev)
        drop = torch.rand(b, generator=gen, device=dev) < self.objective.cond_drop
        drop &= self.training  # evaluation losses are conditional
        q, ids, commit = self.acoustic(fz)
        cond = self.condition(q, fz)
        cond = torch.where(drop[:, None, None], torch.zeros_like(cond), cond)  # CFG: the zeros condition
        ctx = dec.build_context(cond)
        a = dec.sqrt_alphas_cumprod[t].view(b, 1, 1, 1)
        s = dec.sqrt_one_minus_alphas_cumprod[t].view(b, 1, 1, 1)
        x_t = a * z + s * eps
        v = a * eps - s * z
        pred = dec.unet(x_t, t, context=ctx).float()
        diffusion = F.mse_loss(pred, v)
        loss = diffusion + self.objective.commitment_weight * commit
        return {"loss": loss, "diffusion": diffusion.detach(), "commitment": commit.detach(), "ids": ids}

    @torch.no_grad()
    def scale_by_std(self, fz: Frozen, gen: torch.Generator | None) -> float:
        """LDM `scale_by_std`: scale_factor = 1 / std of the (unscaled) latents of the first batch; returns it."""
        z = self.latent(fz, gen)
        value = 1.0 / z.flatten().std()
        self.decoder.scale_factor.copy_(value)
        return float(value)


class UNetEMA:
    """LitEma over the UNet into `decoder.model_ema` (the official buffers): decay_n = min(decay, (1+n)/(10+n)),
    shadow -= (1 - decay_n) (shadow - param)."""

    def __init__(self, decoder, decay: float = 0.9999):
        self.decoder = decoder
        decoder.model_ema.decay.fill_(float(decay))
        self.pairs = [(getattr(decoder.model_ema, name.replace(".", "")), p)
                      for name, p in decoder.model.named_parameters()]

    @torch.no_grad()
    def reset(self) -> None:
        """Shadow = the current UNet, no updates yet (a fresh run)."""
        for shadow, p in self.pairs:
            shadow.copy_(p.detach())
        self.decoder.model_ema.num_updates.zero_()

    @torch.no_grad()
    def update(self) -> None:
        ema = self.decoder.model_ema
        ema.num_updates.add_(1)
        n = int(ema.num_updates)
        decay = min(float(ema.decay), (1 + n) / (10 + n))
        for shadow, p in self.pairs:
            shadow.sub_((1.0 - decay) * (shadow - p.detach().to(shadow.dtype)))
