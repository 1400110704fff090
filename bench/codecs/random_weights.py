"""Random-init checkpoints written in each codec's official layout, for wiring tests without a network.

`bench weights random NAME --dest DIR` writes what `--weights DIR` then loads exactly as it would load the
released files. The numbers such weights produce mean nothing about the codec: they exercise loading,
shapes, the runner and the reports. A marker file (`RANDOM_WEIGHTS.txt`) beside them makes every table and
plot label their results [random weights].
"""

from __future__ import annotations

from pathlib import Path


def write_random(name: str, dest: str | Path, variant: str | None = None, tiny: bool = False, seed: int = 0) -> Path:
    """Write random weights for `name` ("encodec", "dac", "semanticodec") under `dest`; returns the path."""
    from bench.codecs.weights import mark_random

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if name in ("encodec", "dac", "semanticodec"):
        mark_random(dest)
    if name == "encodec":
        from bench.codecs.encodec import Encodec, save_encodec_original

        codec = Encodec(sample_rate=int(variant or 24000), pretrained=False, tiny=tiny, seed=seed)
        return save_encodec_original(codec.model, dest)
    if name == "dac":
        from bench.codecs.dac import DAC, save_dac_original

        codec = DAC(sample_rate=int(variant or 16000), pretrained=False, tiny=tiny, seed=seed)
        return save_dac_original(codec.model, dest)
    if name == "semanticodec":
        from bench.codecs.semanticodec import weights as W
        from bench.codecs.semanticodec.codec import SemantiCodec

        rate, _, vocab = (variant or "50/4096").partition("/")
        codec = SemantiCodec(token_rate=int(rate), vocab=int(vocab or 4096), pretrained=False, tiny=tiny, seed=seed)
        W.save_official(codec.encoder, codec.decoder, codec.cfg, dest)
        return dest
    raise ValueError(f"no random-weight writer for {name!r}; use encodec, dac or semanticodec")
