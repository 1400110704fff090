"""SemantiCodec decoder building blocks against plain-torch/numpy restatements of their formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench.codecs.semanticodec.attention import CrossAttention, SpatialTransformer
from bench.codecs.semanticodec.config import get_config
from bench.codecs.semanticodec.decoder import positional_encoding
from bench.codecs.semanticodec.hifigan import Generator, output_length
from bench.codecs.semanticodec.unet import UNetModel, timestep_embedding
from bench.codecs.semanticodec.vae import AttnBlock


def _randomise(module: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)


def test_cross_attention_matches_einsum_softmax():
    torch.manual_seed(0)
    att = CrossAttention(64, 24, heads=2, dim_head=32)
    _randomise(att)
    x, ctx = torch.randn(3, 10, 64), torch.randn(3, 7, 24)
    q, k, v = att.to_q(x), att.to_k(ctx), att.to_v(ctx)
    split = lambda t: t.reshape(t.shape[0], t.shape[1], 2, 32).permute(0, 2, 1, 3)
    w = torch.einsum("bhid,bhjd->bhij", split(q), split(k)) * 32 ** -0.5
    ref = torch.einsum("bhij,bhjd->bhid", w.softmax(-1), split(v)).permute(0, 2, 1, 3).reshape(3, 10, 64)
    ref = att.to_out(ref)
    torch.testing.assert_close(att(x, ctx), ref, rtol=1e-5, atol=1e-5)
    # cached keys/values give the same numbers as recomputing them
    torch.testing.assert_close(att(x, kv=att.context_kv(ctx)), att(x, ctx), rtol=0, atol=0)


def test_vae_attention_matches_bmm_restatement():
    blk = AttnBlock(32, groups=8)
    _randomise(blk, 1)
    x = torch.randn(2, 32, 6, 5)
    h = blk.norm(x)
    q, k, v = (m(h).reshape(2, 32, 30) for m in (blk.q, blk.k, blk.v))
    w = torch.softmax(torch.bmm(q.permute(0, 2, 1), k) * 32 ** -0.5, dim=2)
    ref = x + blk.proj_out(torch.bmm(v, w.permute(0, 2, 1)).reshape(2, 32, 6, 5))
    torch.testing.assert_close(blk(x), ref, rtol=1e-5, atol=1e-5)


def test_spatial_transformer_is_residual_and_shape_preserving():
    st = SpatialTransformer(32, heads=2, dim_head=16, context_dim=12, norm_groups=8)
    x, ctx = torch.randn(2, 32, 8, 4), torch.randn(2, 5, 12)
    assert st(x, ctx).shape == x.shape
    with torch.no_grad():
        st.proj_out.weight.zero_(), st.proj_out.bias.zero_()
    torch.testing.assert_close(st(x, ctx), x)  # zero output projection -> identity


def test_timestep_embedding_formula():
    t = torch.tensor([1, 21, 981])
    emb = timestep_embedding(t, 64)
    freqs = np.exp(-math.log(10000) * np.arange(32) / 32)
    args = t.numpy()[:, None] * freqs[None]
    np.testing.assert_allclose(emb.numpy(), np.concatenate([np.cos(args), np.sin(args)], 1), atol=2e-4)


def test_positional_encoding_formula():
    pe = positional_encoding(512, 192)
    p = np.arange(512)[:, None]
    w = np.exp(-np.arange(0, 192, 2) * math.log(10000.0) / 192)
    np.testing.assert_allclose(pe[:, 0::2].numpy(), np.sin(p * w), atol=2e-4)
    np.testing.assert_allclose(pe[:, 1::2].numpy(), np.cos(p * w), atol=2e-4)


def test_vocoder_length_formula_and_quirk():
    assert output_length(1024) == 163872 == 160 * 1024 + 32  # spec 7.1: measured on the official code
    for frames in (1, 7, 100):
        # (5T + 1) after the first upsampler (k=16, u=5, pad 5), then x4, x2, x2, x2 exactly
        assert output_length(frames) == (5 * frames + 1) * 32
    voc = Generator(num_mels=64, upsample_initial_channel=32, resblock_kernel_sizes=(3,), resblock_dilations=((1, 3),))
    for frames in (5, 33):
        with torch.no_grad():
            y = voc(torch.randn(1, 64, frames))
        assert y.shape == (1, 1, output_length(frames))
        assert float(y.abs().max()) <= 1.0  # tanh output


def _vocoder_restated(voc: Generator, mel: torch.Tensor) -> torch.Tensor:
    """HiFi-GAN v1 with plain 1-D convolutions in float64 (the official Generator's forward, restated)."""
    F = torch.nn.functional
    conv = lambda m, x: F.conv1d(x, m.weight.double(), m.bias.double(), padding=m.padding[0],  # noqa: E731
                                 dilation=m.dilation[0])
    x = conv(voc.conv_pre, mel.double())
    for i, up in enumerate(voc.ups):
        x = F.conv_transpose1d(F.leaky_relu(x, 0.1), up.weight.double(), up.bias.double(), stride=up.stride[0],
                               padding=up.padding[0])
        outs = []
        for rb in voc.resblocks[i * voc.num_kernels: (i + 1) * voc.num_kernels]:
            y = x
            for c1, c2 in zip(rb.convs1, rb.convs2):
                y = conv(c2, F.leaky_relu(conv(c1, F.leaky_relu(y, 0.1)), 0.1)) + y
            outs.append(y)
        x = sum(outs) / len(outs)
    return torch.tanh(conv(voc.conv_post, F.leaky_relu(x, 0.01)))


def test_vocoder_matches_plain_conv1d_restatement():
    voc = Generator(num_mels=64, upsample_initial_channel=64, resblock_kernel_sizes=(3, 7),
                    resblock_dilations=((1, 3, 5), (1, 3, 5)))
    g = torch.Generator().manual_seed(9)
    with torch.no_grad():
        for p in voc.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    mel = torch.randn(2, 64, 12, generator=g)
    want = _vocoder_restated(voc, mel)
    convs = [m for m in voc.modules() if isinstance(m, (torch.nn.Conv1d, torch.nn.ConvTranspose1d))]
    with torch.inference_mode():
        got = voc(mel)
        assert len(voc._kernels) == len(convs) == 1 + 5 + 5 * 2 * 6 + 1  # pre, 5 ups, 2 resblocks of 3 + 3 per up, post
        kernels = {id(m): voc._kernels._entries[m][2] for m in convs}  # one channels-last copy per convolution
        again = voc(mel)  # cached kernels
    assert all(voc._kernels._entries[m][2] is kernels[id(m)] for m in convs)  # reused, not remade
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-6)
    assert torch.equal(got, again)
    with torch.no_grad():  # changed weights are seen (the kernel cache follows the parameter's version)
        voc.conv_post.weight.mul_(-1)
    with torch.inference_mode():
        torch.testing.assert_close(voc(mel).double(), _vocoder_restated(voc, mel), rtol=1e-5, atol=1e-6)
    voc(mel).sum().backward()  # training mode still reaches the parameters
    assert voc.conv_pre.weight.grad is not None


def test_tiny_unet_shapes_context_cache_and_batching():
    cfg = get_config(100, 4096, tiny=True).decoder
    u = cfg.unet
    net = UNetModel(u.in_channels, u.out_channels, u.model_channels, u.channel_mult, u.num_res_blocks,
                    u.attention_resolutions, u.num_head_channels, u.transformer_depth, cfg.context_dim, u.norm_groups)
    _randomise(net, 2)
    net.eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, 64, 8, generator=g)  # any size divisible by 8 works; small keeps the test fast
    ctx = torch.randn(2, 32, cfg.context_dim, generator=g)
    t = torch.tensor([981, 981])
    with torch.inference_mode():
        out = net(x, t, context=ctx)
        assert out.shape == x.shape and torch.isfinite(out).all()
        torch.testing.assert_close(net(x, t, kv=net.context_kv(ctx)), out, rtol=0, atol=0)
        one = torch.cat([net(x[i:i + 1], t[:1], context=ctx[i:i + 1]) for i in range(2)])
    torch.testing.assert_close(one, out, rtol=1e-4, atol=1e-4 * float(out.abs().max()))
    # CFG pair: one latent, two contexts; the shared first layers run once and give the same result
    with torch.inference_mode():
        pair = net(x[:1], t[:1], kv=net.context_kv(ctx), cfg_pair=True)
        full = net(torch.cat([x[:1], x[:1]]), t, context=ctx)
    assert pair.shape == (2, 8, 64, 8)
    torch.testing.assert_close(pair, full, rtol=1e-4, atol=1e-4 * float(full.abs().max()))
    # the context matters (cross-attention is wired), and so does the timestep
    with torch.inference_mode():
        assert not torch.allclose(net(x, t, context=ctx.flip(0)), out)
        assert not torch.allclose(net(x, torch.tensor([1, 1]), context=ctx), out)
    with pytest.raises(ValueError, match="context"):
        net(x, t)
