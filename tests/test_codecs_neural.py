"""The one base of the transformers codecs (bench.codecs.neural.NeuralCodec): every zoo codec's codebook sizes are
its config's, at the chosen operating point; the one encode signature (sample_rate=, lengths=) gives what coding each
item alone at the codec's rate gives; the bitrate is measured from the codes. Tiny random models, short clips."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import bench
from bench import audio as au
from bench.codecs.neural import NeuralCodec


def noise(b: int, t: int, seed: int = 0) -> torch.Tensor:
    return 0.1 * torch.randn(b, 1, t, generator=torch.Generator().manual_seed(seed))


def _expected_sizes(name: str, codec) -> tuple[int, ...]:
    """Codebook entries per stream, read from the loaded model's config by hand (the reference for the meta)."""
    cfg = codec.model.config
    if name in ("mimi", "xcodec", "higgs", "encodec", "dac"):
        return (int(cfg.codebook_size),) * codec.n_codebooks
    if name in ("xcodec2", "neucodec"):
        return (int(np.prod(cfg.quantization_levels)),)  # one FSQ code of prod(levels) values
    return (int(cfg.codebook_size),)  # wavtokenizer: one codebook


@pytest.mark.parametrize("spec, k", [("mimi:n_codebooks=5", 5), ("xcodec:variant=general,bandwidth=2", 4),
                                     ("xcodec2", 1), ("neucodec", 1), ("wavtokenizer:token_rate=75", 1),
                                     ("higgs:n_codebooks=6", 6)])
def test_codebook_sizes_are_the_configs_at_the_operating_point(spec, k):
    codec = bench.load_codec(spec, tiny=True)
    assert isinstance(codec, NeuralCodec)
    sizes = codec.meta.codebook_sizes
    assert sizes == _expected_sizes(codec.name, codec) and len(sizes) == k
    known = {"mimi": 2048, "xcodec": 1024, "xcodec2": 65536, "neucodec": 65536, "wavtokenizer": 4096, "higgs": 1024}
    assert set(sizes) == {known[codec.name]}  # the released configs' figures (tiny keeps the codebooks)
    hop = round(codec.meta.sample_rate / codec.meta.frame_rate)
    enc = codec.encode(noise(1, hop * 4 + 3))
    assert enc.codes.shape[1] == k and int(enc.codes.max()) < min(sizes)
    # measured bitrate: every code of stream j costs log2(sizes[j]) bits
    bits = enc.codes.shape[-1] * sum(math.log2(s) for s in sizes)
    assert enc.bitrate == pytest.approx(bits / ((hop * 4 + 3) / codec.meta.sample_rate), rel=1e-12)


def test_one_encode_signature_resamples_and_codes_padded_batches_item_by_item():
    codec = bench.load_codec("xcodec:bandwidth=1", tiny=True)
    sr = codec.meta.sample_rate
    a, b = noise(1, 1000, seed=1), noise(1, 1700, seed=2)
    batch = torch.zeros(2, 1, 1700)
    batch[0, :, :1000], batch[1] = a[0], b[0]
    enc = codec.encode(batch, lengths=[1000, 1700])
    alone = [codec.encode(a), codec.encode(b)]
    assert enc.frames == [x.codes.shape[-1] for x in alone]
    assert torch.equal(enc.item_codes(0), alone[0].codes) and torch.equal(enc.item_codes(1), alone[1].codes)
    assert (enc.codes[0, :, enc.frames[0]:] == -1).all()
    assert enc.item_bitrates == [x.bitrate for x in alone]
    rec = codec.decode(enc)
    assert rec.shape == (2, 1, 1700)
    assert torch.allclose(rec[0, :, :1000], codec.decode(alone[0])[0], atol=1e-6)
    assert not rec[0, :, 1000:].any()
    # at another rate: resampled with bench.audio.resample (soxr) first, then coded as at the codec's own rate
    x48 = noise(1, 4800, seed=3)
    at48 = codec.encode(x48, sample_rate=48000)
    own = torch.from_numpy(au.resample(x48[0].numpy(), 48000, sr))[None]
    assert torch.equal(at48.codes, codec.encode(own).codes) and at48.lengths == [own.shape[-1]]


def test_the_runner_passes_the_rate_to_every_codec():
    import inspect

    from bench.codecs import CODECS

    for entry in CODECS.entries():
        params = inspect.signature(entry.load().encode).parameters
        assert "sample_rate" in params, entry.name
        if issubclass(entry.load(), NeuralCodec) or entry.name == "semanticodec":
            assert "lengths" in params, entry.name


@pytest.mark.parametrize("spec", ["opus:bitrate=12", "mp3:bitrate=16", "codec2:bitrate=1.2", "identity"])
def test_classic_codecs_take_the_same_signature_and_code_each_item_alone(spec):
    codec = bench.load_codec(spec)
    sr = codec.meta.sample_rate or 16000
    a, b = noise(1, sr // 5, seed=4), noise(1, sr // 2, seed=5)
    batch = torch.zeros(2, 1, b.shape[-1])
    batch[0, :, : a.shape[-1]], batch[1] = a[0], b[0]
    enc = codec.encode(batch, sample_rate=sr, lengths=[a.shape[-1], b.shape[-1]])
    alone = [codec.encode(a, sample_rate=sr), codec.encode(b, sample_rate=sr)]
    assert enc.lengths == [a.shape[-1], b.shape[-1]]
    if enc.payload is not None and codec.name != "identity":  # the bytes of each item are those of the item alone
        assert enc.payload == [alone[0].payload[0], alone[1].payload[0]]
    rec = codec.decode(enc)
    assert rec.shape == (2, 1, b.shape[-1])
    if codec.name != "codec2":  # libcodec2's decoder draws random phases from a global state: no two decodes agree
        assert torch.allclose(rec[0, :, : a.shape[-1]], codec.decode(alone[0])[0], atol=1e-6)
