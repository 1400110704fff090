"""Diffusion schedule and the DDIM sampler (v-prediction, classifier-free guidance, eta) of SemantiCodec.

Restated from the official LDM sampler so that, given the same UNet, latent noise and per-step noise, the result
is the same to float rounding:

* training schedule: betas = linspace(sqrt(0.0015), sqrt(0.0195), 1000)^2 (float64), alphas_cumprod = cumprod(1-b);
  buffers stored as float32 (`schedule_buffers`).
* DDIM timesteps ("uniform"): c = 1000 // S, ts = arange(0, 1000, c) + 1 (S=50 -> 1, 21, ..., 981). The number of
  steps is len(ts), which can exceed S (S=30 -> 31 steps); S values that produce the index 1000 are rejected.
* a_t = ac[ts], a_prev = [ac[0]] + ac[ts[:-1]], sigma = eta * sqrt((1-a_prev)/(1-a_t) * (1 - a_t/a_prev)).
* one step at t (v = model output after CFG: v = v_u + s * (v_c - v_u)):
  eps = sqrt(ac_t) v + sqrt(1-ac_t) x;  x0 = sqrt(ac_t) x - sqrt(1-ac_t) v;
  x_prev = sqrt(a_prev) x0 + sqrt(1 - a_prev - sigma^2) eps + sigma z,  z ~ N(0, I) (drawn at every step, also
  when sigma = 0, as the official code does, so random streams line up).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

SCHEDULE_BUFFERS = (
    "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod",
    "posterior_variance", "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2",
)


def linear_betas(timesteps: int = 1000, linear_start: float = 0.0015, linear_end: float = 0.0195) -> np.ndarray:
    """LDM "linear" schedule: linspace of the square roots, squared (float64 `[timesteps]`)."""
    root = torch.linspace(linear_start ** 0.5, linear_end ** 0.5, timesteps, dtype=torch.float64, device="cpu")
    return (root ** 2).numpy()


def schedule_buffers(timesteps: int = 1000, linear_start: float = 0.0015,
                     linear_end: float = 0.0195) -> dict[str, torch.Tensor]:
    """The 12 float32 `[timesteps]` buffers the official DDPM registers (and stores in decoder.ckpt)."""
    betas = linear_betas(timesteps, linear_start, linear_end)
    alphas = 1.0 - betas
    ac = np.cumprod(alphas, axis=0)
    ac_prev = np.append(1.0, ac[:-1])
    post_var = betas * (1.0 - ac_prev) / (1.0 - ac)  # v_posterior = 0
    values = {
        "betas": betas,
        "alphas_cumprod": ac,
        "alphas_cumprod_prev": ac_prev,
        "sqrt_alphas_cumprod": np.sqrt(ac),
        "sqrt_one_minus_alphas_cumprod": np.sqrt(1.0 - ac),
        "log_one_minus_alphas_cumprod": np.log(1.0 - ac),
        "sqrt_recip_alphas_cumprod": np.sqrt(1.0 / ac),
        "sqrt_recipm1_alphas_cumprod": np.sqrt(1.0 / ac - 1),
        "posterior_variance": post_var,
        "posterior_log_variance_clipped": np.log(np.maximum(post_var, 1e-20)),
        "posterior_mean_coef1": betas * np.sqrt(ac_prev) / (1.0 - ac),
        "posterior_mean_coef2": (1.0 - ac_prev) * np.sqrt(alphas) / (1.0 - ac),
    }
    return {k: torch.tensor(v, dtype=torch.float32, device="cpu") for k, v in values.items()}


def ddim_timesteps(ddim_steps: int, num_timesteps: int = 1000) -> np.ndarray:
    """Official "uniform" DDIM timesteps, ascending: arange(0, T, T // S) + 1."""
    if not isinstance(ddim_steps, (int, np.integer)) or not 1 <= ddim_steps <= num_timesteps:
        raise ValueError(f"ddim_steps must be an integer in [1, {num_timesteps}], got {ddim_steps!r}")
    ts = np.arange(0, num_timesteps, num_timesteps // ddim_steps) + 1
    if ts[-1] >= num_timesteps:
        ok = [s for s in (2, 4, 5, 10, 20, 25, 50, 100, 200) if s <= num_timesteps]
        raise ValueError(
            f"ddim_steps={ddim_steps} gives DDIM timestep {ts[-1]}, outside the {num_timesteps}-step schedule (the "
            f"official sampler crashes there too); choose another value, e.g. one of {ok}."
        )
    return ts


@dataclass
class DDIMSchedule:
    """Per-step constants, in sampling order (first = noisiest). All float32 `[n_steps]` except `timesteps`."""

    timesteps: np.ndarray  # int, descending
    a_t: torch.Tensor
    a_prev: torch.Tensor
    sigma: torch.Tensor
    sqrt_ac: torch.Tensor  # sqrt(alphas_cumprod[t]) from the model buffer
    sqrt_1m_ac: torch.Tensor  # sqrt(1 - alphas_cumprod[t]) from the model buffer

    def __len__(self) -> int:
        return len(self.timesteps)


def make_ddim_schedule(alphas_cumprod: torch.Tensor, sqrt_alphas_cumprod: torch.Tensor,
                       sqrt_one_minus_alphas_cumprod: torch.Tensor, ddim_steps: int, eta: float) -> DDIMSchedule:
    """Build the step constants from the model's (float32) buffers, the way the official sampler does: the
    alphas are taken from the float32 buffer, sigma is computed in float64 and rounded to float32."""
    ts = ddim_timesteps(ddim_steps, alphas_cumprod.shape[0])
    return make_schedule_for_timesteps(alphas_cumprod, sqrt_alphas_cumprod, sqrt_one_minus_alphas_cumprod, ts, eta)


def make_schedule_for_timesteps(alphas_cumprod: torch.Tensor, sqrt_alphas_cumprod: torch.Tensor,
                                sqrt_one_minus_alphas_cumprod: torch.Tensor, ts: np.ndarray,
                                eta: float) -> DDIMSchedule:
    """As `make_ddim_schedule`, for any ascending timesteps `ts` (ints in [0, T)); the step from ts[0] goes
    to ac[0]. E.g. ts = arange(1000): DDIM over every training timestep (the sampler study's reference)."""
    ac = alphas_cumprod.detach().cpu()
    ts = np.asarray(ts, dtype=np.int64)
    if ts.ndim != 1 or len(ts) == 0 or np.any(np.diff(ts) <= 0) or ts[0] < 0 or ts[-1] >= ac.shape[0]:
        raise ValueError(f"timesteps must be strictly ascending ints in [0, {ac.shape[0]}), got {ts.tolist()[:8]}...")
    a_t32 = ac[torch.from_numpy(ts)].float()
    a_t = a_t32.double()
    a_prev = torch.cat([ac[:1], ac[torch.from_numpy(ts[:-1])]]).double()
    # The official code mixes a float32 tensor and float64 numpy arrays here; torch evaluates
    # ndarray / tensor as tensor.reciprocal() * ndarray, with the reciprocal in float32. Doing the same keeps
    # sigma bit-identical after rounding to float32 (checked for S in 2..200).
    sigma = eta * torch.sqrt(((1 - a_t32).reciprocal().double() * (1 - a_prev)) * (1 - a_t / a_prev))
    order = torch.from_numpy(ts[::-1].copy())
    flip = torch.arange(len(ts) - 1, -1, -1)
    return DDIMSchedule(
        timesteps=ts[::-1].copy(),
        a_t=a_t[flip].float(),
        a_prev=a_prev[flip].float(),
        sigma=sigma[flip].float(),
        sqrt_ac=sqrt_alphas_cumprod.detach().cpu()[order].float(),
        sqrt_1m_ac=sqrt_one_minus_alphas_cumprod.detach().cpu()[order].float(),
    )


def ddim_step(x: torch.Tensor, v: torch.Tensor, i: int, sched: DDIMSchedule,
              z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One DDIM update from the (guided) v-prediction. x, v, z `[B, C, H, W]` -> (x_prev, pred_x0).

    The operation order mirrors the official code so float32 results agree bit for bit on the same inputs.
    """
    def full(val: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], 1, 1, 1), float(val), device=x.device, dtype=torch.float32)

    s_ac, s_1m = full(sched.sqrt_ac[i]), full(sched.sqrt_1m_ac[i])
    a_prev, sigma = full(sched.a_prev[i]), full(sched.sigma[i])
    e_t = s_ac * v + s_1m * x
    pred_x0 = s_ac * x - s_1m * v
    dir_xt = (1.0 - a_prev - sigma ** 2).sqrt() * e_t
    noise = sigma * z
    return (a_prev.sqrt() * pred_x0 + dir_xt + noise).to(x.dtype), pred_x0


def sample(
    model_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x_t: torch.Tensor,
    sched: DDIMSchedule,
    noise_fn: Callable[[], torch.Tensor],
    cfg_scale: float = 1.0,
    guided: bool = False,
) -> torch.Tensor:
    """Run the DDIM loop from x_T `[B, C, H, W]`.

    model_fn(x, t) returns the v-prediction `[B, C, H, W]`; when `guided`, it returns both halves of the CFG
    pair from one call, `[2B, C, H, W]` = [unconditional; conditional] for the same x and t, and the guided
    v = v_u + s (v_c - v_u).
    noise_fn() returns the per-step noise z `[B, C, H, W]`.
    """
    x = x_t
    b = x.shape[0]
    for i, step in enumerate(sched.timesteps):
        t = torch.full((b,), int(step), device=x.device, dtype=torch.long)
        if guided:
            v_u, v_c = model_fn(x, t).float().chunk(2)
            v = v_u + cfg_scale * (v_c - v_u)
        else:
            v = model_fn(x, t).float()
        x, _ = ddim_step(x, v, i, sched, noise_fn())
    return x

