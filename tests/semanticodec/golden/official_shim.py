"""Environment workarounds for importing the official SemantiCodec on a CPU-only torch (no official code here).

* torchvision 0.28 (installed --no-deps) cannot load its C ops against this torch, and timm's import touches two
  of them: declare their schemas so the import succeeds (they are never called).
* torchaudio 2.11 (installed --no-deps, its lib/*.so moved aside) keeps its pure-python kaldi fbank and
  resample; torchaudio.load needs torchcodec, so it reads with soundfile instead (float32, [channels, T]).
"""
import soundfile as sf
import torch

_lib = torch.library.Library("torchvision", "DEF")
_lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
_lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")

import torchaudio  # noqa: E402


def _load(path, *args, **kwargs):
    data, sr = sf.read(path, dtype="float32", always_2d=True)
    return torch.from_numpy(data.T.copy()), sr


torchaudio.load = _load
