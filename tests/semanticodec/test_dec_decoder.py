"""SemantiCodec LatentDiffusionDecoder on the tiny config: guidance, determinism, batching, shapes."""

from __future__ import annotations

import pytest
import torch

from bench.codecs.semanticodec import ddim
from bench.codecs.semanticodec.config import get_config
from bench.codecs.semanticodec.decoder import LatentDiffusionDecoder, positional_encoding


@pytest.fixture(scope="module")
def dec() -> LatentDiffusionDecoder:
    torch.manual_seed(0)
    d = LatentDiffusionDecoder(get_config(100, 4096, tiny=True).decoder)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # random weights everywhere (no zero-initialised output layers)
        for p in d.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
        d.scale_factor.fill_(0.8)
    return d


def _cond(dec, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    c = torch.randn(n, dec.cfg.window_tokens, dec.cfg.cond_dim, generator=g)
    c[:, -10:] = -1.0  # padding rows as the codec writes them
    return c


def test_context_layout(dec):
    cond = _cond(dec, 2)
    ctx = dec.build_context(cond)
    assert ctx.shape == (2, dec.cfg.window_tokens, dec.cfg.context_dim)
    assert torch.equal(ctx[..., : dec.cfg.cond_dim], cond)
    pe = positional_encoding(dec.cfg.window_tokens, dec.cfg.pe_dim)
    assert torch.equal(ctx[1, :, dec.cfg.cond_dim:], pe)
    unc = dec.unconditional_context(cond)
    assert torch.count_nonzero(unc[..., : dec.cfg.cond_dim]) == 0 and torch.equal(unc[..., dec.cfg.cond_dim:], ctx[..., dec.cfg.cond_dim:])
    with pytest.raises(ValueError, match="decoder condition"):
        dec.build_context(torch.zeros(1, 4, 3))


def test_batched_cfg_equals_two_separate_unet_calls(dec):
    """Reference: the official structure, one unconditional and one conditional UNet call per step."""
    cond = _cond(dec, 1)
    steps, scale, eta = 2, 2.0, 1.0
    g = torch.Generator().manual_seed(7)
    x_t = torch.randn(1, *dec.latent_shape, generator=g)
    zs = [torch.randn(1, *dec.latent_shape, generator=g) for _ in range(steps)]
    ctx, unc = dec.build_context(cond), dec.unconditional_context(cond)
    sched = ddim.make_ddim_schedule(dec.alphas_cumprod, dec.sqrt_alphas_cumprod,
                                    dec.sqrt_one_minus_alphas_cumprod, steps, eta)
    x = x_t
    with torch.inference_mode():
        for i, t in enumerate(sched.timesteps):
            tt = torch.tensor([int(t)])
            v_u, v_c = dec.unet(x, tt, context=unc), dec.unet(x, tt, context=ctx)
            x, _ = ddim.ddim_step(x, v_u + scale * (v_c - v_u), i, sched, zs[i])
    # same noise stream: x_T given, the step noise from a generator producing zs
    g2 = torch.Generator().manual_seed(7)
    torch.randn(1, *dec.latent_shape, generator=g2)  # skip x_T (passed explicitly below)
    got = dec.sample_latent(cond, steps, scale, eta, noise=x_t, generator=g2)
    torch.testing.assert_close(got, x, rtol=1e-4, atol=1e-4 * float(x.abs().max()))


def test_cfg_scale_one_is_the_plain_conditional_sampler(dec):
    cond = _cond(dec, 1)
    x_t = torch.randn(1, *dec.latent_shape, generator=torch.Generator().manual_seed(3))
    got = dec.sample_latent(cond, 1, 1.0, 0.0, noise=x_t)
    sched = ddim.make_ddim_schedule(dec.alphas_cumprod, dec.sqrt_alphas_cumprod,
                                    dec.sqrt_one_minus_alphas_cumprod, 1, 0.0)
    x = x_t
    with torch.inference_mode():
        for i, t in enumerate(sched.timesteps):
            v = dec.unet(x, torch.tensor([int(t)]), context=dec.build_context(cond))
            x, _ = ddim.ddim_step(x, v, i, sched, torch.zeros_like(x))  # eta 0: sigma 0, noise unused
    torch.testing.assert_close(got, x, rtol=1e-5, atol=1e-5)


def test_seeded_sampling_is_deterministic_and_seed_sensitive(dec):
    cond = _cond(dec, 1)
    a = dec.sample_latent(cond, 1, 2.0, 1.0, generator=torch.Generator().manual_seed(11))
    b = dec.sample_latent(cond, 1, 2.0, 1.0, generator=torch.Generator().manual_seed(11))
    c = dec.sample_latent(cond, 1, 2.0, 1.0, generator=torch.Generator().manual_seed(12))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_per_window_generators_make_results_batch_independent(dec):
    cond = _cond(dec, 2, seed=5)
    gens = lambda: [torch.Generator().manual_seed(100 + i) for i in range(2)]  # noqa: E731
    both = dec.sample_latent(cond, 1, 2.0, 1.0, generator=gens())
    g = gens()
    alone = torch.cat([dec.sample_latent(cond[i:i + 1], 1, 2.0, 1.0, generator=[g[i]]) for i in range(2)])
    torch.testing.assert_close(both, alone, rtol=1e-4, atol=1e-4 * float(alone.abs().max()))


def test_latent_to_mel_applies_scale_factor(dec):
    z = torch.randn(1, *dec.latent_shape, generator=torch.Generator().manual_seed(4))
    mel = dec.latent_to_mel(z)
    assert mel.shape == (1, 1, 4 * dec.cfg.latent_t, 4 * dec.cfg.latent_f)
    with torch.inference_mode():
        ref = dec.first_stage_model.decoder(dec.first_stage_model.post_quant_conv(z / 0.8))
    torch.testing.assert_close(mel, ref, rtol=1e-4, atol=1e-5)


def test_decode_windows_shapes_batching_and_noise(dec):
    n = 2
    cond = _cond(dec, n, seed=9)
    noise = torch.randn(n, *dec.latent_shape, generator=torch.Generator().manual_seed(2))
    # eta 0 + given x_T: fully determined by the inputs, so batch sizes can be compared
    waves = dec.decode_windows(cond, ddim_steps=1, eta=0.0, noise=noise, batch_size=None)
    assert waves.shape == (n, 163872) == (n, dec.samples_per_window())
    assert waves.dtype == torch.float32 and torch.isfinite(waves).all() and waves.abs().max() <= 1.0
    one_by_one = dec.decode_windows(cond, ddim_steps=1, eta=0.0, noise=noise, batch_size=1)
    torch.testing.assert_close(one_by_one, waves, rtol=1e-3, atol=1e-4 * float(waves.abs().max()) + 1e-7)
    with pytest.raises(ValueError, match="noise"):
        dec.decode_windows(cond, ddim_steps=1, noise=noise[:1])
    with pytest.raises(ValueError, match="generators"):
        dec.decode_windows(cond, ddim_steps=1, generator=[torch.Generator()])
    with pytest.raises(ValueError, match="ddim_steps=3"):
        dec.sample_latent(cond[:1], ddim_steps=3)


def test_bf16_autocast_runs_close_to_fp32(dec):
    cond = _cond(dec, 1)
    x_t = torch.randn(1, *dec.latent_shape, generator=torch.Generator().manual_seed(6))
    ref = dec.sample_latent(cond, 1, 2.0, 0.0, noise=x_t)
    low = dec.sample_latent(cond, 1, 2.0, 0.0, noise=x_t, precision="bf16")
    assert low.dtype == torch.float32 and torch.isfinite(low).all()
    rel = float((low - ref).norm() / ref.norm())
    assert 0 < rel < 0.1
    with pytest.raises(ValueError, match="precision"):
        dec.sample_latent(cond, 1, precision="int8")


def test_compiled_unet_gives_the_same_latent():
    """`compile()` routes sampling through torch.compile (eager backend here: traced by dynamo, no C++ build)."""
    torch.manual_seed(0)
    d = LatentDiffusionDecoder(get_config(100, 4096, tiny=True).decoder).eval()
    cond = _cond(d, 1, seed=4)
    want = d.sample_latent(cond, 2, 2.0, 1.0, generator=torch.Generator().manual_seed(5))
    traced = []

    def eager_backend(gm, example_inputs):  # the "eager" backend, recording each graph dynamo hands it
        traced.append(len(list(gm.graph.nodes)))
        return gm.forward

    d.compile(backend=eager_backend)
    try:
        got = d.sample_latent(cond, 2, 2.0, 1.0, generator=torch.Generator().manual_seed(5))
    finally:
        d._unet_fn = None
        torch._dynamo.reset()
    assert traced and max(traced) > 50  # the UNet forward went through dynamo (not the eager module)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
