"""DAC: operating points, bitrate arithmetic, agreement with the transformers reference, both weight layouts
(weight norm folded), exact chunking, trimming, the missing-weights error. Tiny random models, short noise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import bench
from bench.codecs import weights as W
from bench.codecs.base import CodecError, WeightsMissingError
from bench.codecs.dac import DAC, dac_original_to_port, dac_port_to_original, save_dac_original


def noise(b: int, t: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(b, 1, t, generator=g)


@pytest.fixture(scope="module")
def dac16():
    return DAC(sample_rate=16000, n_codebooks=4, tiny=True)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_operating_points_and_labels():
    points = DAC.operating_points()
    by_rate = {sr: [p for p in points if p.options["sample_rate"] == sr] for sr in (16000, 24000, 44100)}
    assert [len(v) for v in by_rate.values()] == [12, 32, 9]
    assert [p.kbps for p in by_rate[16000]][:3] == [0.5, 1.0, 1.5] and by_rate[24000][-1].kbps == 24.0
    assert [p.kbps for p in by_rate[44100]] == [0.86, 1.72, 2.58, 3.45, 4.31, 5.17, 6.03, 6.89, 7.75]
    assert by_rate[16000][0].label == "dac 16kHz 0.5 kbps (1 codebook)"
    assert by_rate[44100][1].label == "dac 44.1kHz 1.72 kbps (2 codebooks)"


def test_bitrate_picks_the_nearest_point_within_the_variant():
    c = bench.load_codec("dac:sample_rate=16000", bitrate=1.0, tiny=True)
    assert (c.meta.sample_rate, c.n_codebooks) == (16000, 2)
    c = bench.load_codec("dac:sample_rate=44100", bitrate=1.0, tiny=True)  # nearest at 44.1 kHz: 0.86
    assert (c.meta.sample_rate, c.n_codebooks, c.nominal_kbps) == (44100, 1, 0.86)
    with pytest.raises(CodecError, match="1 to 12 codebooks"):
        DAC(sample_rate=16000, n_codebooks=13, tiny=True)
    with pytest.raises(CodecError, match="16000, 24000, 44100"):
        DAC(sample_rate=22050, tiny=True)


def test_bitrate_is_measured_from_the_codes(dac16):
    enc = dac16.encode(noise(2, 16000))  # 1 s: 50 frames x 4 codebooks x 10 bits
    assert enc.codes.shape == (2, 4, 50) and enc.bitrate == 2000.0
    enc = dac16.encode(noise(1, 16001))  # padded to a 51st frame
    assert enc.codes.shape[-1] == 51 and enc.bitrate == pytest.approx(4 * 51 * 10 / (16001 / 16000))
    c = DAC(sample_rate=44100, n_codebooks=9, tiny=True)
    enc = c.encode(noise(1, 44100))  # ceil(44100 / 512) = 87 frames
    assert enc.codes.shape == (1, 9, 87) and enc.bitrate == pytest.approx(9 * 87 * 10)


def test_codes_and_audio_match_the_transformers_reference(dac16):
    x = noise(2, 8000 + 100)
    enc = dac16.encode(x)
    padded = torch.nn.functional.pad(x, (0, 26 * 320 - x.shape[-1]))
    with torch.inference_mode():
        ref = dac16.model.encode(padded, n_quantizers=4)
        ref_audio = dac16.model.decode(ref.quantized_representation).audio_values[:, None]
    assert torch.equal(enc.codes, ref.audio_codes)
    y = dac16.decode(enc)
    assert y.shape == x.shape
    n = min(ref_audio.shape[-1], x.shape[-1])  # the 16 kHz decoder gives 8 samples fewer than 26 * 320
    torch.testing.assert_close(y[..., :n], ref_audio[..., :n], atol=1e-6, rtol=0)
    assert torch.all(y[..., n:] == 0)


@pytest.mark.parametrize("t", [1, 319, 321, 1000])
def test_decoded_length_is_the_input_length(dac16, t):
    x = noise(2, t)
    assert dac16.decode(dac16.encode(x)).shape == x.shape


def test_chunked_codes_equal_one_pass_exactly():
    whole = DAC(sample_rate=16000, n_codebooks=3, tiny=True)
    chunked = DAC(sample_rate=16000, n_codebooks=3, tiny=True, chunk_seconds=0.5)  # 25 frames + 32 context
    x = noise(1, 16000 + 8000 + 77, seed=4)  # 3 chunks, the last one short
    a, b = chunked.encode(x), whole.encode(x)
    # the receptive field (~8 frames) is inside the context, so chunking changes nothing but float rounding
    assert torch.equal(a.codes, b.codes)
    torch.testing.assert_close(chunked.decode(a), whole.decode(b), atol=1e-6, rtol=0)


def test_embedding_is_what_the_decoder_receives(dac16):
    x = noise(1, 4000)
    codes = dac16.encode(x).codes[0].numpy()
    emb = dac16.embed(x)[0].numpy()  # [N, D]
    expected = 0.0
    for k, q in enumerate(dac16.model.quantizer.quantizers[:4]):  # out_proj(codebook[code]) summed
        w = q.out_proj.weight.detach().numpy()[:, :, 0]  # [D, 8]
        expected = expected + q.codebook.weight.detach().numpy()[codes[k]] @ w.T + q.out_proj.bias.detach().numpy()
    assert emb.shape == (codes.shape[1], 64)
    np.testing.assert_allclose(emb, expected, atol=1e-5)


def test_original_key_mapping_and_weight_norm_folding():
    g, v = torch.tensor([[[2.0]], [[3.0]]]), torch.tensor([[[3.0, 4.0]], [[1.0, 0.0]]])
    state = {"encoder.block.0.weight_g": g, "encoder.block.0.weight_v": v, "encoder.block.0.bias": torch.zeros(2),
             "encoder.block.1.block.0.block.1.weight_g": g, "encoder.block.1.block.0.block.1.weight_v": v,
             "encoder.block.4.block.3.alpha": torch.ones(1), "encoder.block.6.bias": torch.ones(1),
             "decoder.model.1.block.1.bias": torch.ones(1), "decoder.model.2.block.4.block.2.alpha": torch.ones(1),
             "decoder.model.5.alpha": torch.ones(1), "quantizer.quantizers.3.codebook.weight": torch.ones(1)}
    out = dac_original_to_port(state, n_blocks=4)
    assert sorted(out) == sorted([
        "encoder.conv1.weight", "encoder.conv1.bias", "encoder.block.0.res_unit1.conv1.weight",
        "encoder.block.3.snake1.alpha", "encoder.conv2.bias", "decoder.block.0.conv_t1.bias",
        "decoder.block.1.res_unit3.snake2.alpha", "decoder.snake1.alpha", "quantizer.quantizers.3.codebook.weight"])
    # w = g * v / |v| per output channel: |(3, 4)| = 5 -> 2 * (0.6, 0.8); |(1, 0)| = 1 -> 3 * (1, 0)
    np.testing.assert_allclose(out["encoder.conv1.weight"].numpy(), [[[1.2, 1.6]], [[3.0, 0.0]]], rtol=1e-6)
    with pytest.raises(CodecError, match="not a DAC checkpoint"):
        dac_original_to_port({"encoder.block.9.block.7.weight": torch.ones(1)}, n_blocks=4)


@pytest.mark.parametrize("sr", [16000, 44100])
def test_both_layouts_load_back_with_identical_codes(tmp_path, sr):
    c = DAC(sample_rate=sr, n_codebooks=3, tiny=True, seed=5)
    blob = dac_port_to_original(c.model)
    assert blob["metadata"]["kwargs"]["sample_rate"] == sr and "encoder.block.0.weight_g" in blob["state_dict"]
    pth = save_dac_original(c.model, tmp_path / "orig")
    assert pth.name == f"weights_{sr // 1000}khz.pth"
    c.model.save_pretrained(tmp_path / "hf")
    x = noise(2, sr // 4 + 33, seed=6)
    codes = c.encode(x).codes
    from_pth = DAC(sample_rate=sr, n_codebooks=3, weights=str(tmp_path / "orig"))
    from_hf = DAC(sample_rate=sr, n_codebooks=3, weights=str(tmp_path / "hf"))
    assert torch.equal(from_pth.encode(x).codes, codes) and torch.equal(from_hf.encode(x).codes, codes)
    assert from_pth.weights_digest() == W.weights_digest([pth])
    with pytest.raises(CodecError, match="pass sample_rate="):  # a file of another variant says so
        DAC(sample_rate=24000, weights=str(pth))
    data = pth.read_bytes()
    pth.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # damaged after its digest was recorded
    with pytest.raises(W.ChecksumError):
        DAC(sample_rate=sr, n_codebooks=3, weights=str(pth))


def test_missing_weights_error_and_availability(home):
    assert not DAC.weights_available()
    with pytest.raises(WeightsMissingError, match=r"bench weights fetch dac.*--weights PATH"):
        bench.load_codec("dac", bitrate=1.0)
    save_dac_original(DAC(tiny=True).model, W.weights_dir("dac", "16khz"))
    assert DAC.weights_available() and not DAC.weights_available(44100)
    c = bench.load_codec("dac", bitrate=1.0)
    assert not c.meta.random_weights and c.encode(noise(1, 640)).codes.shape == (1, 2, 2)
