"""SemantiCodec decoder: state-dict layout against the official decoder.ckpt key list (no weights allocated).

data/decoder_keys_tokenrate100.tsv.gz (key, shape, dtype) is the decoder.ckpt part of the key dump in the spec
(semanticodec_keys_tokenrate100.tsv), made by building the official LatentDiffusion at token rate 100 and listing
its state_dict.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest
import torch

from bench.codecs.semanticodec.config import get_config
from bench.codecs.semanticodec.decoder import LatentDiffusionDecoder

KEYS = Path(__file__).parent / "data" / "decoder_keys_tokenrate100.tsv.gz"


def _meta_decoder(rate: int) -> LatentDiffusionDecoder:
    with torch.device("meta"):  # shapes only: the rate-100 decoder is 260 M elements
        return LatentDiffusionDecoder(get_config(rate, 4096).decoder)


def _official_keys() -> dict[str, tuple[tuple[int, ...], str]]:
    keys = {}
    for line in gzip.decompress(KEYS.read_bytes()).decode().splitlines():
        key, shape, dtype = line.split("\t")
        keys[key] = (tuple(int(s) for s in re.findall(r"\d+", shape)), dtype)
    return keys


def test_rate100_keys_shapes_dtypes_match_official_dump():
    ref = _official_keys()
    assert len(ref) == 2622  # spec section 6.6
    sd = _meta_decoder(100).state_dict()
    ours = {k: (tuple(v.shape), str(v.dtype)) for k, v in sd.items()}
    assert sorted(set(ref) - set(ours)) == []
    assert sorted(set(ours) - set(ref)) == []
    assert {k: v for k, v in ours.items() if ref[k] != v} == {}


@pytest.mark.parametrize("rate, unet_m, total_m", [(100, 75.04, 260.74), (50, 85.854, 282.363), (25, 107.481, 325.617)])
def test_parameter_counts_per_rate(rate, unet_m, total_m):
    # spec section 3: UNet 75.04 / 85.85 / 107.48 M; decoder.ckpt 260.74 / 282.36 / 325.62 M elements.
    dec = _meta_decoder(rate)
    unet = sum(p.numel() for p in dec.unet.parameters())
    total = sum(v.numel() for v in dec.state_dict().values())
    assert unet / 1e6 == pytest.approx(unet_m, abs=0.006)
    assert total / 1e6 == pytest.approx(total_m, abs=0.006)
    # only the 16 cross-attention to_k/to_v input widths depend on the rate: delta = 2 * 3520 * (ctx - 1728)
    ref = sum(p.numel() for p in _meta_decoder(100).unet.parameters())
    assert unet - ref == 2 * 3520 * (dec.cfg.context_dim - 1728)


def test_ema_buffers_mirror_unet_parameters():
    dec = _meta_decoder(100)
    ema = {k[len("model_ema."):]: v.shape for k, v in dec.state_dict().items() if k.startswith("model_ema.")}
    unet = {k.replace(".", ""): p.shape for k, p in dec.model.named_parameters()}
    assert ema.pop("decay") == torch.Size([]) and ema.pop("num_updates") == torch.Size([])
    assert ema == unet


def test_tiny_uses_the_official_key_patterns():
    full = {re.sub(r"\d+", "#", k) for k in _meta_decoder(100).state_dict()}
    tiny = LatentDiffusionDecoder(get_config(100, 4096, tiny=True).decoder)
    tiny_patterns = {re.sub(r"\d+", "#", k) for k in tiny.state_dict()}
    assert tiny_patterns <= full
    # every top-level group of the checkpoint is present
    for prefix in ("model.diffusion_model.", "model_ema.", "first_stage_model.encoder.", "first_stage_model.decoder.",
                   "first_stage_model.vocoder.", "first_stage_model.post_quant_conv.", "scale_factor", "logvar"):
        assert any(k.startswith(prefix) for k in tiny.state_dict()), prefix


def test_strict_round_trip_and_wrong_shape_fails(tmp_path):
    cfg = get_config(100, 4096, tiny=True).decoder
    a = LatentDiffusionDecoder(cfg)
    a.scale_factor.fill_(0.5)
    torch.save(a.state_dict(), tmp_path / "decoder.ckpt")
    b = LatentDiffusionDecoder(cfg)
    b.load_state_dict(torch.load(tmp_path / "decoder.ckpt"), strict=True)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    sd = a.state_dict()
    key = "model.diffusion_model.out.2.weight"
    sd[key] = torch.zeros(1)
    with pytest.raises(RuntimeError, match="size mismatch"):
        b.load_state_dict(sd, strict=True)
