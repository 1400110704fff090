"""Reference outputs for NeuCodec, WavTokenizer and the Higgs audio v2 tokenizer, computed by the transformers
pipeline itself (feature extractors + models) with the real torchaudio, in an environment that never imports bench.

    python tests/data/reference/make_zoo_b.py CHECKPOINTS OUT.npz

CHECKPOINTS is the folder that `bench weights random NAME --tiny --dest CHECKPOINTS` (seed 0) filled for neucodec,
wavtokenizer (variants 40 and 75) and higgs; each file's sha256 is stored beside the outputs, so the tests know
they regenerate the same weights. Only public APIs of transformers and torchaudio are called.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torchaudio
import transformers
from transformers import (
    DacFeatureExtractor,
    HiggsAudioV2TokenizerModel,
    NeuCodecFeatureExtractor,
    NeuCodecModel,
    WavTokenizerFeatureExtractor,
    WavTokenizerModel,
)


def signal(n: int, sr: int, seed: int) -> np.ndarray:
    """Noise plus a tremolo tone: float32 `[n]`, peak well inside [-1, 1]."""
    rng = np.random.RandomState(seed)
    t = np.arange(n) / sr
    return (0.05 * rng.randn(n) + 0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 3 * t)).astype(np.float32)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(ck: Path, out: Path) -> None:
    res: dict[str, np.ndarray] = {}
    meta = {"torch": torch.__version__, "torchaudio": torchaudio.__version__, "transformers": transformers.__version__,
            "numpy": np.__version__, "checkpoints": {}}
    with torch.no_grad():
        # NeuCodec: the feature extractor (Kaldi fbank via torchaudio), codes and the 24 kHz decoder output
        fe = NeuCodecFeatureExtractor()
        model = NeuCodecModel.from_pretrained(ck / "neucodec").eval()
        for n in (3200, 4321):
            x = signal(n, 16000, n)
            inputs = fe(audio=x, sampling_rate=16000, return_tensors="pt")
            codes = model.encode(**inputs).audio_codes
            res[f"neucodec_{n}_audio"] = x
            res[f"neucodec_{n}_input_values"] = inputs["input_values"].numpy()
            res[f"neucodec_{n}_input_features"] = inputs["input_features"].numpy()
            res[f"neucodec_{n}_codes"] = codes.numpy().astype(np.int64)
            res[f"neucodec_{n}_decoded"] = model.decode(audio_codes=codes).audio_values.numpy()
        # torchaudio's resampler, as the Higgs model calls it (24 kHz -> the HuBERT's 16 kHz)
        for n in (4800, 9601):
            x = signal(n, 24000, n)
            res[f"resample_{n}_audio"] = x
            res[f"resample_{n}_16k"] = torchaudio.functional.resample(torch.from_numpy(x)[None, None], 24000,
                                                                      16000).numpy()
        # WavTokenizer: both token rates
        for key in ("large-unify-40token", "large-speech-75token-v2"):
            model = WavTokenizerModel.from_pretrained(ck / key).eval()
            fe = WavTokenizerFeatureExtractor(hop_length=model.config.hop_length)
            x = signal(4800, 24000, 1)
            inputs = fe(audio=x, sampling_rate=24000, return_tensors="pt")
            codes = model.encode(**inputs).audio_codes
            res[f"wavtokenizer_{key}_audio"] = x
            res[f"wavtokenizer_{key}_codes"] = codes.numpy().astype(np.int64)
            res[f"wavtokenizer_{key}_decoded"] = model.decode(codes).audio_values.numpy()
        # Higgs: the converter's feature extractor (DAC, hop 960), every target bandwidth
        model = HiggsAudioV2TokenizerModel.from_pretrained(ck / "higgs-audio-v2-tokenizer").eval()
        fe = DacFeatureExtractor(feature_size=1, hop_length=960, padding_side="right", padding_value=0.0,
                                 return_attention_mask=True, sampling_rate=24000)
        x = signal(4321, 24000, 2)
        inputs = fe(raw_audio=x, sampling_rate=24000, return_tensors="pt")
        res["higgs_audio"] = x
        for bw in model.config.target_bandwidths:
            res[f"higgs_codes_{bw:g}kbps"] = model.encode(inputs["input_values"], bandwidth=bw,
                                                          return_dict=False).numpy().astype(np.int64)
        full = torch.from_numpy(res[f"higgs_codes_{model.config.target_bandwidths[-1]:g}kbps"])
        res["higgs_decoded"] = model.decode(full, return_dict=False).numpy()
    for d in sorted(p for p in ck.iterdir() if p.is_dir()):
        meta["checkpoints"][d.name] = sha256(d / "model.safetensors")
    res["meta_json"] = np.array(json.dumps(meta, sort_keys=True))
    np.savez_compressed(out, **res)
    print(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
