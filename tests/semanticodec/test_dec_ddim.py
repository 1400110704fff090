"""SemantiCodec DDIM sampler: schedule and step arithmetic against a numpy float64 restatement of the formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.codecs.semanticodec import ddim


def _np_alphas_cumprod(n=1000, start=0.0015, end=0.0195):
    betas = np.linspace(np.sqrt(start), np.sqrt(end), n) ** 2
    return betas, np.cumprod(1.0 - betas)


def _np_step(x, v, a_t, a_prev, eta, z):
    """DDIM (Song et al. 2021, eq. 12) with a v-prediction: eps and x0 recovered from v."""
    sigma = eta * np.sqrt((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev))
    eps = np.sqrt(a_t) * v + np.sqrt(1 - a_t) * x
    x0 = np.sqrt(a_t) * x - np.sqrt(1 - a_t) * v
    return np.sqrt(a_prev) * x0 + np.sqrt(1 - a_prev - sigma**2) * eps + sigma * z


def test_schedule_buffers_follow_the_formulas():
    betas, ac = _np_alphas_cumprod()
    buf = ddim.schedule_buffers()
    assert set(buf) == set(ddim.SCHEDULE_BUFFERS)
    assert buf["betas"][0].item() == pytest.approx(0.0015, rel=1e-6)
    assert buf["betas"][-1].item() == pytest.approx(0.0195, rel=1e-6)
    np.testing.assert_allclose(buf["betas"].numpy(), betas, rtol=1e-6)
    np.testing.assert_allclose(buf["alphas_cumprod"].numpy(), ac, rtol=1e-6)
    np.testing.assert_allclose(buf["sqrt_one_minus_alphas_cumprod"].numpy(), np.sqrt(1 - ac), rtol=1e-6)
    ac_prev = np.append(1.0, ac[:-1])
    np.testing.assert_allclose(buf["posterior_variance"].numpy(), betas * (1 - ac_prev) / (1 - ac), rtol=1e-5)
    assert all(v.dtype == torch.float32 and v.shape == (1000,) for v in buf.values())


def test_ddim_timesteps_official_spacing():
    np.testing.assert_array_equal(ddim.ddim_timesteps(50), np.arange(1, 1000, 20))
    assert ddim.ddim_timesteps(50)[-1] == 981
    np.testing.assert_array_equal(ddim.ddim_timesteps(2), [1, 501])
    assert len(ddim.ddim_timesteps(30)) == 31  # 1000 // 30 = 33 -> 0, 33, ..., 990: one more than asked
    with pytest.raises(ValueError, match="ddim_steps=3"):
        ddim.ddim_timesteps(3)  # 0, 333, 666, 999 -> index 1000
    with pytest.raises(ValueError):
        ddim.ddim_timesteps(0)


@pytest.mark.parametrize("steps, eta", [(5, 1.0), (50, 0.5), (10, 0.0)])
def test_schedule_constants(steps, eta):
    _, ac = _np_alphas_cumprod()
    buf = ddim.schedule_buffers()
    s = ddim.make_ddim_schedule(buf["alphas_cumprod"], buf["sqrt_alphas_cumprod"],
                                buf["sqrt_one_minus_alphas_cumprod"], steps, eta)
    ts = np.arange(0, 1000, 1000 // steps)[::-1] + 1  # descending
    np.testing.assert_array_equal(s.timesteps, ts)
    prev = [t - 1000 // steps if t - 1000 // steps >= 1 else 0 for t in ts]  # last step goes to ac[0]
    a_prev = ac[prev]
    np.testing.assert_allclose(s.a_t.numpy(), ac[ts], rtol=1e-6)
    np.testing.assert_allclose(s.a_prev.numpy(), a_prev, rtol=1e-6)
    sigma = eta * np.sqrt((1 - a_prev) / (1 - ac[ts]) * (1 - ac[ts] / a_prev))
    np.testing.assert_allclose(s.sigma.numpy(), sigma, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(s.sqrt_ac.numpy(), np.sqrt(ac[ts]), rtol=1e-6)


def test_one_step_matches_numpy():
    _, ac = _np_alphas_cumprod()
    buf = ddim.schedule_buffers()
    s = ddim.make_ddim_schedule(buf["alphas_cumprod"], buf["sqrt_alphas_cumprod"],
                                buf["sqrt_one_minus_alphas_cumprod"], 10, 1.0)
    g = torch.Generator().manual_seed(0)
    x, v, z = (torch.randn(2, 8, 4, 4, generator=g) for _ in range(3))
    for i in (0, 4, 9):  # first, middle, last (a_prev = ac[0]) step
        t = s.timesteps[i]
        t_prev = s.timesteps[i + 1] if i + 1 < len(s) else 0
        out, _ = ddim.ddim_step(x, v, i, s, z)
        ref = _np_step(x.double().numpy(), v.double().numpy(), ac[t], ac[t_prev], 1.0, z.double().numpy())
        np.testing.assert_allclose(out.numpy(), ref, rtol=1e-4, atol=1e-5)


def test_sampler_loop_and_guidance_match_numpy():
    """A fake linear 'UNet' whose unconditional and conditional halves differ, over a whole 5-step loop."""
    _, ac = _np_alphas_cumprod()
    buf = ddim.schedule_buffers()
    steps, eta, scale = 5, 1.0, 2.0
    s = ddim.make_ddim_schedule(buf["alphas_cumprod"], buf["sqrt_alphas_cumprod"],
                                buf["sqrt_one_minus_alphas_cumprod"], steps, eta)
    g = torch.Generator().manual_seed(3)
    x_t = torch.randn(1, 8, 4, 4, generator=g)
    zs = [torch.randn(1, 8, 4, 4, generator=g) for _ in range(steps)]
    calls = []

    def model_fn(x, t):  # returns [uncond; cond] for the same x
        calls.append(x.shape[0])
        x, t = torch.cat([x, x]), torch.cat([t, t])
        half = x.shape[0] // 2
        out = 0.3 * x + 1e-3 * t[:, None, None, None].float()
        out[half:] = out[half:] * -0.5 + 0.1
        return out

    it = iter(zs)
    got = ddim.sample(model_fn, x_t, s, lambda: next(it), cfg_scale=scale, guided=True)
    assert calls == [1] * steps  # one UNet call per step for the whole CFG pair
    x = x_t.double().numpy()
    ts = list(s.timesteps)
    for i, t in enumerate(ts):
        vu = 0.3 * x + 1e-3 * t
        vc = vu * -0.5 + 0.1
        v = vu + scale * (vc - vu)
        t_prev = ts[i + 1] if i + 1 < len(ts) else 0
        x = _np_step(x, v, ac[t], ac[t_prev], eta, zs[i].double().numpy())
    np.testing.assert_allclose(got.numpy(), x, rtol=1e-4, atol=1e-4)
