"""The oneDNN inference paths (linear layers, the encoder BiLSTM) against PyTorch's own modules in float64."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bench.codecs.semanticodec import onednn
from bench.codecs.semanticodec.lstm import BiLSTM

needs_onednn = pytest.mark.skipif(not onednn.available(), reason="this PyTorch build has no oneDNN linear ops")


class _CountingOps:
    """torch.ops.mkldnn, counting the oneDNN products taken (`linear` and `linear_add` both go through it)."""

    def __init__(self, ops):
        self._ops, self.products = ops, 0

    @property
    def _linear_pointwise(self):
        self.products += 1
        return self._ops._linear_pointwise

    def __getattr__(self, name):
        return getattr(self._ops, name)


@pytest.fixture
def ops(monkeypatch) -> _CountingOps:
    counting = _CountingOps(onednn._OPS)
    monkeypatch.setattr(onednn, "_OPS", counting)
    return counting


@pytest.fixture
def fast_calls(monkeypatch) -> list:
    """Input shapes of every BiLSTM forward that took the oneDNN path (the fallback is nn.LSTM, which matches the
    float64 references just as well, so the results alone cannot tell which path ran)."""
    calls, fast = [], BiLSTM._forward_onednn
    monkeypatch.setattr(BiLSTM, "_forward_onednn", lambda self, x: calls.append(tuple(x.shape)) or fast(self, x))
    return calls


@needs_onednn
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_float64(bias, ops):
    torch.manual_seed(0)
    x, w = torch.randn(3, 70, 96), torch.randn(200, 96) / 10
    b = torch.randn(200) if bias else None
    with torch.inference_mode():
        got = onednn.linear(x, w, b)
    assert ops.products == 1  # the oneDNN product, not the F.linear fallback
    want = F.linear(x.double(), w.double(), None if b is None else b.double())
    assert got.shape == (3, 70, 200) and got.dtype == torch.float32
    torch.testing.assert_close(got.double(), want, atol=2e-6, rtol=1e-6)


@needs_onednn
def test_linear_add_with_packed_weight():
    torch.manual_seed(1)
    x, w, other = torch.randn(5, 64), torch.randn(256, 64), torch.randn(5, 256)
    with torch.inference_mode():
        got = onednn.linear_add(x, onednn.packed(w, 5), other)
    torch.testing.assert_close(got.double(), x.double() @ w.double().T + other.double(), atol=2e-5, rtol=1e-6)


def test_linear_falls_back_where_onednn_does_not_apply(monkeypatch):
    have = onednn.available()
    if have:
        counting = _CountingOps(onednn._OPS)
        monkeypatch.setattr(onednn, "_OPS", counting)
    torch.manual_seed(2)
    layer = onednn.Linear(16, 8)
    x = torch.randn(4, 16, requires_grad=True)
    layer(x).sum().backward()  # autograd recording: plain F.linear, gradients flow
    assert x.grad is not None and layer.weight.grad is not None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert layer(x).dtype == torch.bfloat16
    with torch.inference_mode():
        wide = onednn.Linear(16, 8).double()
        torch.testing.assert_close(wide(x.double()), F.linear(x.double(), wide.weight, wide.bias))
        torch.backends.mkldnn.enabled = False
        try:
            assert torch.equal(layer(x), F.linear(x, layer.weight, layer.bias))
        finally:
            torch.backends.mkldnn.enabled = True
    if have:
        assert counting.products == 0  # autograd, autocast, float64, oneDNN disabled: no oneDNN product


def _reference(lstm: BiLSTM) -> torch.nn.LSTM:
    ref = torch.nn.LSTM(lstm.input_size, lstm.hidden_size, lstm.num_layers, batch_first=True,
                        bidirectional=True).double()
    ref.load_state_dict({k: v.double() for k, v in lstm.state_dict().items()})
    return ref


@needs_onednn
def test_bilstm_fast_path_matches_nn_lstm(monkeypatch):
    torch.manual_seed(3)
    lstm = BiLSTM(24, 32, num_layers=3).eval()
    assert list(lstm.state_dict()) == list(torch.nn.LSTM(24, 32, 3, batch_first=True, bidirectional=True).state_dict())
    ref = _reference(lstm)
    calls = []
    fast = BiLSTM._forward_onednn
    monkeypatch.setattr(BiLSTM, "_forward_onednn", lambda self, x: calls.append(x.shape) or fast(self, x))
    for batch in (3, 1, 17):  # one packed W_hh serves every batch size
        x = torch.randn(batch, 40, 24)
        with torch.inference_mode():
            out, (h, c) = lstm(x)
        want, (wh, wc) = ref(x.double())
        assert out.shape == (batch, 40, 64)
        torch.testing.assert_close(out.double(), want, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(h.double(), wh, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(c.double(), wc, atol=1e-6, rtol=1e-5)
    assert len(calls) == 3  # the oneDNN path ran each time


@needs_onednn
def test_bilstm_sees_new_weights(fast_calls):
    """The packed copy of W_hh follows in-place weight changes (e.g. a checkpoint loaded after a first run)."""
    torch.manual_seed(4)
    lstm = BiLSTM(8, 16, num_layers=1).eval()
    x = torch.randn(2, 10, 8)
    with torch.inference_mode():
        before = lstm(x)[0]
    with torch.no_grad():
        lstm.weight_hh_l0_reverse.mul_(-1.5)
    with torch.inference_mode():
        after = lstm(x)[0]
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after.double(), _reference(lstm)(x.double())[0], atol=1e-6, rtol=1e-5)
    assert fast_calls == [(2, 10, 8)] * 2  # both runs on the oneDNN path (with its packed W_hh)


def test_bilstm_keeps_autograd_and_initial_state():
    torch.manual_seed(5)
    lstm = BiLSTM(8, 16, num_layers=2)
    x = torch.randn(2, 6, 8, requires_grad=True)
    lstm(x)[0].sum().backward()
    assert x.grad is not None
    h0 = torch.randn(4, 2, 16)
    with torch.inference_mode():
        out = lstm(x.detach(), (h0, torch.zeros_like(h0)))[0]
    torch.testing.assert_close(out.double(), _reference(lstm)(x.detach().double(), (h0.double(), h0.double() * 0))[0],
                               atol=1e-6, rtol=1e-5)


def test_models_built_under_inference_mode_run():
    """Parameters made under inference_mode have no version counter; the weight caches must not need one."""
    from bench.codecs.semanticodec.hifigan import Generator

    with torch.inference_mode():
        lstm = BiLSTM(8, 16, num_layers=1).eval()
        voc = Generator(num_mels=8, upsample_initial_channel=64, resblock_kernel_sizes=(3,),
                        resblock_dilations=((1,),)).eval()
        out = lstm(torch.randn(2, 5, 8))[0]
        wave = voc(torch.randn(1, 8, 4))
    assert out.shape == (2, 5, 32) and wave.shape == (1, 1, voc.output_length(4))


# -- weight caches and in-place edits (issue 11, item 7) ---------------------------------------------


def _random_state(module: torch.nn.Module, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=g) / 4 for k, v in module.state_dict().items()}


@needs_onednn
@pytest.mark.parametrize("edit", ["copy_", "load_state_dict"])
def test_bilstm_built_under_inference_mode_follows_in_place_edits(edit, fast_calls):
    """Inference tensors have no version counter: a packed W_hh keyed by storage alone went stale (0.2 off)."""
    torch.manual_seed(6)
    x = torch.randn(2, 12, 8)
    with torch.inference_mode():
        lstm = BiLSTM(8, 16, num_layers=2).eval()
        lstm(x)  # fills the caches with the first weights
        new = _random_state(lstm, 7)
        if edit == "copy_":
            for name, value in new.items():
                getattr(lstm, name).copy_(value)
        else:
            lstm.load_state_dict(new)
        got = lstm(x)[0]
    assert fast_calls == [(2, 12, 8)] * 2  # inference-tensor weights take the oneDNN path too (packed per call)
    ref = torch.nn.LSTM(8, 16, 2, batch_first=True, bidirectional=True).double()
    ref.load_state_dict({k: v.double() for k, v in new.items()})
    torch.testing.assert_close(got.double(), ref(x.double())[0], atol=1e-6, rtol=1e-5)


@needs_onednn
def test_bilstm_packs_once_and_load_state_dict_clears_the_cache(monkeypatch):
    """The normal path (weights loaded, then run under inference_mode) packs each W_hh once; a later
    load_state_dict empties the cache, and the next call packs the new weights."""
    torch.manual_seed(8)
    lstm = BiLSTM(8, 16, num_layers=1).eval()
    packs = []
    real = onednn.packed
    monkeypatch.setattr(onednn, "packed", lambda w, b: packs.append(w.shape) or real(w, b))
    x = torch.randn(2, 10, 8)
    with torch.inference_mode():
        lstm(x)
        lstm(x)
    assert len(packs) == 2  # two directions, packed on the first call only
    new = _random_state(lstm, 9)
    lstm.load_state_dict(new)
    assert len(lstm._packed) == 0
    with torch.inference_mode():
        got = lstm(x)[0]
    assert len(packs) == 4
    ref = torch.nn.LSTM(8, 16, 1, batch_first=True, bidirectional=True).double()
    ref.load_state_dict({k: v.double() for k, v in new.items()})
    torch.testing.assert_close(got.double(), ref(x.double())[0], atol=1e-6, rtol=1e-5)


def test_vocoder_built_under_inference_mode_follows_in_place_edits():
    """The vocoder's channels-last kernel copies had the same stale-cache hole."""
    from bench.codecs.semanticodec.hifigan import Generator

    kw = dict(num_mels=8, upsample_initial_channel=32, resblock_kernel_sizes=(3,), resblock_dilations=((1,),))
    mel = torch.randn(1, 8, 4)
    with torch.inference_mode():
        torch.manual_seed(10)
        voc = Generator(**kw).eval()
        voc(mel)
        new = _random_state(voc, 11)
        for name, value in new.items():
            voc.get_parameter(name).copy_(value)
        got = voc(mel)
    fresh = Generator(**kw).eval()
    fresh.load_state_dict(new)
    with torch.no_grad():
        want = fresh(mel)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
