"""Few-step samplers for SemantiCodec's latent diffusion: diffusers' DPM-Solver++(2M) and UniPC on our schedule.

`sampler="ddim"` stays on our own restatement of the official DDIM (`ddim.py`, bit-faithful to the official
code, eta > 0 included). "dpmpp-2m" (DPMSolverMultistepScheduler, algorithm dpmsolver++, order 2) and "unipc"
(UniPCMultistepScheduler, bh2, order 2) are the diffusers schedulers, configured for the SemantiCodec model:

* the training schedule: `trained_betas` = `ddim.linear_betas(...)` (LDM "linear": squares of a linspace of
  square roots; 1000 steps, 0.0015 .. 0.0195), prediction_type="v_prediction", no thresholding;
* the timesteps the official DDIM visits for the same `ddim_steps` (`ddim.ddim_timesteps`: 981, 961, ..., 1 for
  50 steps), descending, so every sampler evaluates the UNet at the same t for a given step count;
* the same end point as the official DDIM: the last step lands on the noise level of t = 0
  (final_sigmas_type="sigma_min", sigma = sqrt((1 - ac[0]) / ac[0])), not on sigma = 0.

Both are ODE solvers: they take no per-step noise (eta must be 0). The guided v is v_u + s (v_c - v_u), the
CFG pair in one UNet call of batch 2B, as in `ddim.sample`. Shapes: x `[B, C, H, W]` (B windows of
`[8, 256, 16]` latents for the full model).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from . import ddim

SAMPLERS = ("ddim", "dpmpp-2m", "unipc")
ODE_SAMPLERS = ("dpmpp-2m", "unipc")  # deterministic: no eta


def check_sampler(name) -> str:
    """The canonical sampler name, or ValueError (one line) listing the valid ones."""
    key = str(name).strip().lower()
    if key not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    return key


def diffusers_scheduler(name: str, timesteps: int = 1000, linear_start: float = 0.0015,
                        linear_end: float = 0.0195):
    """A diffusers scheduler for our training schedule (v-prediction, t = 0 end point).

    name: "ddim" (DDIMScheduler: set_alpha_to_one=False, so the last step goes to ac[0] as in the official
    DDIM; steps_offset=1 with "leading" spacing gives the official timesteps when 1000 % S == 0; used for the
    parity test and the study's reference), "dpmpp-2m" or "unipc".
    """
    from diffusers import (
        DDIMScheduler,
        DPMSolverMultistepScheduler,
        UniPCMultistepScheduler,
    )

    name = check_sampler(name)
    common = {"num_train_timesteps": timesteps, "prediction_type": "v_prediction", "thresholding": False,
              "trained_betas": ddim.linear_betas(timesteps, linear_start, linear_end)}
    if name == "ddim":
        return DDIMScheduler(**common, clip_sample=False, set_alpha_to_one=False, steps_offset=1,
                             timestep_spacing="leading")
    if name == "dpmpp-2m":
        return DPMSolverMultistepScheduler(**common, algorithm_type="dpmsolver++", solver_order=2,
                                           solver_type="midpoint", final_sigmas_type="sigma_min")
    return UniPCMultistepScheduler(**common, solver_order=2, solver_type="bh2", predict_x0=True,
                                   final_sigmas_type="sigma_min")


def set_timesteps(scheduler, timesteps_desc: np.ndarray) -> None:
    """Give a diffusers multistep scheduler an explicit descending timestep list (ints in [0, T)).

    DPMSolverMultistepScheduler takes it directly (`set_timesteps(timesteps=...)`); UniPCMultistepScheduler has
    no such argument, so its tables are set the way DPM-Solver's custom-timestep path builds them: sigma(t) =
    sqrt((1 - ac) / ac) interpolated at the timesteps, then the t = 0 sigma appended (final "sigma_min")."""
    ts = np.asarray(timesteps_desc, dtype=np.int64)
    if ts.ndim != 1 or len(ts) == 0 or np.any(np.diff(ts) >= 0) or ts[-1] < 0:
        raise ValueError(f"timesteps must be a non-empty strictly descending list of ints >= 0, got {ts.tolist()}")
    if "timesteps" in _params(scheduler.set_timesteps):
        scheduler.set_timesteps(timesteps=ts.tolist())
        return
    scheduler.set_timesteps(num_inference_steps=len(ts))
    ac = scheduler.alphas_cumprod  # float32, as diffusers computes its tables
    table = (((1 - ac) / ac) ** 0.5).numpy()
    sigmas = np.interp(ts, np.arange(len(table)), table)
    sigmas = np.concatenate([sigmas, [float(((1 - ac[0]) / ac[0]) ** 0.5)]]).astype(np.float32)
    scheduler.sigmas = torch.from_numpy(sigmas)
    scheduler.timesteps = torch.from_numpy(ts)


def _params(fn) -> set[str]:
    import inspect

    return set(inspect.signature(fn).parameters)


def guided_v(model_fn: Callable, x: torch.Tensor, t: torch.Tensor, cfg_scale: float, guided: bool) -> torch.Tensor:
    """The v-prediction with classifier-free guidance (model_fn returns [uncond; cond] when guided)."""
    if guided:
        v_u, v_c = model_fn(x, t).float().chunk(2)
        return v_u + cfg_scale * (v_c - v_u)
    return model_fn(x, t).float()


def sample_multistep(
    model_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x_t: torch.Tensor,
    sampler: str,
    timesteps_desc: np.ndarray,
    cfg_scale: float = 1.0,
    guided: bool = False,
    schedule: tuple[int, float, float] = (1000, 0.0015, 0.0195),
) -> torch.Tensor:
    """Run a diffusers ODE sampler ("dpmpp-2m" | "unipc") from x_T `[B, C, H, W]` over `timesteps_desc`
    (the official DDIM timesteps, descending). model_fn as in `ddim.sample`. Returns the latent at t = 0."""
    sampler = check_sampler(sampler)
    if sampler not in ODE_SAMPLERS:
        raise ValueError(f"sample_multistep runs {', '.join(ODE_SAMPLERS)}; use ddim.sample for {sampler!r}")
    sched = diffusers_scheduler(sampler, *schedule)
    set_timesteps(sched, timesteps_desc)
    x = x_t.float()
    b = x.shape[0]
    for step in sched.timesteps.tolist():
        t = torch.full((b,), int(step), device=x.device, dtype=torch.long)
        v = guided_v(model_fn, x, t, cfg_scale, guided)
        x = sched.step(v, int(step), x, return_dict=False)[0]
    return x.to(x_t.dtype)


def sample(
    model_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x_t: torch.Tensor,
    sampler: str,
    ddim_steps: int,
    eta: float,
    buffers: dict[str, torch.Tensor],
    noise_fn: Callable[[], torch.Tensor],
    cfg_scale: float = 1.0,
    guided: bool = False,
    schedule: tuple[int, float, float] = (1000, 0.0015, 0.0195),
) -> torch.Tensor:
    """Dispatch: "ddim" -> our official DDIM (`ddim.sample`, the parity path); the others -> diffusers.

    buffers: the model's float32 `alphas_cumprod`, `sqrt_alphas_cumprod`, `sqrt_one_minus_alphas_cumprod`
    (what the official DDIM reads). noise_fn: per-step noise for DDIM (drawn at every step, as officially)."""
    sampler = check_sampler(sampler)
    if sampler == "ddim":
        sched = ddim.make_ddim_schedule(buffers["alphas_cumprod"], buffers["sqrt_alphas_cumprod"],
                                        buffers["sqrt_one_minus_alphas_cumprod"], int(ddim_steps), float(eta))
        return ddim.sample(model_fn, x_t, sched, noise_fn, cfg_scale=cfg_scale, guided=guided)
    if float(eta) != 0.0:
        raise ValueError(f"eta={eta} applies to sampler=ddim only; {sampler} is an ODE solver (use eta=0)")
    ts = ddim.ddim_timesteps(int(ddim_steps), schedule[0])[::-1].copy()
    return sample_multistep(model_fn, x_t, sampler, ts, cfg_scale=cfg_scale, guided=guided, schedule=schedule)


def decoder_model_fn(decoder, cond: torch.Tensor, cfg_scale: float) -> tuple[Callable, bool]:
    """(model_fn, guided) for a `LatentDiffusionDecoder` and condition `[B, W, 2F]`, as `sample_latent` builds
    them (context keys/values projected once, the CFG pair as one UNet call of batch 2B when cfg_scale != 1):
    for loops outside the decoder (tests, the sampler study's custom-timestep reference). Call under
    torch.inference_mode."""
    ctx = decoder.build_context(cond.float())
    guided = float(cfg_scale) != 1.0
    if guided:
        ctx = torch.cat([decoder.unconditional_context(cond.float()), ctx])
    kv = decoder.unet.context_kv(ctx)

    def model_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return decoder.unet(x, t, kv=kv, cfg_pair=guided)

    return model_fn, guided
