"""The CPU measurements behind two SemantiCodec choices, in one run.

    python benchmarks/cpu_kernels.py

1. float32 linear layers: `F.linear` (MKL on PyTorch's CPU builds) vs `bench.codecs.semanticodec.onednn.linear`
   (oneDNN), GFLOP/s for AudioMAE- and BiLSTM-sized products, and their largest difference.
2. The HiFi-GAN vocoder (full size, random weights): seconds per 10.24 s window run alone vs in a batch of 4.
Noisy on a loaded machine: compare the numbers from one run.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from bench.codecs.semanticodec import onednn  # noqa: E402
from bench.codecs.semanticodec.hifigan import Generator  # noqa: E402


def best(fn, repeats: int = 3) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    with torch.inference_mode():
        for m, k, n, what in ((4104, 768, 2304, "AudioMAE qkv, 8 windows"), (4096, 3072, 6144, "BiLSTM input, 8 windows")):
            x, w = torch.randn(m, k), torch.randn(n, k) / k ** 0.5
            flop = 2 * m * k * n
            t_mkl, t_dnn = best(lambda: F.linear(x, w)), best(lambda: onednn.linear(x, w))
            diff = (F.linear(x, w) - onednn.linear(x, w)).abs().max().item()
            print(f"{what:26s} F.linear {flop / t_mkl / 1e9:6.0f} GFLOP/s   oneDNN {flop / t_dnn / 1e9:6.0f} GFLOP/s   "
                  f"({t_mkl / t_dnn:.2f}x, max diff {diff:.2g})")
        voc = Generator().eval()
        mel = torch.randn(4, 64, 1024)
        alone = best(lambda: voc(mel[:1]), 2)
        batch = best(lambda: voc(mel), 2) / 4
        print(f"vocoder, s per 10.24 s window: alone {alone:.2f}, in a batch of 4 {batch:.2f}")


if __name__ == "__main__":
    main()
