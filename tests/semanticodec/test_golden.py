"""SemantiCodec against the official code: golden outputs of haoheliu/SemantiCodec-inference on a small checkpoint.

golden/ holds a small random checkpoint in the official `checkpoint_path` layout (weights/), a 10.3 s test
signal, and what the OFFICIAL code produced from them (reference.npz): the tokens of `SemantiCodec.encode`,
the waveform of `SemantiCodec.decode` (4 DDIM steps, CFG 2.0, eta 1.0, after torch.manual_seed), and, to say
where a mismatch starts, the stacked AudioMAE features of each encoder window and the DDIM latent of the first
decoder window. golden/README.md names the official commit and how the files were made (no official code
is in this repository). Here bench loads the same files through its own loader and must reproduce:

* tokens: identical, both streams (two encoder windows, the second mostly padding);
* features (BiLSTM input, padding rows -1): within 1e-5 (measured: equal);
* first-window latent and decoded waveform (two decoder windows cross-faded, then trimmed): within 5e-5
  absolute (measured: 6e-6, on peaks of 3.5 and 0.84), float round-off of two float32 implementations.

The weights are discriminating (every tensor used at inference is random, none left at a default zero or one),
which the last tests check, so that a wrong layer order, distance or quirk changes the numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from bench.codecs.semanticodec import config as C
from bench.codecs.semanticodec import weights as W
from bench.codecs.semanticodec.codec import SemantiCodec, output_samples, overlap_add
from bench.codecs.semanticodec.decoder import LatentDiffusionDecoder
from bench.codecs.semanticodec.encoder import SemantiCodecEncoder
from bench.codecs.semanticodec.fbank import semanticodec_fbank

GOLDEN = Path(__file__).parent / "golden"
WAVE_ATOL = 5e-5  # decoded waveform and latent: absolute, float32 round-off of two implementations
# AudioMAE features (|x| up to 3): float32 kernels differ by CPU. The fixture was made on an Intel Xeon (Sapphire
# Rapids); on an AMD EPYC (Zen 4) ours differ from it by at most 8.8e-5 (318 of 16384 values above 1e-5), while
# the tokens stay identical (test_tokens_identical_to_official). A wrong layer moves them by 1e-1 or more.
FEATURE_ATOL = 2e-4


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def golden_config() -> tuple[dict, C.SemantiCodecConfig]:
    """config.json -> bench's config for the fixture's sizes (the generator built the official modules from it)."""
    raw = json.loads((GOLDEN / "config.json").read_text())
    enc = C.EncoderConfig(token_rate=raw["token_rate"], vocab=raw["vocab"], **raw["encoder"])
    d = raw["decoder"]
    dec = C.DecoderConfig(
        token_rate=raw["token_rate"], feature_dim=enc.feature_dim, pe_dim=d["pe_dim"],
        unet=C.UNetConfig(**{k: _tuples(v) for k, v in d["unet"].items()}),
        vae=C.VAEConfig(**{k: _tuples(v) for k, v in d["vae"].items()}),
        vocoder=C.VocoderConfig(**{k: _tuples(v) for k, v in d["vocoder"].items()}),
    )
    return raw, C.SemantiCodecConfig(raw["token_rate"], raw["vocab"], enc, dec, tiny=True)


@pytest.fixture(scope="module")
def golden():
    raw, cfg = golden_config()
    encoder, decoder = SemantiCodecEncoder(cfg.encoder), LatentDiffusionDecoder(cfg.decoder)
    W.load_official(encoder, decoder, cfg, GOLDEN / "weights")  # strict: every key and shape checked
    # the codec's public path (resampling, fbank, windows, token count) around the fixture's modules
    codec = SemantiCodec(token_rate=cfg.token_rate, vocab=cfg.vocab, tiny=True)
    codec.cfg = cfg
    codec.encoder, codec.decoder = encoder.eval(), decoder.eval()
    audio, sr = sf.read(GOLDEN / "audio.flac", dtype="float32")
    assert sr == 16000
    ref = dict(np.load(GOLDEN / "reference.npz"))
    return raw, codec, torch.from_numpy(audio), ref


def official_order_decode(codec: SemantiCodec, tokens: torch.Tensor, raw: dict) -> tuple[np.ndarray, torch.Tensor]:
    """Decode as the official `decode` does: its windows one after another from one seeded global RNG
    (x_T, then each step's noise), cross-faded and trimmed. Returns (waveform, first window's latent / scale)."""
    cond, _ = codec.conditions([tokens])
    torch.manual_seed(raw["decode_seed"])
    waves, first = [], None
    for j in range(cond.shape[0]):
        latent = codec.decoder.sample_latent(cond[j: j + 1], raw["ddim_steps"], raw["cfg_scale"], raw["eta"])
        if first is None:
            first = latent * (1.0 / codec.decoder.scale_factor)
        waves.append(codec.decoder.mel_to_wave(codec.decoder.latent_to_mel(latent)).numpy())
    return overlap_add(np.concatenate(waves))[: output_samples(len(tokens), raw["token_rate"])], first


def test_rng_stream_is_the_one_the_fixture_was_made_with(golden):
    # the decode draws its noise from torch's global CPU generator, as the official code does
    raw, *_, ref = golden
    torch.manual_seed(raw["decode_seed"])
    assert torch.equal(torch.randn(8), torch.from_numpy(ref["rng_canary"])), (
        "torch's CPU random stream differs from the one the golden fixture was made with: "
        "regenerate it as tests/semanticodec/golden/README.md says"
    )


def test_tokens_identical_to_official(golden):
    _, codec, audio, ref = golden
    enc = codec.encode(audio[None, None])
    ours = enc.codes.transpose(1, 2).numpy()  # official layout [1, N, 2]
    assert ours.shape == ref["tokens"].shape == (1, 260, 2)
    assert np.array_equal(ours[..., 0], ref["tokens"][..., 0]), "semantic tokens differ from the official code"
    assert np.array_equal(ours[..., 1], ref["tokens"][..., 1]), "acoustic tokens differ from the official code"


def test_tokens_do_not_depend_on_the_batch(golden):
    # bench batches items (the official code takes one file): the golden item beside a shorter one
    _, codec, audio, ref = golden
    other = torch.roll(audio, 12345)[: 3 * 16000]
    batch = torch.zeros(2, 1, audio.shape[0])
    batch[0, 0], batch[1, 0, : other.shape[0]] = audio, other
    enc = codec.encode(batch, lengths=[audio.shape[0], other.shape[0]])
    assert np.array_equal(enc.codes[0].T.numpy(), ref["tokens"][0])


def test_features_match_official(golden):
    _, codec, audio, ref = golden
    enc = codec.encoder
    with torch.inference_mode():
        fb, segs = semanticodec_fbank(audio[None], [audio.shape[0]])
        windows = fb[0, : segs[0] * C.MEL_FRAMES].reshape(segs[0], C.MEL_FRAMES, -1)
        feat = enc.semantic_features(windows)
        x = enc.condition_input(feat, enc.semantic_ids(feat), enc.padding_cutoff(windows))
    ours = x[..., : codec.cfg.encoder.feature_dim].numpy()
    assert ours.shape == ref["features"].shape == (2, 256, 32)
    assert (ref["features"][1] == -1).all(axis=1).sum() > 200  # the second window is mostly padding (-1 rows)
    np.testing.assert_allclose(ours, ref["features"], rtol=0, atol=FEATURE_ATOL)


def test_decoded_windows_match_official(golden):
    raw, codec, _, ref = golden
    tokens = torch.from_numpy(ref["tokens"][0])
    wave, latent = official_order_decode(codec, tokens, raw)
    np.testing.assert_allclose(latent.numpy(), ref["latents"], rtol=0, atol=WAVE_ATOL,
                               err_msg="DDIM latent of the first window (UNet, schedule, CFG) differs")
    assert wave.shape == ref["wave"].shape == (output_samples(260, raw["token_rate"]),)
    np.testing.assert_allclose(wave, ref["wave"], rtol=0, atol=WAVE_ATOL,
                               err_msg="decoded waveform (VAE, vocoder, cross-fade, trim) differs")


# -- the fixture can catch errors ------------------------------------------------------------------------------

def test_both_token_streams_use_many_codes(golden):
    *_, ref = golden
    tokens = ref["tokens"][0]
    assert len(np.unique(tokens[:, 0])) >= 200, "semantic stream nearly constant: the fixture hides errors"
    assert len(np.unique(tokens[:, 1])) >= 100, "acoustic stream nearly constant: the fixture hides errors"


def test_no_inference_weight_left_at_its_default(golden):
    _, codec, _, _ = golden
    never_run = ("model_ema.", "first_stage_model.encoder.", "first_stage_model.quant_conv.")
    schedule = ("betas", "alphas", "posterior", "sqrt_", "log_one", "logvar", "cluster_size")
    for module in (codec.encoder, codec.decoder):
        for key, value in module.state_dict().items():
            if (key.startswith(never_run) or not value.is_floating_point() or value.dim() == 0
                    or key.rsplit(".", 1)[-1].startswith(schedule)):
                continue
            default = value.numel() > 1 and bool((value == value.flatten()[0]).all()) or (
                value.numel() == 1 and value.item() in (0.0, 1.0))
            assert not default, f"{key} is constant ({value.flatten()[0].item()}): it would hide errors"
    unet = codec.decoder.unet
    # among them the convolutions that the official code zero-initialises (zero_module)
    assert unet.out[2].weight.std() > 0 and all(b[0].out_layers[3].weight.std() > 0 for b in unet.output_blocks)


def test_decoded_audio_is_not_saturated(golden):
    # the vocoder ends in tanh: weights that saturate it would make every decoder error invisible
    *_, ref = golden
    wave = ref["wave"]
    assert 0.02 < wave.std() < 0.5 and (np.abs(wave) > 0.99).mean() < 0.01


def test_fixture_is_small_and_documented():
    files = [p for p in GOLDEN.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert sum(p.stat().st_size for p in files) < 6_000_000
    prov = json.loads((GOLDEN / "provenance.json").read_text())
    assert prov["official_repo"] == "haoheliu/SemantiCodec-inference"
    assert len(prov["official_commit"]) == 40 and prov["official_commit"] in (GOLDEN / "README.md").read_text()
