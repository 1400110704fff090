"""Mimi, X-Codec, X-Codec2: operating points from their configs, the nearest-point choice, shapes, bitrates measured
from the codes, trimming, embeddings, determinism, agreement with the transformers models called directly, the
weights layouts (Hugging Face folders, Mimi's original file), `bench weights random` + `--weights`, errors, and one
end-to-end run. Tiny random models, clips of a few frames."""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import bench
from bench.cli import main as cli
from bench.codecs import weights as W
from bench.codecs.base import CodecError, CodecInputError, WeightsMissingError
from bench.codecs.mimi import (Mimi, _half_to_rotary, _rotary_to_half, mimi_original_to_port, mimi_port_to_original,
                               save_mimi_original)
from bench.codecs.xcodec import XCodec
from bench.codecs.xcodec2 import XCodec2, xcodec2_inputs

from conftest import tone

REFERENCE = Path(__file__).parent / "data" / "reference" / "xcodec2_features.json"


def noise(b: int, t: int, seed: int = 0) -> torch.Tensor:
    return 0.1 * torch.randn(b, 1, t, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def mimi():
    return Mimi(n_codebooks=8, tiny=True)


@pytest.fixture(scope="module")
def xcodec():
    return XCodec(variant="speech", bandwidth=1.5, tiny=True)


@pytest.fixture(scope="module")
def xcodec2():
    return XCodec2(tiny=True)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


# -- operating points -----------------------------------------------------------------------------------------

def test_operating_points_are_read_from_the_configs():
    from transformers import MimiConfig, Xcodec2Config, XcodecConfig

    m = MimiConfig()
    per = math.log2(m.codebook_size) * m.frame_rate / 1000  # 11 bits x 12.5 frames/s
    points = Mimi.operating_points()
    assert [p.options["n_codebooks"] for p in points] == list(range(1, m.num_quantizers + 1))
    assert [p.kbps for p in points] == pytest.approx([k * per for k in range(1, m.num_quantizers + 1)])
    assert per == 0.1375 and points[7].kbps == pytest.approx(1.1) and points[7].label == "mimi 1.1 kbps (8 codebooks)"
    x = XcodecConfig()
    for variant in ("speech", "general"):
        mine = [p for p in XCodec.operating_points() if p.options["variant"] == variant]
        assert [p.kbps for p in mine] == [float(b) for b in x.target_bandwidths]
    assert [p.label for p in XCodec.operating_points()][:2] == ["xcodec speech 0.5 kbps (1 codebook)",
                                                                "xcodec speech 1 kbps (2 codebooks)"]
    c = Xcodec2Config()
    entries = math.prod(c.quantization_levels)
    assert entries == 65536
    assert [p.kbps for p in XCodec2.operating_points()] == [math.log2(entries) * c.sampling_rate / c.hop_length / 1000]
    assert XCodec2.operating_points()[0].kbps == 0.8


def test_bitrate_picks_the_nearest_point_and_says_which(caplog):
    with caplog.at_level(logging.WARNING, logger="bench.codecs"):
        c = bench.load_codec("mimi", bitrate=1.0, tiny=True)  # 0.9625 (7) is nearer than 1.1 (8)
    assert c.n_codebooks == 7 and c.nominal_kbps == pytest.approx(0.9625)
    assert "mimi 0.9625 kbps (7 codebooks)" in caplog.text
    assert bench.load_codec("mimi", bitrate=1.1, tiny=True).n_codebooks == 8
    c = bench.load_codec("xcodec:variant=general", bitrate=1.2, tiny=True)  # within the variant asked for
    assert (c.variant.key, c.bandwidth, c.n_codebooks) == ("general", 1.0, 2)
    c = bench.load_codec("xcodec2", bitrate=0.5, tiny=True)
    assert c.nominal_kbps == 0.8


# -- encode / decode / embed ----------------------------------------------------------------------------------

def test_mimi_codes_shapes_and_bitrate_from_the_codes(mimi):
    enc = mimi.encode(noise(2, 4 * 1920))  # 4 frames x 8 codebooks x 11 bits in 0.32 s
    assert enc.codes.shape == (2, 8, 4) and enc.codes.dtype == torch.int64
    assert enc.bitrate == 1100.0 and int(enc.codes.max()) < 2048 and len(enc.codes.unique()) > 4
    enc = mimi.encode(noise(1, 4 * 1920 + 1))  # a 5th, partial frame
    assert enc.codes.shape[-1] == 5 and enc.bitrate == pytest.approx(8 * 5 * 11 / ((4 * 1920 + 1) / 24000))
    assert mimi.meta.codebook_sizes == (2048,) * 8 and mimi.meta.random_weights


def test_xcodec_codes_shapes_and_bitrate_from_the_codes(xcodec):
    enc = xcodec.encode(noise(2, 1600))  # 5 frames at 50 Hz; 1.5 kbps = 3 codebooks of 1024
    assert enc.codes.shape == (2, 3, 5) and enc.codes.dtype == torch.int64 and enc.bitrate == 1500.0
    enc = xcodec.encode(noise(1, 1601))  # zero-padded to a 6th frame
    assert enc.codes.shape == (1, 3, 6) and enc.bitrate == pytest.approx(3 * 6 * 10 / (1601 / 16000))


def test_xcodec2_codes_shapes_and_bitrate_from_the_codes(xcodec2):
    enc = xcodec2.encode(noise(2, 4800))  # one zero sample, then whole frames: ceil(4801 / 320) = 16
    assert enc.codes.shape == (2, 1, 16) and enc.codes.dtype == torch.int64
    assert enc.bitrate == pytest.approx(16 * 16 / 0.3) and int(enc.codes.max()) < 65536
    assert len(enc.codes.unique()) > 3 and xcodec2.meta.codebook_sizes == (65536,)
    enc = xcodec2.encode(noise(1, 16000 * 2))  # 2 s: 101 frames, 808 bit/s (800 in the limit)
    assert enc.codes.shape[-1] == 101 and enc.bitrate == pytest.approx(808.0)


@pytest.mark.parametrize("which,lengths", [("mimi", (1, 1919, 1921, 5000)), ("xcodec", (1, 319, 333)),
                                           ("xcodec2", (320, 1001))])
def test_decoded_length_is_the_input_length(request, which, lengths):
    codec = request.getfixturevalue(which)
    for t in lengths:
        x = noise(2, t, seed=t)
        y = codec.decode(codec.encode(x))
        assert y.shape == x.shape and y.dtype == torch.float32 and torch.isfinite(y).all()


def test_embeddings_are_what_the_decoders_receive(mimi, xcodec, xcodec2):
    x24, x16 = noise(1, 3 * 1920), noise(1, 1600)
    with torch.inference_mode():
        codes = mimi.encode(x24).codes
        emb = mimi.embed(x24)
        assert emb.shape == (1, 3, mimi.model.config.hidden_size)
        torch.testing.assert_close(emb, mimi.model.quantizer.decode(codes).transpose(1, 2))
        codes = xcodec.encode(x16).codes
        emb = xcodec.embed(x16)
        assert emb.shape == (1, 5, xcodec.model.config.hidden_size)
        torch.testing.assert_close(emb, xcodec.model.quantizer.decode(codes.transpose(0, 1)).transpose(1, 2))
        codes = xcodec2.encode(x16).codes
        emb = xcodec2.embed(x16)
        assert emb.shape == (1, 6, xcodec2.model.config.quantization_dim)
        expected = xcodec2.model.quantizer.project_out(xcodec2.model.quantizer.quantizer.codebook[codes[0, 0]])
        torch.testing.assert_close(emb[0], expected)


def test_determinism_and_seeds():
    x = noise(1, 2 * 1920)
    a, b = Mimi(tiny=True, seed=3), Mimi(tiny=True, seed=3)
    assert torch.equal(a.encode(x).codes, a.encode(x).codes) and torch.equal(a.encode(x).codes, b.encode(x).codes)
    assert a.fingerprint() == b.fingerprint() != Mimi(tiny=True, seed=4).fingerprint()
    assert not torch.equal(a.encode(x).codes, Mimi(tiny=True, seed=4).encode(x).codes)


# -- agreement with the transformers models (the reference) -----------------------------------------------------

def test_codes_and_audio_match_the_transformers_models(mimi, xcodec):
    x = noise(2, 3 * 1920 + 100, seed=7)
    enc = mimi.encode(x)
    with torch.inference_mode():
        ref = mimi.model.encode(x, num_quantizers=8).audio_codes
        ref_audio = mimi.model.decode(ref).audio_values[..., : x.shape[-1]]
    assert torch.equal(enc.codes, ref)
    torch.testing.assert_close(mimi.decode(enc), ref_audio, atol=1e-6, rtol=0)
    x = noise(2, 1500, seed=8)
    enc = xcodec.encode(x)
    with torch.inference_mode():  # transformers' feature extractor pads to whole 320-sample frames
        ref = xcodec.model.encode(torch.nn.functional.pad(x, (0, 100)), bandwidth=1.5, return_dict=False)
        ref_audio = xcodec.model.decode(ref, return_dict=False)[..., :1500]
    assert torch.equal(enc.codes, ref)
    torch.testing.assert_close(xcodec.decode(enc), ref_audio, atol=1e-6, rtol=0)


def test_xcodec2_inputs_and_codes_match_transformers_feature_extractor(xcodec2):
    reference = json.loads(REFERENCE.read_text())
    waves = [tone(0.3, 16000), tone(5000 / 16000, 16000, freq=220.0, seed=1)]
    for case, wave in zip(reference["cases"], waves):
        x = torch.from_numpy(wave)[None, None]
        values, feats = xcodec2_inputs(x, 320, 16000)
        ref_feats = torch.tensor(case["input_features"], dtype=torch.float32)[None]
        assert values.shape[-1] == case["input_values_length"] == math.ceil((case["samples"] + 1) / 320) * 320
        assert case["padding_mask_sum"] == case["samples"] + 1  # the extractor's one extra zero sample
        assert feats.shape == ref_feats.shape and case["input_features_mask_sum"] == feats.shape[1]
        torch.testing.assert_close(feats, ref_feats, atol=2e-4, rtol=0)  # the fixture is rounded to 1e-5
        assert torch.equal(values[..., : x.shape[-1]], x) and not values[..., x.shape[-1]:].any()
        with torch.inference_mode():  # the model called on the extractor's own output
            ref = xcodec2.model.encode(values, ref_feats, input_features_mask=torch.ones(1, feats.shape[1])).audio_codes
        enc = xcodec2.encode(x)
        assert torch.equal(enc.codes, ref)
        with torch.inference_mode():
            ref_audio = xcodec2.model.decode(audio_codes=ref).audio_values[..., : x.shape[-1]]
        torch.testing.assert_close(xcodec2.decode(enc), ref_audio, atol=1e-5, rtol=0)


# -- weights --------------------------------------------------------------------------------------------------

def test_mimi_original_key_mapping():
    # q rows of one head of 4: interleaved rotary pairs (0, 1), (2, 3) -> halves (0, 2 | 1, 3)
    w = torch.arange(8.0).reshape(4, 2)
    assert _rotary_to_half(w, heads=1)[:, 0].tolist() == [0.0, 4.0, 2.0, 6.0]
    assert torch.equal(_half_to_rotary(_rotary_to_half(w, 1), 1), w)
    state = {"encoder.model.3.conv.conv.weight": torch.ones(1), "decoder.model.2.convtr.convtr.bias": torch.ones(1),
             "downsample.conv.conv.conv.weight": torch.ones(1), "upsample.convtr.convtr.convtr.weight": torch.ones(1),
             "quantizer.rvq_first.vq.layers.0._codebook.embedding_sum": torch.ones(1),
             "quantizer.rvq_rest.vq.layers.3._codebook._initialized": torch.ones(1),
             "quantizer.rvq_first.input_proj.weight": torch.ones(1),
             "encoder_transformer.transformer.layers.0.norm1.weight": torch.ones(1),
             "decoder_transformer.transformer.layers.1.layer_scale_2.scale": torch.ones(1),
             "encoder_transformer.transformer.layers.0.self_attn.in_proj_weight": torch.arange(24.0).reshape(12, 2)}
    out = mimi_original_to_port(state, heads=1)
    assert sorted(out) == sorted([
        "encoder.layers.3.conv.weight", "decoder.layers.2.conv.bias", "downsample.conv.weight", "upsample.conv.weight",
        "quantizer.semantic_residual_vector_quantizer.layers.0.codebook.embed_sum",
        "quantizer.acoustic_residual_vector_quantizer.layers.3.codebook.initialized",
        "quantizer.semantic_residual_vector_quantizer.input_proj.weight",
        "encoder_transformer.layers.0.input_layernorm.weight", "decoder_transformer.layers.1.mlp_layer_scale.scale",
        "encoder_transformer.layers.0.self_attn.q_proj.weight", "encoder_transformer.layers.0.self_attn.k_proj.weight",
        "encoder_transformer.layers.0.self_attn.v_proj.weight"])
    q = out["encoder_transformer.layers.0.self_attn.q_proj.weight"]
    assert q[:, 0].tolist() == [0.0, 4.0, 2.0, 6.0]  # the first third, reordered
    assert out["encoder_transformer.layers.0.self_attn.v_proj.weight"][:, 0].tolist() == [16.0, 18.0, 20.0, 22.0]


def test_mimi_both_layouts_load_back_with_identical_codes(tmp_path, mimi):
    original = mimi_port_to_original(mimi.model)
    for name in ("encoder.model.0.conv.conv.weight", "decoder.model.2.convtr.convtr.weight",
                 "downsample.conv.conv.conv.weight", "upsample.convtr.convtr.convtr.weight",
                 "quantizer.rvq_first.vq.layers.0._codebook.embedding_sum",
                 "quantizer.rvq_rest.vq.layers.30._codebook.cluster_usage", "quantizer.rvq_rest.input_proj.weight",
                 "encoder_transformer.transformer.layers.0.self_attn.in_proj_weight",
                 "decoder_transformer.transformer.layers.0.linear2.weight"):
        assert name in original, name
    assert not any("q_proj" in k or "encoder_seanet" in k for k in original)
    path = save_mimi_original(mimi.model, tmp_path / "orig")
    assert path.name.startswith("tokenizer-") and path.name.endswith("-checkpoint125.safetensors")
    mimi.model.save_pretrained(str(tmp_path / "hf"))
    x = noise(2, 3 * 1920, seed=9)
    codes = mimi.encode(x).codes
    for where in (path, path.parent, tmp_path / "hf", tmp_path / "hf" / "model.safetensors"):
        other = Mimi(n_codebooks=8, weights=str(where))
        assert torch.equal(other.encode(x).codes, codes), where
        assert not other.meta.random_weights
    assert Mimi(weights=str(path)).weights_digest() == W.weights_digest([path])
    with pytest.raises(CodecError, match="not an original Mimi checkpoint"):
        from safetensors.torch import save_file

        save_file({"encoder.model.0.weight": torch.ones(1)}, str(tmp_path / "bad.safetensors"))
        Mimi(weights=str(tmp_path / "bad.safetensors"))


@pytest.mark.parametrize("name,variant,spec", [("mimi", None, "mimi:bitrate=1.1"),
                                               ("xcodec", "general", "xcodec:variant=general,bandwidth=0.5"),
                                               ("xcodec2", None, "xcodec2")])
def test_random_weights_round_trip_through_the_cli(tmp_path, capsys, name, variant, spec):
    dest = tmp_path / "w"
    assert cli(["weights", "random", name, "--dest", str(dest), "--tiny"] + (["--variant", variant] if variant else [])) == 0
    assert "RANDOM weights" in capsys.readouterr().out and (dest / W.RANDOM_MARKER).exists()
    sub = next(p for p in dest.iterdir() if p.is_dir())
    assert (sub / "config.json").is_file() and (sub / "model.safetensors").is_file()
    loaded = bench.load_codec(f"{spec}{',' if ':' in spec else ':'}weights={dest}")
    assert loaded.meta.random_weights  # rows from these weights are marked random
    same = bench.load_codec(spec, tiny=True)  # the writer's recipe: tiny, seed 0
    t = 2 * 1920 if name == "mimi" else 960
    x = noise(1, t)
    assert torch.equal(loaded.encode(x).codes, same.encode(x).codes)


def test_mimi_random_weights_in_the_original_layout(tmp_path):
    path = Mimi.write_random(tmp_path, tiny=True, layout="original")
    assert path.parent.name == "24khz" and path.suffix == ".safetensors"
    loaded = Mimi(weights=str(tmp_path))
    x = noise(1, 2 * 1920)
    assert loaded.meta.random_weights and torch.equal(loaded.encode(x).codes, Mimi(tiny=True).encode(x).codes)


def test_missing_weights_name_the_fetch_command(home):
    for cls, name in ((Mimi, "mimi"), (XCodec, "xcodec"), (XCodec2, "xcodec2")):
        assert not cls.weights_available()
        with pytest.raises(WeightsMissingError, match=rf"bench weights fetch {name}.*--weights PATH"):
            bench.load_codec(name)
    Mimi.write_random(W.weights_dir("mimi"), tiny=True)  # the cache layout: <codec>/<variant>/
    assert Mimi.weights_available() and bench.load_codec("mimi", bitrate=0.3).n_codebooks == 2
    rows = {(r["codec"], r["variant"]): r["present"] for r in W.list_weights()}
    assert rows[("mimi", "24khz")] and not rows[("xcodec", "speech")] and not rows[("xcodec2", "16khz")]


def test_fetch_refuses_unpinned_files_before_any_download(home):
    with pytest.raises(W.UnpinnedError, match=r"kyutai/mimi model.safetensors.*--trust-unpinned"):
        W.fetch("mimi")
    with pytest.raises(W.UnpinnedError, match="hf-audio/xcodec-hubert-librispeech"):
        W.fetch("xcodec", variant="speech")
    with pytest.raises(W.UnpinnedError, match="HKUSTAudio/xcodec2-hf"):
        W.fetch("xcodec2")
    with pytest.raises(W.UnpinnedError, match="tokenizer-e351c8d8-checkpoint125.safetensors"):
        W.fetch("mimi", source="original")
    assert not (home / "weights").exists()


# -- bad input ------------------------------------------------------------------------------------------------

def test_bad_options_and_input_say_what_to_do(mimi, xcodec2):
    with pytest.raises(CodecError, match="1 to 32 codebooks"):
        Mimi(n_codebooks=33, tiny=True)
    with pytest.raises(CodecError, match="0.5, 1, 1.5, 2, 4"):
        XCodec(bandwidth=3, tiny=True)
    with pytest.raises(CodecError, match="speech, general"):
        XCodec(variant="music", tiny=True)
    with pytest.raises(CodecError, match="no option 'bandwidth'"):
        bench.load_codec("xcodec2:bandwidth=1", tiny=True)
    with pytest.raises(CodecInputError, match="int16"):
        mimi.encode(torch.zeros(1, 1, 1920, dtype=torch.int16))
    with pytest.raises(CodecInputError, match="1-channel"):
        xcodec2.encode(torch.zeros(1, 2, 1600))
    with pytest.raises(CodecInputError, match="NaN"):
        mimi.encode(torch.full((1, 1, 1920), float("nan")))


def test_list_codecs_shows_licences_and_the_non_commercial_flag():
    out = subprocess.run([sys.executable, "-m", "bench.cli", "list", "codecs"], capture_output=True, text=True,
                         check=True).stdout
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "NON-COMMERCIAL" in lines["xcodec2"] and "CC-BY-NC-4.0" in lines["xcodec2"]
    assert "CC-BY-4.0" in lines["mimi"] and "0.1375" in lines["mimi"] and "NON-COMMERCIAL" not in lines["mimi"]
    assert "0.5, 1, 1.5, 2, 4" in lines["xcodec"]


# -- end to end -----------------------------------------------------------------------------------------------

def test_bench_run_end_to_end_on_random_weights(tmp_path):
    dest = tmp_path / "w"
    Mimi.write_random(dest, tiny=True)
    res = bench.run(codecs=[f"mimi:bitrate=1.1,weights={dest}"], tasks=["demo-speech"], metrics=["mel"], limit=2,
                    out=str(tmp_path / "out"))
    df = res.to_frame()
    assert len(df) == 1 and int(df["n"].iloc[0]) == 2 and int(df["n_failed"].iloc[0]) == 0
    assert bool(df["random_weights"].iloc[0])
    kbps = float(df["bitrate_kbps"].iloc[0])  # whole 80 ms frames: at most one frame above 1.1 kbps per clip
    assert 1.1 <= kbps < 1.1 * 1.05
