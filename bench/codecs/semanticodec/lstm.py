"""The encoder's bidirectional LSTM, with a faster float32 CPU inference path.

`BiLSTM` is an `nn.LSTM` (same parameters, same state-dict keys, same results to float round-off).
PyTorch's CPU LSTM runs oneDNN's RNN primitive, whose input projection ran at ~40 % of the throughput of
a plain oneDNN matrix product of the same size on our 2-core AMD machines (~165 vs ~400 GFLOP/s). For inference on CPU we split each layer and direction in two:

* the input projection of many time steps at once, `[T'*B, I] @ W_ih.T + (b_ih + b_hh)`: large oneDNN
  products (~2x faster than inside the RNN primitive), in chunks of ~512 rows (T' = 512 / B steps) so that
  the gates of a whole layer (100 MB at B = 8) are never allocated, and faulted in, at once;
* the recurrence, one `[B, H] @ W_hh.T + gates_t` per step with W_hh reordered once into oneDNN's
  blocked layout, then the gate non-linearities in place.

Measured on the full-size encoder (4 layers, H = 1536, 8 windows of 512 steps, 2 AMD cores): 8.7 s ->
6.4 s, max difference 8e-8 from `nn.LSTM` (both within 8e-8 of a float64 run), acoustic ids identical.
The chunked projections give bit-identical outputs to the unchunked ones there (8 x 512 steps, random
weights) and cut the minor page faults of one forward from ~327 k to ~114 k.
"""

from __future__ import annotations

import torch
from torch import nn

from . import onednn

PROJECTION_ROWS = 512  # rows (time steps x batch) per input-projection product: 12.6 MB of gates at 4H = 6144


class BiLSTM(nn.LSTM):
    """`nn.LSTM(..., batch_first=True, bidirectional=True)`; input `[B, T, I]` -> (`[B, T, 2H]`, (h_n, c_n))."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int):
        super().__init__(input_size=input_size, hidden_size=hidden_size, num_layers=num_layers, bias=True,
                         batch_first=True, bidirectional=True)
        self._packed = onednn.DerivedWeights()  # (layer, direction) -> W_hh in oneDNN's layout
        onednn.register_clear_on_load(self, self._packed)

    def forward(self, x, hx=None):
        fast = hx is None and isinstance(x, torch.Tensor) and x.dim() == 3 and x.shape[1] > 0
        if not (fast and onednn.usable(x, self.weight_hh_l0)):
            return super().forward(x, hx)
        return self._forward_onednn(x)

    def _hh(self, layer: int, suffix: str) -> torch.Tensor:
        """W_hh of (layer, direction) in oneDNN's blocked layout, reordered once (again if the weight changes or a
        state dict is loaded; every call for inference tensors: see `onednn.DerivedWeights`).

        Packed for 16 rows: measured as fast as a batch-specific packing for 1 to 64 rows (1.5x faster than
        packing for 1 row), so one copy serves every batch size."""
        w = getattr(self, f"weight_hh_l{layer}{suffix}")
        return self._packed.get((layer, suffix), w, lambda t: onednn.packed(t, 16))

    def _forward_onednn(self, x: torch.Tensor):
        b, t, _ = x.shape
        h_size = self.hidden_size
        # input projections in chunks of time steps (~PROJECTION_ROWS rows each) and two layer outputs used in turn:
        # every buffer is allocated once per call and the chunks stay small, so a call does not fault in ~1 GB
        # of fresh pages (the unchunked projections were [T, B, 4H], 100 MB per layer and direction at B = 8)
        steps = max(1, min(t, PROJECTION_ROWS // b))
        seq = x.transpose(0, 1).contiguous()  # [T, B, I]: one step's rows are contiguous
        outs = [seq.new_empty(t, b, 2 * h_size) for _ in range(min(2, self.num_layers))]
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            out = outs[layer % 2]
            for d, suffix in enumerate(("", "_reverse")):
                w_ih = getattr(self, f"weight_ih_l{layer}{suffix}")
                bias = getattr(self, f"bias_ih_l{layer}{suffix}") + getattr(self, f"bias_hh_l{layer}{suffix}")
                w_hh = self._hh(layer, suffix)
                h = seq.new_zeros(b, h_size)
                c = seq.new_zeros(b, h_size)
                cols = slice(d * h_size, (d + 1) * h_size)
                starts = range(0, t, steps) if d == 0 else reversed(range(0, t, steps))
                for s0 in starts:
                    s1 = min(s0 + steps, t)
                    gates_in = onednn.linear(seq[s0:s1].reshape((s1 - s0) * b, -1), w_ih, bias)
                    gates_in = gates_in.reshape(s1 - s0, b, 4 * h_size)
                    for k in (range(s1 - s0) if d == 0 else range(s1 - s0 - 1, -1, -1)):
                        g = onednn.linear_add(h, w_hh, gates_in[k])  # [B, 4H], gate order i, f, g, o
                        g[:, : 2 * h_size].sigmoid_()
                        g[:, 2 * h_size: 3 * h_size].tanh_()
                        g[:, 3 * h_size:].sigmoid_()
                        i, f, cand, o = g.split(h_size, dim=1)
                        c = torch.addcmul(f * c, i, cand)
                        h = o * torch.tanh(c)
                        out[s0 + k, :, cols] = h
                h_n.append(h)
                c_n.append(c)
            seq = out
        return seq.transpose(0, 1), (torch.stack(h_n), torch.stack(c_n))
