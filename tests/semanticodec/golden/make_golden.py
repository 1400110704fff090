"""Make the SemantiCodec golden fixture with the OFFICIAL code (haoheliu/SemantiCodec-inference), outside bench.

    PYTHONPATH=/tmp/official:/path/to/bench:/path/to/bench/tests/semanticodec/golden \
        python -O make_golden.py --out tests/semanticodec/golden --setup official_shim --official /tmp/official

(/tmp/official: a checkout of the official repository, outside bench; README.md here gives the environment.)

Imports the installed official package `semanticodec` and builds its own classes at the small sizes of
config.json; nothing of the official code is copied here. `python -O` drops the official `assert x % 768 == 0`
checks (they assume the ViT-B width; asserts change no value). Steps:
 1. a fixed test signal (audio.flac, 16-bit, 16 kHz);
 2. official modules at small size, weights from bench.codecs.random_weights.discriminating_state; the two
    codebooks are drawn at the scale of what they quantise (a first official encode measures it), so both
    token streams use many codes;
 3. the weights saved in the official checkpoint_path layout (weights/), float tensors as float16;
 4. fresh official modules loaded strictly from weights/ (as SemantiCodec.__init__ does), then the official
    SemantiCodec.encode(path) and, after torch.manual_seed(decode_seed), SemantiCodec.decode(tokens);
 5. reference.npz: tokens, decoded wave, and (to localise a failure) the stacked AudioMAE features of each
    encoder window and the DDIM latent of each decoder window, captured with forward hooks.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch import nn

OFFICIAL_REPO = "haoheliu/SemantiCodec-inference"


def test_signal(seconds: float, seed: int = 0, sr: int = 16000) -> np.ndarray:
    """Tones, chirps and noise bands in random segments: varied in time and frequency. int16-exact float32."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    x = 0.003 * rng.standard_normal(n)
    start = 0
    while start < n:
        length = int(sr * rng.uniform(0.15, 0.6))
        seg = slice(start, min(n, start + length))
        tt = t[seg] - t[start]
        kind = rng.integers(3)
        amp = rng.uniform(0.05, 0.4)
        if kind == 0:  # harmonic tone
            f0 = rng.uniform(80, 1500)
            y = sum(np.sin(2 * np.pi * k * f0 * tt) / k for k in range(1, 5))
        elif kind == 1:  # chirp
            f0, f1 = rng.uniform(100, 6000, size=2)
            y = np.sin(2 * np.pi * (f0 * tt + (f1 - f0) * tt ** 2 / (2 * max(tt[-1], 1e-3))))
        else:  # noise band
            y = np.convolve(rng.standard_normal(tt.size), np.hanning(rng.integers(3, 40)), mode="same")
            y /= np.abs(y).max() + 1e-9
        x[seg] += amp * y * np.hanning(tt.size) ** 0.3
        start += length
    x = np.clip(x, -1, 1)
    return (np.round(x * 32767) / 32768).astype(np.float32)


def build(cfg: dict, codebook_npy: Path):
    """Official encoder and decoder at the fixture's sizes (random init; weights are loaded afterwards)."""
    from semanticodec.config import get_config
    from semanticodec.modules.audiomae import models_mae
    from semanticodec.modules.audiomae.AudioMAE import Vanilla_AudioMAE
    from semanticodec.modules.decoder import hifigan
    from semanticodec.modules.decoder.latent_diffusion.util import instantiate_from_config
    from semanticodec.modules.encoder.encoder import AudioMAEConditionQuantResEncoder

    e, d = cfg["encoder"], cfg["decoder"]
    stack = 100 // cfg["token_rate"]
    feat = e["mae_dim"] * stack
    enc = AudioMAEConditionQuantResEncoder(centroid_npy_path=str(codebook_npy), feature_dimension=feat,
                                           codebook_size=e["codebook_size"], lstm_layer=e["lstm_layers"])
    # Vanilla_AudioMAE always builds mae_vit_base_patch16; the same class, smaller (its constructor's arguments)
    mae = Vanilla_AudioMAE.__new__(Vanilla_AudioMAE)
    nn.Module.__init__(mae)
    mae.model = models_mae.MaskedAutoencoderViT(
        img_size=(1024, 128), patch_size=16, in_chans=1, embed_dim=e["mae_dim"], depth=e["mae_depth"],
        num_heads=e["mae_heads"], decoder_embed_dim=e["mae_decoder_dim"], decoder_depth=e["mae_decoder_depth"],
        decoder_num_heads=e["mae_decoder_heads"], mlp_ratio=4, norm_layer=partial(nn.LayerNorm, eps=1e-6),
        audio_exp=True, contextual_depth=e["contextual_depth"]).eval()
    enc.audiomae = mae.requires_grad_(False)
    enc.downsampling_rate = stack  # official: feature_dimension // 768, i.e. for the ViT-B width
    config = copy.deepcopy(get_config(cfg["token_rate"], cfg["vocab"], None)[0])["model"]
    u = config["params"]["unet_config"]["params"]
    du = d["unet"]
    u.update(model_channels=du["model_channels"], channel_mult=du["channel_mult"],
             num_res_blocks=du["num_res_blocks"], attention_resolutions=du["attention_resolutions"],
             num_head_channels=du["num_head_channels"], context_dim=[2 * feat + d["pe_dim"]])
    dd = config["params"]["first_stage_config"]["params"]["ddconfig"]
    dd.update(ch=d["vae"]["ch"], ch_mult=d["vae"]["ch_mult"], num_res_blocks=d["vae"]["num_res_blocks"])
    dec = instantiate_from_config(config)
    v = d["vocoder"]
    h = hifigan.AttrDict(dict(resblock="1", upsample_rates=[5, 4, 2, 2, 2], upsample_kernel_sizes=[16, 16, 8, 4, 4],
                              upsample_initial_channel=v["upsample_initial_channel"],
                              resblock_kernel_sizes=v["resblock_kernel_sizes"],
                              resblock_dilation_sizes=v["resblock_dilation_sizes"], num_mels=64))
    voc = hifigan.Generator_old(h)  # get_vocoder() builds this class at the full size
    voc.eval()
    voc.remove_weight_norm()
    dec.first_stage_model.vocoder = voc
    if d["pe_dim"] != 192:
        from semanticodec.utils import PositionalEncoding
        dec.pos_embed = PositionalEncoding(seq_length=512, embedding_dim=d["pe_dim"])
    return enc.eval(), dec.eval()


def official_codec(enc, dec, cfg):
    """The official SemantiCodec object around given modules (its __init__ would download full-size weights)."""
    from semanticodec import SemantiCodec

    sc = SemantiCodec.__new__(SemantiCodec)
    nn.Module.__init__(sc)
    sc.token_rate = cfg["token_rate"]
    sc.stack_factor_K = 100 / sc.token_rate
    sc.ddim_sample_step = cfg["ddim_steps"]
    sc.cfg_scale = cfg["cfg_scale"]
    sc.device = torch.device("cpu")
    sc.encoder, sc.decoder = enc, dec
    dec.device = torch.device("cpu")
    return sc


def near_data(x, n: int, gen) -> torch.Tensor:
    """n codebook rows at the scale of the rows x `[m, F]` they will quantise: half are rows of x plus noise
    (0.3 of x's spread), half Gaussian around x's mean with row scales 0.5-1.5 (so norms differ and the
    |c|^2 term of the distance matters)."""
    m, f = x.shape
    mean, std = x.mean(0), x.std(0)
    k = n // 2
    near = x[torch.randint(m, (k,), generator=gen)] + 0.3 * std * torch.randn(k, f, generator=gen)
    far = mean + std * torch.randn(n - k, f, generator=gen) * torch.empty(n - k, 1).uniform_(0.5, 1.5, generator=gen)
    return torch.cat([near, far])[torch.randperm(n, generator=gen)].float()


def lstm_inputs(enc, fn):
    """Run fn() and return the BiLSTM inputs of every window (features ++ centroids, padding rows -1)."""
    seen = []
    hook = enc.encoder.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()))
    try:
        out = fn()
    finally:
        hook.remove()
    return out, seen


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, help="the fixture folder (holds config.json)")
    ap.add_argument("--setup", default=None, help="module imported first (environment workarounds)")
    ap.add_argument("--official", default=None, help="official checkout, for its commit id")
    args = ap.parse_args(argv)
    if args.setup:
        importlib.import_module(args.setup)
    from bench.codecs.random_weights import discriminating_state

    torch.set_num_threads(1)
    out = Path(args.out)
    cfg = json.loads((out / "config.json").read_text())
    feat = cfg["encoder"]["mae_dim"] * (100 // cfg["token_rate"])
    wdir = out / "weights"
    cb_rel = f"codebook_idx/combine_{512 * cfg['token_rate'] // 100}_audioset_dominate/codebook_{cfg['vocab'] // 2}_0.npy"
    (wdir / cb_rel).parent.mkdir(parents=True, exist_ok=True)
    audio = out / "audio.flac"
    sf.write(audio, test_signal(cfg["audio_seconds"]), 16000, subtype="PCM_16")

    # -- weights ---------------------------------------------------------------------------------------------
    gen = torch.Generator().manual_seed(cfg["weights_seed"])
    np.save(wdir / cb_rel, torch.randn(cfg["vocab"], feat, generator=gen).numpy())
    enc, dec = build(cfg, wdir / cb_rel)
    unused = lambda k: k.startswith(("model_ema.", "first_stage_model.encoder.", "first_stage_model.quant_conv."))  # noqa: E731
    enc.load_state_dict(discriminating_state(enc.state_dict(), cfg["weights_seed"]))
    dec.load_state_dict(discriminating_state(dec.state_dict(), cfg["weights_seed"] + 1, zero=unused))
    sc = official_codec(enc, dec, cfg)
    with torch.no_grad():  # measure what the two codebooks quantise, then draw each at that scale
        _, x = lstm_inputs(enc, lambda: sc.encode(str(audio)))
        a = torch.cat([w[0, : w.shape[1]] for w in x])[:, :feat]
        a = a[(a != -1).any(dim=1)]
        table = near_data(a, cfg["vocab"], gen)
        enc.centroid_npy = table.float()
        hs = []
        hook = enc.encoder_output_linear.register_forward_hook(lambda m, i, o: hs.append(o.detach().clone()))
        sc.encode(str(audio))
        hook.remove()
        h = torch.cat([t[0] for t in hs])
        cb = enc.quantizer._codebook
        n = cb.embed.shape[1]
        embed = near_data(h, n, gen)
        cb.embed.copy_(embed[None])
        cb.embed_avg.copy_(embed[None])
    np.save(wdir / cb_rel, table.numpy().astype(np.float32))

    def half(state):  # float weights as float16 (exact in float32); schedules and flags as they are;
        # all-zero entries (parts never run at inference) as a zero-stride view of one element: same key,
        # shape and values after loading, no bytes on disk
        keep = ("betas", "alphas", "posterior_", "sqrt_", "log_one_minus", "logvar", "scale_factor", "decay",
                "num_updates", "initted", "cluster_size")
        out = {}
        for k, v in state.items():
            if v.is_floating_point() and not k.rsplit(".", 1)[-1].startswith(keep):
                v = v.half()
            if v.dim() and v.is_floating_point() and not v.any():
                out[k] = torch.zeros((), dtype=v.dtype).expand(v.shape)
            else:
                out[k] = v.clone()
        return out

    torch.save(half(enc.state_dict()), wdir / "encoder.ckpt")
    torch.save(half(dec.state_dict()), wdir / "decoder.ckpt")

    # -- the official run, from the files ---------------------------------------------------------------------
    enc, dec = build(cfg, wdir / cb_rel)
    enc.load_state_dict(torch.load(wdir / "encoder.ckpt", map_location="cpu"))
    dec.load_state_dict(torch.load(wdir / "decoder.ckpt", map_location="cpu"))
    sc = official_codec(enc, dec, cfg)
    with torch.no_grad():
        tokens, x = lstm_inputs(enc, lambda: sc.encode(str(audio)))
        features = torch.cat([w[:, :, :feat] for w in x]).numpy()
        latents = []
        hook = dec.first_stage_model.post_quant_conv.register_forward_pre_hook(
            lambda m, args: latents.append(args[0].detach().clone()))
        torch.manual_seed(cfg["decode_seed"])
        wave = sc.decode(tokens)
        hook.remove()
    tokens = tokens.numpy()
    commit = None
    if args.official:
        commit = subprocess.run(["git", "-C", args.official, "rev-parse", "HEAD"], capture_output=True,
                                text=True).stdout.strip() or None
    np.savez_compressed(
        out / "reference.npz", tokens=tokens.astype(np.int64), wave=np.asarray(wave, dtype=np.float32).reshape(-1),
        features=features.astype(np.float32), latents=latents[0].numpy().astype(np.float32),
        rng_canary=(torch.manual_seed(cfg["decode_seed"]), torch.randn(8))[1].numpy())
    meta = {"official_repo": OFFICIAL_REPO, "official_commit": commit, "torch": torch.__version__,
            "python": sys.version.split()[0], "numpy": np.__version__}
    (out / "provenance.json").write_text(json.dumps(meta, indent=2) + "\n")
    s, a_ = tokens[0, :, 0], tokens[0, :, 1]
    w = np.asarray(wave).reshape(-1)
    print(f"tokens {tokens.shape}: {len(np.unique(s))} semantic / {len(np.unique(a_))} acoustic distinct; "
          f"wave {w.shape} peak {np.abs(w).max():.3f} rms {w.std():.3f} |y|>0.99: {(np.abs(w) > 0.99).mean():.4f}")


if __name__ == "__main__":
    main()
