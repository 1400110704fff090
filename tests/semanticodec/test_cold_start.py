"""The encoder's memory-stable passes (cold-start work, issue 15): chunked BiLSTM input projections and AudioMAE
in groups of windows give the results of the unchunked passes (and do run in those chunks and groups: counted
per product and per pass), and a second batch of another shape reuses the
prepared state (the packed W_hh copies) instead of redoing it. Tiny configurations; no timings asserted."""

from __future__ import annotations

import pytest
import torch

from bench.codecs.semanticodec import encoder as encoder_module
from bench.codecs.semanticodec import lstm as lstm_module
from bench.codecs.semanticodec import onednn
from bench.codecs.semanticodec.codec import SemantiCodec
from bench.codecs.semanticodec.lstm import BiLSTM

needs_onednn = pytest.mark.skipif(not onednn.available(), reason="this PyTorch build has no oneDNN ops")


def _float64_reference(lstm: BiLSTM) -> torch.nn.LSTM:
    ref = torch.nn.LSTM(lstm.input_size, lstm.hidden_size, lstm.num_layers, batch_first=True,
                        bidirectional=True).double()
    ref.load_state_dict({k: v.double() for k, v in lstm.state_dict().items()})
    return ref


def _projection_rows(monkeypatch) -> list[int]:
    """Rows of every input-projection product the BiLSTM's oneDNN path makes, in call order."""
    rows, real = [], onednn.linear
    monkeypatch.setattr(onednn, "linear", lambda x, w, b=None: rows.append(x.shape[0]) or real(x, w, b))
    return rows


# PROJECTION_ROWS -> rows of each projection (batch 2, 11 steps; per layer the forward chunks, then the reverse
# ones from the end): 1 step per chunk; 3 steps (6 rows) with a 2-step tail; 7 rows also give 3 steps; one chunk
CHUNKS = {1: [2] * 11 + [2] * 11, 6: [6, 6, 6, 4] + [4, 6, 6, 6], 7: [6, 6, 6, 4] + [4, 6, 6, 6], 10**6: [22, 22]}


@needs_onednn
@pytest.mark.parametrize("rows", list(CHUNKS))
def test_bilstm_chunked_projection_matches_nn_lstm(monkeypatch, rows):
    torch.manual_seed(11)
    lstm = BiLSTM(12, 16, num_layers=3).eval()
    x = torch.randn(2, 11, 12)
    monkeypatch.setattr(lstm_module, "PROJECTION_ROWS", rows)
    made = _projection_rows(monkeypatch)
    with torch.inference_mode():
        out, (h, c) = lstm(x)
    assert made == CHUNKS[rows] * 3  # the oneDNN path ran, in chunks of PROJECTION_ROWS (3 layers)
    want, (wh, wc) = _float64_reference(lstm)(x.double())
    torch.testing.assert_close(out.double(), want, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(h.double(), wh, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(c.double(), wc, atol=1e-6, rtol=1e-5)
    # the reverse direction must start from the last step: flipping the input flips the backward half
    with torch.inference_mode():
        flipped = lstm(x.flip(1))[0]
    want_flipped = _float64_reference(lstm)(x.flip(1).double())[0]
    torch.testing.assert_close(flipped.double(), want_flipped, atol=1e-6, rtol=1e-5)


@needs_onednn
def test_bilstm_chunking_does_not_change_results(monkeypatch):
    """Chunked and unchunked projections give the same float32 outputs (tokens can only be identical)."""
    torch.manual_seed(12)
    lstm = BiLSTM(24, 32, num_layers=2).eval()
    x = torch.randn(3, 40, 24)
    made = _projection_rows(monkeypatch)
    with torch.inference_mode():
        monkeypatch.setattr(lstm_module, "PROJECTION_ROWS", 10**6)
        whole = lstm(x)[0]
        assert made == [120] * 4  # 40 steps x 3 items in one product per layer and direction
        made.clear()
        monkeypatch.setattr(lstm_module, "PROJECTION_ROWS", 9)
        chunked = lstm(x)[0]
    # 9 rows -> 3 steps of 3 items: 13 chunks of 9 rows and a 1-step tail, first or last by direction
    assert made == ([9] * 13 + [3] + [3] + [9] * 13) * 2
    torch.testing.assert_close(chunked, whole, atol=2e-7, rtol=0)


@pytest.fixture(scope="module")
def tiny_codec():
    return SemantiCodec(tiny=True, token_rate=100, vocab=4096, seed=0)


def _speechlike(n: int, seconds: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * 16000)) / 16000
    tones = [torch.sin(2 * torch.pi * (150 + 60 * i) * t) * (0.5 + 0.4 * torch.sin(2 * torch.pi * 3 * t))
             for i in range(n)]
    return (torch.stack(tones) + 0.01 * torch.randn(n, t.numel(), generator=g))[:, None].float()


def test_audiomae_window_groups_match_one_pass(monkeypatch, tiny_codec):
    enc = tiny_codec.encoder
    fb = torch.randn(5, 1024, 128, generator=torch.Generator().manual_seed(3))
    passes = []  # windows per AudioMAE pass
    hook = enc.audiomae.register_forward_hook(lambda mod, inp, out: passes.append(inp[0].shape[0]))
    try:
        with torch.inference_mode():
            monkeypatch.setattr(encoder_module, "MAE_WINDOWS", 10**6)
            whole_feat = enc.semantic_features(fb)
            whole_tokens = enc(fb)
            assert passes == [5, 5]
            passes.clear()
            monkeypatch.setattr(encoder_module, "MAE_WINDOWS", 2)  # groups of 2, 2, 1
            grouped_feat = enc.semantic_features(fb)
            grouped_tokens = enc(fb)
            assert passes == [2, 2, 1] * 2
    finally:
        hook.remove()
    torch.testing.assert_close(grouped_feat, whole_feat, atol=1e-6, rtol=1e-5)
    assert torch.equal(grouped_tokens, whole_tokens)


def test_second_batch_of_other_shape_reuses_prepared_state(tiny_codec):
    """A batch of other lengths and item count reuses the packed W_hh copies, and each item's tokens do not
    depend on the batch it came in (first batch vs second batch vs alone)."""
    codec = tiny_codec
    lstm = codec.encoder.encoder
    first = _speechlike(2, 3.0, seed=1)
    codec.encode(first)
    packed = {k: v[2] for k, v in lstm._packed._entries.items()}
    if onednn.available():  # not `usable()`: a path that never packs makes it false, and the reuse check vacuous
        assert len(packed) == 2 * lstm.num_layers
    second = torch.zeros(3, 1, 16000 * 13)
    second[:2, :, : first.shape[-1]] = first
    second[2] = _speechlike(1, 13.0, seed=2)[0]
    enc2 = codec.encode(second, lengths=[first.shape[-1], first.shape[-1], second.shape[-1]])
    after = {k: v[2] for k, v in lstm._packed._entries.items()}
    assert after.keys() == packed.keys() and all(after[k] is packed[k] for k in packed)  # not remade
    for i in range(2):
        alone = codec.encode(first[i: i + 1])
        assert torch.equal(enc2.codes[i, :, : alone.frames[0]], alone.codes[0])
    long_alone = codec.encode(second[2:])
    assert torch.equal(enc2.codes[2, :, : long_alone.frames[0]], long_alone.codes[0])
