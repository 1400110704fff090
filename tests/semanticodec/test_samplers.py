"""SemantiCodec samplers on a tiny random UNet: diffusers' DDIM reproduces our official DDIM; our dpmpp-2m / unipc
wrapper equals diffusers' scheduler loop written out here; more steps converge to the 1000-step DDIM ODE solution;
the codec option (name check, eta rule, steps alias, label and fingerprint, decode plumbing)."""

from __future__ import annotations

import dataclasses
from itertools import pairwise

import numpy as np
import pytest
import torch
from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    UniPCMultistepScheduler,
)

from bench.codecs.base import CodecError
from bench.codecs.semanticodec import ddim, samplers
from bench.codecs.semanticodec.codec import SemantiCodec
from bench.codecs.semanticodec.config import UNetConfig, get_config
from bench.codecs.semanticodec.decoder import LatentDiffusionDecoder

T = 1000


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: threads only add overhead (and spin on a loaded machine)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def dec() -> LatentDiffusionDecoder:
    """The decoder architecture with a very small UNet and latent [8, 16, 8]; every weight random (no zero layers)."""
    base = get_config(100, 4096, tiny=True).decoder
    cfg = dataclasses.replace(base, latent_t=16, latent_f=8, unet=UNetConfig(
        model_channels=8, channel_mult=(1, 2), num_res_blocks=1, num_head_channels=8, norm_groups=4,
        attention_resolutions=(2,)))
    d = LatentDiffusionDecoder(cfg)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in d.unet.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.15)
    return d


@pytest.fixture(scope="module")
def cond(dec) -> torch.Tensor:
    c = torch.randn(1, 8, dec.cfg.cond_dim, generator=torch.Generator().manual_seed(2))
    c[:, -2:] = -1.0  # padding rows as the codec writes them
    return c


def _x_t(dec, seed=3):
    return torch.randn(1, *dec.latent_shape, generator=torch.Generator().manual_seed(seed))


def _betas():  # the LDM linear schedule, restated: squares of a linspace of square roots
    return np.linspace(0.0015 ** 0.5, 0.0195 ** 0.5, T, dtype=np.float64) ** 2


def _official_ts(steps):  # official "uniform" DDIM timesteps, descending
    return (np.arange(0, T, T // steps) + 1)[::-1].copy()


def _diffusers_loop(dec, cond, scheduler, x, cfg_scale, noises=None, eta=0.0):
    """The plain diffusers sampling loop with CFG on the decoder's UNet (two UNet calls per step here)."""
    ctx, unc = dec.build_context(cond), dec.unconditional_context(cond)
    for i, t in enumerate(scheduler.timesteps.tolist()):
        tt = torch.tensor([int(t)])
        v_u, v_c = dec.unet(x, tt, context=unc), dec.unet(x, tt, context=ctx)
        v = v_u + cfg_scale * (v_c - v_u)
        kw = {"eta": eta, "variance_noise": noises[i]} if noises is not None else {}
        x = scheduler.step(v, int(t), x, return_dict=False, **kw)[0]
    return x


# -- names and options ------------------------------------------------------------------------------

def test_invalid_sampler_is_a_one_line_error_listing_the_valid_ones():
    with pytest.raises(ValueError) as err:
        samplers.check_sampler("euler")
    msg = str(err.value)
    assert "\n" not in msg and all(s in msg for s in ("ddim", "dpmpp-2m", "unipc"))
    with pytest.raises(CodecError, match="dpmpp-2m"):
        SemantiCodec(tiny=True, vocab=4096, sampler="dpm")
    assert samplers.check_sampler(" UniPC ") == "unipc"


# -- DDIM: diffusers against our official restatement ------------------------------------------------

@pytest.mark.parametrize("steps, eta", [(10, 0.0), (50, 0.0), (10, 1.0), (25, 0.5)])
def test_diffusers_ddim_reproduces_our_official_ddim(dec, cond, steps, eta):
    """Same x_T and the same per-step draws (diffusers' `variance_noise`): equal to float32 rounding."""
    seed, scale = 11, 2.0
    with torch.inference_mode():
        ours = dec.sample_latent(cond, ddim_steps=steps, cfg_scale=scale, eta=eta,
                                 generator=torch.Generator().manual_seed(seed))
        g = torch.Generator().manual_seed(seed)  # what sample_latent draws: x_T, then one z per step
        x_t = torch.randn(1, *dec.latent_shape, generator=g)
        zs = [torch.randn(1, *dec.latent_shape, generator=g) for _ in range(steps)]
        sch = DDIMScheduler(num_train_timesteps=T, trained_betas=_betas(), prediction_type="v_prediction",
                            clip_sample=False, set_alpha_to_one=False, steps_offset=1, timestep_spacing="leading")
        sch.set_timesteps(steps)
        np.testing.assert_array_equal(sch.timesteps.numpy(), _official_ts(steps))
        ref = _diffusers_loop(dec, cond, sch, x_t, scale, zs, eta)
    assert ours.abs().max() > 0.1 and not torch.equal(ours, x_t)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=2e-5)


# -- DPM-Solver++(2M) and UniPC: our wrapper against diffusers' loop --------------------------------

def _dpm(timesteps):
    s = DPMSolverMultistepScheduler(num_train_timesteps=T, trained_betas=_betas(), prediction_type="v_prediction",
                                    algorithm_type="dpmsolver++", solver_order=2, final_sigmas_type="sigma_min")
    s.set_timesteps(timesteps=list(timesteps))
    return s


def _unipc(timesteps):
    """UniPC has no custom-timestep argument: take the tables DPM-Solver builds for the same timesteps."""
    s = UniPCMultistepScheduler(num_train_timesteps=T, trained_betas=_betas(), prediction_type="v_prediction",
                                solver_order=2, solver_type="bh2", final_sigmas_type="sigma_min")
    s.set_timesteps(len(timesteps))
    d = _dpm(timesteps)
    s.timesteps, s.sigmas = d.timesteps.clone(), d.sigmas.clone()
    return s


@pytest.mark.parametrize("sampler", ["dpmpp-2m", "unipc"])
@pytest.mark.parametrize("steps", [5, 10, 25])
def test_ode_sampler_wrapper_equals_diffusers_loop(dec, cond, sampler, steps):
    x_t, scale = _x_t(dec), 2.5
    visited = []

    def recording_unet(x, t, **kw):
        visited.append(int(t[0]))
        return dec.unet(x, t, **kw)

    dec._unet_fn = recording_unet
    try:
        with torch.inference_mode():
            ours = dec.sample_latent(cond, ddim_steps=steps, cfg_scale=scale, eta=0.0, noise=x_t, sampler=sampler)
    finally:
        dec._unet_fn = None
    assert visited == _official_ts(steps).tolist()  # the official DDIM's timesteps, one CFG-pair call each
    sch = (_dpm if sampler == "dpmpp-2m" else _unipc)(_official_ts(steps))
    with torch.inference_mode():
        ref = _diffusers_loop(dec, cond, sch, x_t.clone(), scale)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="eta"):
        dec.sample_latent(cond, ddim_steps=steps, eta=1.0, noise=x_t, sampler=sampler)


def test_unipc_tables_match_dpm_custom_timesteps():
    ts = _official_ts(10)
    ours = samplers.diffusers_scheduler("unipc")
    samplers.set_timesteps(ours, ts)
    d = _dpm(ts)
    assert ours.timesteps.tolist() == ts.tolist()
    torch.testing.assert_close(ours.sigmas, d.sigmas, rtol=0, atol=0)
    ac0 = np.cumprod(1 - _betas())[0]
    assert float(ours.sigmas[-1]) == pytest.approx(((1 - ac0) / ac0) ** 0.5, rel=1e-5)  # ends at t = 0, like DDIM


# -- convergence to the 1000-step ODE solution --------------------------------------------------------

def test_more_steps_converge_to_the_1000_step_ddim_solution(dec, cond):
    x_t, scale = _x_t(dec, 5), 2.0
    with torch.inference_mode():
        fn, guided = samplers.decoder_model_fn(dec, cond, scale)
        full = ddim.make_schedule_for_timesteps(dec.alphas_cumprod, dec.sqrt_alphas_cumprod,
                                                dec.sqrt_one_minus_alphas_cumprod, np.arange(T), 0.0)
        ref = ddim.sample(fn, x_t, full, lambda: torch.zeros_like(x_t), cfg_scale=scale, guided=guided)
        dist = {}
        for name in samplers.SAMPLERS:
            dist[name] = [float((dec.sample_latent(cond, ddim_steps=s, cfg_scale=scale, eta=0.0, noise=x_t,
                                                   sampler=name) - ref).norm() / ref.norm()) for s in (5, 10, 25, 50)]
    for name, d in dist.items():
        assert all(a > b for a, b in pairwise(d)), (name, d)  # strictly closer with every step count
        assert d[-1] < 0.25 * d[0], (name, d)
    # the second-order solvers beat first-order DDIM at equal steps (10 and 25)
    for name in samplers.ODE_SAMPLERS:
        assert dist[name][1] < dist["ddim"][1] and dist[name][2] < dist["ddim"][2], dist


# -- the codec option -------------------------------------------------------------------------------

def test_codec_sampler_option_label_fingerprint_and_decode():
    ddim_c = SemantiCodec(tiny=True, vocab=4096, ddim_steps=2)
    uni = SemantiCodec(tiny=True, vocab=4096, sampler="unipc", steps=2)
    assert ddim_c.options["sampler"] == "ddim" and ddim_c.eta == 1.0  # official defaults
    assert uni.ddim_steps == 2 and uni.eta == 0.0 and uni.options["sampler"] == "unipc"
    assert "sampler=unipc" in uni.label and "ddim_steps=2" in uni.label and "sampler=ddim" in ddim_c.label
    assert uni.fingerprint() != ddim_c.fingerprint()
    assert SemantiCodec(tiny=True, vocab=4096, sampler="dpmpp-2m", steps=2).fingerprint() != uni.fingerprint()
    with pytest.raises(CodecError, match="eta"):
        SemantiCodec(tiny=True, vocab=4096, sampler="dpmpp-2m", eta=1.0)
    with pytest.raises(CodecError, match="disagree"):
        SemantiCodec(tiny=True, vocab=4096, ddim_steps=10, steps=20)
    wav = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 1, 8000)).astype(np.float32) * 0.1)
    enc = uni.encode(wav, 16000)
    noise = torch.randn(1, 8, 256, 16, generator=torch.Generator().manual_seed(0))
    a = uni.decode(enc, noise=noise)
    b = uni.decode(enc, noise=noise, sampler="ddim", eta=0.0)
    assert a.shape == b.shape == (1, 1, 8000) and torch.isfinite(a).all()
    assert not torch.allclose(a, b)  # the sampler reaches the decoder
    torch.testing.assert_close(uni.decode(enc, noise=noise), a, rtol=0, atol=0)  # deterministic ODE solver
