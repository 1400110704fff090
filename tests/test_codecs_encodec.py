"""Encodec: operating points, bitrate arithmetic, agreement with the transformers reference, both weight
layouts, chunking, trimming, the missing-weights error. Tiny random models (tiny=True) and short noise."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import bench
from bench.codecs import weights as W
from bench.codecs.base import CodecError, WeightsMissingError
from bench.codecs.encodec import (ENCODEC_VARIANTS, Encodec, encodec_original_to_port, encodec_port_to_original,
                                  save_encodec_original)


def noise(b: int, c: int, t: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(b, c, t, generator=g)


@pytest.fixture(scope="module")
def mono():
    return Encodec(sample_rate=24000, bandwidth=6, tiny=True)


@pytest.fixture(scope="module")
def stereo():
    return Encodec(sample_rate=48000, bandwidth=6, tiny=True)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_operating_points_and_labels():
    points = Encodec.operating_points()
    assert [(p.options["sample_rate"], p.kbps) for p in points] == [
        (24000, 1.5), (24000, 3.0), (24000, 6.0), (24000, 12.0), (24000, 24.0),
        (48000, 3.0), (48000, 6.0), (48000, 12.0), (48000, 24.0)]
    assert points[0].label == "encodec 24kHz 1.5 kbps (2 codebooks)"
    assert points[-1].label == "encodec 48kHz stereo 24 kbps (16 codebooks)"


def test_codebooks_per_bandwidth():
    for sr, bw, k in [(24000, 1.5, 2), (24000, 3, 4), (24000, 6, 8), (24000, 12, 16), (24000, 24, 32),
                      (48000, 3, 2), (48000, 6, 4), (48000, 12, 8), (48000, 24, 16)]:
        assert ENCODEC_VARIANTS[sr].codebooks(bw) == k
    c = Encodec(sample_rate=24000, bandwidth=24, tiny=True)
    assert c.encode(noise(1, 1, 2000)).codes.shape == (1, 32, 7)


def test_bitrate_picks_the_nearest_point_within_the_variant():
    assert bench.load_codec("encodec", bitrate=1.5, tiny=True).options["bandwidth"] == 1.5
    c = bench.load_codec("encodec:sample_rate=48000", bitrate=1.5, tiny=True)  # no 1.5 at 48 kHz: 3
    assert (c.meta.sample_rate, c.meta.channels, c.bandwidth) == (48000, 2, 3.0)
    with pytest.raises(CodecError, match="1.5, 3, 6, 12, 24"):
        Encodec(bandwidth=5, tiny=True)
    with pytest.raises(CodecError, match="24000, 48000"):
        Encodec(sample_rate=16000, tiny=True)


def test_bitrate_is_measured_from_the_codes(mono, stereo):
    enc = mono.encode(noise(2, 1, 24000))  # 1 s: 75 frames x 8 codebooks x 10 bits
    assert enc.codes.shape == (2, 8, 75) and enc.bitrate == 6000.0
    enc = mono.encode(noise(1, 1, 24001))  # one sample more: a 76th frame
    assert enc.codes.shape[-1] == 76 and enc.bitrate == pytest.approx(8 * 76 * 10 / (24001 / 24000))
    # 48 kHz, 1 s: segments [0, 48000) and [47520, 48000) -> 150 + 2 frames, plus a 32-bit scale each
    enc = stereo.encode(noise(1, 2, 48000))
    assert enc.extra["segment_frames"] == [150, 2] and enc.extra["scales"].shape == (1, 2)
    assert enc.bitrate == pytest.approx(4 * 152 * 10 + 2 * 32)


def test_codes_and_audio_match_the_transformers_reference(mono, stereo):
    x = noise(2, 1, 12000 + 123)
    enc = mono.encode(x)
    with torch.inference_mode():
        ref = mono.model.encode(x, bandwidth=6.0)
        ref_audio = mono.model.decode(ref.audio_codes, ref.audio_scales)[0][..., :x.shape[-1]]
    assert torch.equal(enc.codes, ref.audio_codes[0])
    torch.testing.assert_close(mono.decode(enc), ref_audio, atol=1e-6, rtol=0)

    x = noise(2, 2, 48000 + 3000, seed=1)
    enc = stereo.encode(x)
    with torch.inference_mode():
        ref = stereo.model.encode(x, bandwidth=6.0)
        ref_audio = stereo.model.decode(ref.audio_codes, ref.audio_scales,
                                        last_frame_pad_length=ref.last_frame_pad_length)[0][..., :x.shape[-1]]
    codes = torch.cat(list(ref.audio_codes), dim=-1)
    codes = codes[..., :codes.shape[-1] - ref.last_frame_pad_length]
    assert torch.equal(enc.codes, codes)
    torch.testing.assert_close(stereo.decode(enc), ref_audio, atol=1e-6, rtol=0)


def test_decoded_length_is_the_input_length(mono, stereo):
    for c, lengths in ((mono, (1, 319, 321, 24017)), (stereo, (1, 639, 641))):
        for t in lengths:
            x = noise(2, c.meta.channels, t)
            y = c.decode(c.encode(x))
            assert y.shape == x.shape and y.dtype == torch.float32


def test_embedding_is_the_sum_of_the_chosen_codebook_entries(mono):
    x = noise(1, 1, 8000)
    codes = mono.encode(x).codes[0].numpy()  # [K, N]
    emb = mono.embed(x)
    books = [layer.codebook.embed.numpy() for layer in mono.model.quantizer.layers]
    expected = sum(books[k][codes[k]] for k in range(codes.shape[0]))  # [N, D]
    assert emb.shape == (1, codes.shape[1], books[0].shape[1])
    np.testing.assert_allclose(emb[0].numpy(), expected, atol=1e-5)


def test_chunked_codes_match_one_pass():
    c = Encodec(sample_rate=24000, bandwidth=3, tiny=True, chunk_seconds=1.0)
    whole = Encodec(sample_rate=24000, bandwidth=3, tiny=True)
    x = noise(1, 1, 24000 * 3 + 500, seed=3)  # 4 chunks, the last one short
    a, b = c.encode(x), whole.encode(x)
    assert a.codes.shape == b.codes.shape == (1, 4, 227)
    # the LSTM remembers all past audio, so equality is measured, not promised: 2 s of context suffices here
    assert (a.codes == b.codes).float().mean() >= 0.99
    torch.testing.assert_close(c.decode(a), whole.decode(a), atol=1e-5, rtol=0)


def test_original_key_mapping_known_names():
    # names as in the authors' state dict and in the port (the conversion tables publish both)
    state = {"encoder.model.1.block.1.conv.conv.weight_g": 1, "encoder.model.1.shortcut.conv.conv.bias": 2,
             "encoder.model.13.lstm.weight_ih_l1": 3, "decoder.model.3.convtr.convtr.weight_v": 4,
             "decoder.model.3.convtr.norm.weight": 5, "encoder.model.0.conv.norm.bias": 6,
             "quantizer.vq.layers.31._codebook.embed_avg": 7}
    assert encodec_original_to_port(state) == {
        "encoder.layers.1.block.1.conv.parametrizations.weight.original0": 1,
        "encoder.layers.1.shortcut.conv.bias": 2, "encoder.layers.13.lstm.weight_ih_l1": 3,
        "decoder.layers.3.conv.parametrizations.weight.original1": 4, "decoder.layers.3.norm.weight": 5,
        "encoder.layers.0.norm.bias": 6, "quantizer.layers.31.codebook.embed_avg": 7}
    with pytest.raises(CodecError, match="not an Encodec checkpoint"):
        encodec_original_to_port({"model.weight": 0})


@pytest.mark.parametrize("sr", [24000, 48000])
def test_both_layouts_load_back_with_identical_codes(tmp_path, sr):
    c = Encodec(sample_rate=sr, bandwidth=6, tiny=True, seed=7)
    original = encodec_port_to_original(c.model)
    assert f"encoder.model.0.conv.{'conv' if sr == 24000 else 'norm'}.bias" in original
    th = save_encodec_original(c.model, tmp_path / "orig")
    assert th.name.startswith(f"encodec_{sr // 1000}khz-") and th.name[-11:-3] == W.sha256_file(th)[:8]
    c.model.save_pretrained(tmp_path / "hf")
    x = noise(2, c.meta.channels, sr // 2 + 77, seed=2)
    codes = c.encode(x).codes
    from_th = Encodec(sample_rate=sr, bandwidth=6, weights=str(tmp_path / "orig"))
    from_hf = Encodec(sample_rate=sr, bandwidth=6, weights=str(tmp_path / "hf"))
    assert torch.equal(from_th.encode(x).codes, codes) and torch.equal(from_hf.encode(x).codes, codes)
    assert not from_th.meta.random_weights
    assert from_th.weights_digest() == W.weights_digest([th]) != from_hf.weights_digest()
    # a damaged release file fails its checksum instead of loading
    data = th.read_bytes()
    th.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(W.ChecksumError):
        Encodec(sample_rate=sr, bandwidth=6, weights=str(th))


def test_missing_weights_error_and_availability(home):
    assert not Encodec.weights_available()
    with pytest.raises(WeightsMissingError, match=r"bench weights fetch encodec.*--weights PATH"):
        Encodec(bandwidth=1.5)
    Encodec(tiny=True).model.save_pretrained(W.weights_dir("encodec", "24khz"))
    assert Encodec.weights_available() and not Encodec.weights_available(48000)
    c = bench.load_codec("encodec", bitrate=1.5)  # from the cache
    assert c.encode(noise(1, 1, 1000)).codes.shape == (1, 2, 4)


def test_identity_input_checks_and_fingerprint(mono):
    with pytest.raises(CodecError, match="1-channel"):
        mono.encode(noise(1, 2, 100))
    with pytest.raises(CodecError, match=r"\[B, C, T\]"):
        mono.encode(torch.zeros(100))
    a = Encodec(bandwidth=6, tiny=True)
    assert a.fingerprint() == mono.fingerprint()  # same recipe, same key
    assert Encodec(bandwidth=3, tiny=True).fingerprint() != a.fingerprint()
    assert Encodec(bandwidth=6, tiny=True, seed=1).weights_digest() != a.weights_digest()
    assert mono.meta.random_weights and mono.meta.frame_rate == 75 and math.isclose(mono.nominal_kbps, 6)
