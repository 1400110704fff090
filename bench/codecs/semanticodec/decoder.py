"""SemantiCodec decoder: conditioning windows -> latent (DDIM, v-prediction, CFG) -> log-mel (VAE) -> 16 kHz wave.

INTERFACE (stable; the encoder half codes against this):

    dec = LatentDiffusionDecoder(cfg)          # cfg: config.DecoderConfig (see config.py)
    dec.load_state_dict(torch.load("decoder.ckpt"), strict=True)   # keys == official decoder.ckpt keys
    ctx    = dec.build_context(cond)           # cond [B, W, 2F] (padding rows = -1) -> [B, W, 2F + 192] (+ PE)
    latent = dec.sample_latent(cond, ddim_steps=50, cfg_scale=2.0, eta=1.0, noise=None, generator=None)
             # cond [B, W, 2F]; noise None | [B, 8, 256, 16] initial x_T; -> latent [B, 8, 256, 16]
    mel    = dec.latent_to_mel(latent)         # [B, 8, 256, 16] -> log-mel [B, 1, 1024, 64]
    wave   = dec.mel_to_wave(mel)              # [B, 1, 1024, 64] -> [B, 163872] at 16 kHz (HiFi-GAN +32 quirk)
    waves  = dec.decode_windows(cond_windows, ddim_steps=50, cfg_scale=2.0, eta=1.0, noise=None,
                                generator=None, batch_size=None, precision=None, sampler="ddim")
             # sampler: "ddim" (official) | "dpmpp-2m" | "unipc" (diffusers ODE solvers, samplers.py)
             # cond_windows [n_windows, W, 2F] (all items' windows, already right-padded with -1 to W rows)
             # -> [n_windows, 163872]; windows are run batch_size at a time (None: all at once), under
             # torch.inference_mode; noise [n_windows, 8, 256, 16] or None; generator: None | torch.Generator |
             # list of one Generator per window (batch-independent results); precision None | 'bf16' | 'fp16'.

W = cfg.window_tokens (512 / K), 2F = cfg.cond_dim. The codec (codec.py) does windowing, cross-fade and trim.
Config: config.DecoderConfig (cond_dim, context_dim, pe_dim, window_tokens, latent_*, timesteps, linear_*, and the
nested unet / vae / vocoder configs); the tiny config has the same architecture with small widths.

Speed (outputs unchanged to float rounding): the CFG pair is one UNet call of batch 2B, the cross-attention
keys/values of the (fixed) context are computed once per sampling run, windows and items are batched in the
UNet (the VAE and the vocoder take one window at a time on CPU, where that is faster), the VAE and vocoder
convolutions run channels-last, and everything runs under torch.inference_mode. Options: precision="bf16" (autocast; ~1e-2 relative deviation per
module) and `compile()` (torch.compile of the UNet).
"""

from __future__ import annotations

import logging
import math
from contextlib import nullcontext
from typing import TYPE_CHECKING

import torch
from torch import nn

from bench.codecs.semanticodec import ddim, samplers
from bench.codecs.semanticodec.hifigan import Generator
from bench.codecs.semanticodec.unet import UNetModel
from bench.codecs.semanticodec.vae import AutoencoderKL

if TYPE_CHECKING:
    from bench.codecs.semanticodec.config import DecoderConfig

log = logging.getLogger(__name__)

_PRECISIONS = {"fp32": None, "float32": None, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
               "fp16": torch.float16, "float16": torch.float16}


def positional_encoding(length: int, dim: int) -> torch.Tensor:
    """Sinusoidal positions `[length, dim]`: pe[:, 0::2] = sin(p w_i), pe[:, 1::2] = cos(p w_i),
    w_i = exp(-2i ln(10000) / dim) (the official PositionalEncoding, same float32 operations)."""
    position = torch.arange(length).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, dim, 2) * -(math.log(10000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    return pe


class DiffusionWrapper(nn.Module):
    """Holds the UNet under the official key prefix `model.diffusion_model`."""

    def __init__(self, unet: UNetModel):
        super().__init__()
        self.diffusion_model = unet


class EmaShadow(nn.Module):
    """`model_ema.*`: the training-time EMA of the UNet (LitEma layout: one buffer per UNet parameter, named
    with the dots removed, plus `decay` and `num_updates`). Inference uses the non-EMA weights, as the official
    decoder does; the buffers exist so that decoder.ckpt loads with strict key and shape checking."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.register_buffer("decay", torch.tensor(0.9999, dtype=torch.float32))
        self.register_buffer("num_updates", torch.tensor(0, dtype=torch.int32))
        for name, p in model.named_parameters():
            self.register_buffer(name.replace(".", ""), p.detach().clone())


class LatentDiffusionDecoder(nn.Module):
    """Conditioning windows -> waveforms. See the module docstring for the interface.

    Layout of the state dict = the official `LatentDiffusion` (decoder.ckpt): `model.diffusion_model.*`,
    `model_ema.*`, the 12 schedule buffers, `logvar`, `scale_factor`, `first_stage_model.{encoder, decoder,
    quant_conv, post_quant_conv, vocoder}.*`.
    """

    def __init__(self, cfg: "DecoderConfig"):
        super().__init__()
        self.cfg = cfg
        u = cfg.unet
        unet = UNetModel(
            in_channels=u.in_channels, out_channels=u.out_channels, model_channels=u.model_channels,
            channel_mult=tuple(u.channel_mult), num_res_blocks=u.num_res_blocks,
            attention_resolutions=tuple(u.attention_resolutions), num_head_channels=u.num_head_channels,
            transformer_depth=u.transformer_depth, context_dim=cfg.context_dim, norm_groups=u.norm_groups,
            extra_sa_layer=getattr(u, "extra_sa_layer", True),
        )
        self.model = DiffusionWrapper(unet)
        self.model_ema = EmaShadow(self.model)
        for name, value in ddim.schedule_buffers(cfg.timesteps, cfg.linear_start, cfg.linear_end).items():
            self.register_buffer(name, value)
        # training-only log-variance; a parameter (not a buffer) in the official model
        self.logvar = nn.Parameter(torch.zeros(cfg.timesteps), requires_grad=False)
        # learnt by scale_by_std during training: the real value comes from decoder.ckpt
        self.register_buffer("scale_factor", torch.tensor(1.0))
        v, voc = cfg.vae, cfg.vocoder
        vocoder = Generator(
            num_mels=voc.num_mels, upsample_rates=tuple(voc.upsample_rates),
            upsample_kernel_sizes=tuple(voc.upsample_kernel_sizes),
            upsample_initial_channel=voc.upsample_initial_channel,
            resblock_kernel_sizes=tuple(voc.resblock_kernel_sizes),
            resblock_dilations=tuple(tuple(d) for d in voc.resblock_dilation_sizes),
        )
        self.first_stage_model = AutoencoderKL(
            ch=v.ch, ch_mult=tuple(v.ch_mult), num_res_blocks=v.num_res_blocks, z_channels=v.z_channels,
            embed_dim=v.embed_dim, in_channels=v.in_channels, out_ch=v.out_ch, groups=v.norm_groups,
            vocoder=vocoder,
        )
        self.cond_stage_models = nn.ModuleList()  # empty in the official model too (no keys)
        self._unet_fn = None  # optional torch.compile'd UNet forward, kept outside the module tree
        self.eval()
        self.requires_grad_(False)

    # -- helpers --------------------------------------------------------------------------------

    @property
    def unet(self) -> UNetModel:
        return self.model.diffusion_model

    @property
    def vocoder(self) -> Generator:
        return self.first_stage_model.vocoder

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """(C, T, F) of one window's latent: (8, 256, 16)."""
        return (self.cfg.latent_channels, self.cfg.latent_t, self.cfg.latent_f)

    def samples_per_window(self) -> int:
        """Vocoder output length of one window: 163 872 at the official config (latent_t * 4 = 1024 mel frames)."""
        return self.vocoder.output_length(self.cfg.latent_t * 2 ** (len(self.cfg.vae.ch_mult) - 1))

    def drop_unused(self) -> "LatentDiffusionDecoder":
        """Free what inference never runs (UNet EMA copy, VAE encoder, quant_conv): ~390 MB at rate 100.
        Call after a strict load; the state dict then no longer matches decoder.ckpt."""
        for name in ("model_ema",):
            if hasattr(self, name):
                delattr(self, name)
        for name in ("encoder", "quant_conv"):
            if hasattr(self.first_stage_model, name):
                delattr(self.first_stage_model, name)
        return self

    def compile(self, **kwargs) -> "LatentDiffusionDecoder":
        """Use `torch.compile` for the UNet forward (state-dict keys unchanged). kwargs go to torch.compile."""
        self._unet_fn = torch.compile(self.unet, **kwargs)
        return self

    def _autocast(self, precision: str | None, device: torch.device):
        if precision is None:
            return nullcontext()
        if precision not in _PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(set(_PRECISIONS))}, got {precision!r}")
        dtype = _PRECISIONS[precision]
        if dtype is None:
            return nullcontext()
        return torch.autocast(device_type=device.type, dtype=dtype)

    def _check_cond(self, cond: torch.Tensor) -> None:
        if cond.ndim != 3 or cond.shape[-1] != self.cfg.cond_dim:
            raise ValueError(
                f"decoder condition must be [B, W, {self.cfg.cond_dim}] (acoustic ++ semantic features), "
                f"got {tuple(cond.shape)}"
            )

    def build_context(self, cond: torch.Tensor) -> torch.Tensor:
        """cond `[B, W, 2F]` (padding rows already -1) -> context `[B, W, 2F + pe_dim]` (positions appended)."""
        self._check_cond(cond)
        pe = positional_encoding(cond.shape[1], self.cfg.pe_dim).to(cond.device, cond.dtype)
        return torch.cat([cond, pe.expand(cond.shape[0], -1, -1)], dim=-1)

    def unconditional_context(self, cond: torch.Tensor) -> torch.Tensor:
        """The classifier-free-guidance "empty" context: zeros in place of the features, positions kept."""
        return self.build_context(torch.zeros_like(cond))

    def _randn(self, batch: int, generator, device: torch.device) -> torch.Tensor:
        shape = self.latent_shape
        if generator is None or isinstance(generator, torch.Generator):
            return torch.randn((batch, *shape), generator=generator, device=device)
        gens = list(generator)
        if len(gens) != batch:
            raise ValueError(f"got {len(gens)} generators for a batch of {batch} windows; pass one per window")
        return torch.cat([torch.randn((1, *shape), generator=g, device=device) for g in gens])

    # -- the work -------------------------------------------------------------------------------

    @torch.inference_mode()
    def sample_latent(self, cond: torch.Tensor, ddim_steps: int = 50, cfg_scale: float = 2.0, eta: float = 1.0,
                      noise: torch.Tensor | None = None, generator=None, precision: str | None = None,
                      sampler: str = "ddim") -> torch.Tensor:
        """DDIM (v-prediction) from x_T to the clean latent, guided by the codec condition.

        sampler: "ddim" (the official DDIM, `ddim.py`) or a diffusers ODE solver, "dpmpp-2m" / "unipc"
        (`samplers.py`: same timesteps as DDIM at this `ddim_steps`, eta must be 0).

        cond `[B, W, 2F]`; noise: x_T `[B, 8, 256, 16]` (None: drawn from `generator`); generator: None (global
        RNG: with B = 1 this draws exactly what the official sampler draws), one torch.Generator, or one per
        window (then each window's result does not depend on what it is batched with). The CFG pair
        (unconditional, conditional) runs as one UNet call of batch 2B. Returns the latent `[B, 8, 256, 16]`.
        """
        b = cond.shape[0]
        device = self.scale_factor.device
        cond = cond.to(device=device, dtype=torch.float32)
        ctx = self.build_context(cond)
        guided = cfg_scale != 1.0
        if guided:
            ctx = torch.cat([self.unconditional_context(cond), ctx])
        if noise is None:
            x = self._randn(b, generator, device)
        else:
            if tuple(noise.shape) != (b, *self.latent_shape):
                raise ValueError(f"noise must be [{b}, {', '.join(map(str, self.latent_shape))}], "
                                 f"got {tuple(noise.shape)}")
            x = noise.to(device=device, dtype=torch.float32)
        buffers = {"alphas_cumprod": self.alphas_cumprod, "sqrt_alphas_cumprod": self.sqrt_alphas_cumprod,
                   "sqrt_one_minus_alphas_cumprod": self.sqrt_one_minus_alphas_cumprod}
        schedule = (self.cfg.timesteps, self.cfg.linear_start, self.cfg.linear_end)
        unet_fn = self.unet if self._unet_fn is None else self._unet_fn
        with self._autocast(precision, device):
            kv = self.unet.context_kv(ctx)  # the context is the same at every step: project it once

            def model_fn(x_in: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
                return unet_fn(x_in, t, kv=kv, cfg_pair=guided)

            return samplers.sample(model_fn, x, sampler, int(ddim_steps), float(eta), buffers,
                                   lambda: self._randn(b, generator, device), cfg_scale=float(cfg_scale),
                                   guided=guided, schedule=schedule)

    @torch.inference_mode()
    def latent_to_mel(self, latent: torch.Tensor, precision: str | None = None) -> torch.Tensor:
        """latent `[B, 8, 256, 16]` -> log-mel `[B, 1, 1024, 64]` (VAE decoder after 1/scale_factor)."""
        with self._autocast(precision, latent.device):
            # (1/s) * z, not z / s: the official operation order (last-bit agreement). Channels-last
            # activations spare oneDNN a layout reorder per convolution: 2.33 -> 1.83 s per window on CPU.
            z = ((1.0 / self.scale_factor) * latent).contiguous(memory_format=torch.channels_last)
            mel = self.first_stage_model.decode(z)
        return mel.float()

    @torch.inference_mode()
    def mel_to_wave(self, mel: torch.Tensor, precision: str | None = None) -> torch.Tensor:
        """log-mel `[B, 1, T, 64]` (or `[B, T, 64]`) -> waveform `[B, output_length(T)]` at 16 kHz
        (163 872 samples for T = 1024)."""
        if mel.ndim == 4:
            mel = mel.squeeze(1)
        with self._autocast(precision, mel.device):
            wave = self.vocoder(mel.permute(0, 2, 1))
        return wave[:, 0].float()

    @torch.inference_mode()
    def decode_windows(self, cond_windows: torch.Tensor, ddim_steps: int = 50, cfg_scale: float = 2.0,
                       eta: float = 1.0, noise: torch.Tensor | None = None, generator=None,
                       batch_size: int | None = None, precision: str | None = None,
                       sampler: str = "ddim") -> torch.Tensor:
        """cond_windows `[n, W, 2F]` (every window of every item, right-padded with -1 to W rows) ->
        waveforms `[n, samples_per_window()]` at 16 kHz.

        Windows run `batch_size` at a time (None: all together). noise `[n, 8, 256, 16]` gives each window's
        x_T; generator as in `sample_latent` (a list must hold one generator per window).
        precision: None/"fp32" (reference), "bf16" or "fp16" (autocast; measured deviation in the benchmark).
        """
        self._check_cond(cond_windows)
        n = cond_windows.shape[0]
        if noise is not None and noise.shape[0] != n:
            raise ValueError(f"noise has {noise.shape[0]} windows, the condition has {n}")
        gens_list = generator is not None and not isinstance(generator, torch.Generator)
        if gens_list and len(generator) != n:
            raise ValueError(f"got {len(generator)} generators for {n} windows; pass one per window")
        step = n if not batch_size else max(1, int(batch_size))
        out = []
        for s in range(0, n, step):
            sl = slice(s, s + step)
            gen = list(generator)[sl] if gens_list else generator
            latent = self.sample_latent(cond_windows[sl], ddim_steps, cfg_scale, eta,
                                        None if noise is None else noise[sl], gen, precision, sampler)
            # the VAE and vocoder run one window at a time on CPU: their large activations fall out of
            # cache in a batch (measured per window: vocoder 2.5 s alone, 3.6 s in a batch of 4)
            per = 1 if latent.device.type == "cpu" else latent.shape[0]
            for k in range(0, latent.shape[0], per):
                out.append(self.mel_to_wave(self.latent_to_mel(latent[k: k + per], precision), precision))
            log.debug("decoded windows %d-%d of %d", s, min(s + step, n) - 1, n)
        return torch.cat(out) if out else torch.zeros(0, self.samples_per_window())
