"""Make xcodec2_features.json: transformers' Xcodec2FeatureExtractor on two tones (tests/conftest.tone).

The extractor needs torchaudio only for `torchaudio.compliance.kaldi.fbank`, a pure-torch file. Where torchaudio's
compiled extension does not load (torchaudio 2.11.0 under torch 2.13, as when this file was made), pass the path of
that file: it is loaded on its own and handed to the extractor. Run from the repository root:

    pip install --no-deps --target /tmp/ta torchaudio==2.11.0
    python tests/data/reference/make_xcodec2.py --kaldi /tmp/ta/torchaudio/compliance/kaldi.py
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import types
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CASES = (("tone(0.3, 16000)", dict(seconds=0.3, sr=16000)),
         ("tone(5000 / 16000, 16000, freq=220.0, seed=1)", dict(seconds=5000 / 16000, sr=16000, freq=220.0, seed=1)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kaldi", help="path of torchaudio/compliance/kaldi.py (when torchaudio itself cannot load)")
    args = ap.parse_args()
    sys.path.insert(0, str(HERE.parent.parent))
    from conftest import tone  # noqa: E402
    import transformers
    import transformers.models.xcodec2.feature_extraction_xcodec2 as fx

    source = "torchaudio"
    if args.kaldi:
        sys.modules.setdefault("torchaudio", types.ModuleType("torchaudio"))  # kaldi.py imports it (MFCC only)
        spec = importlib.util.spec_from_file_location("kaldi", args.kaldi)
        kaldi = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(kaldi)
        fx.torchaudio = types.SimpleNamespace(compliance=types.SimpleNamespace(kaldi=kaldi))
        source = args.kaldi
    fe = fx.Xcodec2FeatureExtractor()
    out = {"produced_by": f"transformers {transformers.__version__} Xcodec2FeatureExtractor() defaults; Kaldi fbank "
                          f"from {source}; inputs: tests/conftest.tone as named per case", "cases": []}
    for name, kw in CASES:
        wav = tone(**kw)
        r = fe(wav, sampling_rate=16000, return_tensors="pt")
        out["cases"].append({
            "input": name, "samples": int(wav.size), "input_values_length": int(r["input_values"].shape[-1]),
            "padding_mask_sum": int(r["padding_mask"].sum()), "input_features_mask_sum": int(r["input_features_mask"].sum()),
            "input_features": np.round(r["input_features"][0].numpy().astype(np.float64), 5).tolist()})
    (HERE / "xcodec2_features.json").write_text(json.dumps(out, separators=(",", ":")))


if __name__ == "__main__":
    main()
