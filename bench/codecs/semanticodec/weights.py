"""SemantiCodec checkpoints in the official Hugging Face layout: find, verify, load, write, fetch.

Layout of `haoheliu/SemantiCodec` (what `bench weights fetch semanticodec` downloads, and what
`weights=DIR` must contain):

    DIR/semanticodec_tokenrate_{25,50,100}/encoder.ckpt    plain state_dict of the encoder
    DIR/semanticodec_tokenrate_{25,50,100}/decoder.ckpt    plain state_dict of the latent diffusion decoder
    DIR/codebook_idx/combine_{128,256,512}_audioset_dominate/codebook_{V/2}_0.npy   float32 [V, F]

(the file name carries V/2; the array holds V rows). The official code's own `checkpoint_path`
layout - one folder holding encoder.ckpt, decoder.ckpt and codebook_idx/ - is accepted as well.
Every key of both checkpoints must match our modules by name and shape; anything else is an error
that names the first offending keys.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from bench.codecs.base import WeightsMissingError

from .config import TOKEN_RATES, VOCABS, SemantiCodecConfig

log = logging.getLogger(__name__)

REPO_ID = "haoheliu/SemantiCodec"
FETCH_HINT = "run `bench weights fetch semanticodec` (needs network), or pass weights=DIR with the official layout"


class CheckpointMismatchError(ValueError):
    """A checkpoint whose keys or shapes are not those of the configured model."""


def default_root() -> Path:
    """`$BENCH_HOME/weights/semanticodec` (the shared weights cache), holding the official layout."""
    try:
        from bench.codecs.weights import weights_dir

        return Path(weights_dir("semanticodec"))
    except ImportError:  # the shared helper is optional here
        return Path(os.environ.get("BENCH_HOME", Path.home() / ".cache" / "bench")) / "weights" / "semanticodec"


def rate_dir(token_rate: int) -> str:
    return f"semanticodec_tokenrate_{int(token_rate)}"


def codebook_relpath(token_rate: int, vocab: int) -> str:
    """`codebook_idx/combine_{512/K}_audioset_dominate/codebook_{V/2}_0.npy`."""
    stack = 100 // int(token_rate)
    return f"codebook_idx/combine_{512 // stack}_audioset_dominate/codebook_{int(vocab) // 2}_0.npy"


@dataclass(frozen=True)
class WeightFiles:
    encoder: Path
    decoder: Path
    codebook: Path


def locate(root: str | Path | None, token_rate: int, vocab: int) -> WeightFiles:
    """The three files for (token_rate, vocab) under `root` (None: the cache).

    Raises WeightsMissingError naming the first absent file and the command that fetches it."""
    root = Path(root).expanduser() if root is not None else default_root()
    if not root.is_dir():
        raise WeightsMissingError(f"SemantiCodec weights directory {root} does not exist; {FETCH_HINT}.")
    # official `checkpoint_path` layout: the rate folder itself, with codebook_idx/ inside it
    if (root / "encoder.ckpt").exists() and not (root / rate_dir(token_rate)).exists():
        files = WeightFiles(root / "encoder.ckpt", root / "decoder.ckpt", root / codebook_relpath(token_rate, vocab))
    else:
        files = WeightFiles(
            root / rate_dir(token_rate) / "encoder.ckpt",
            root / rate_dir(token_rate) / "decoder.ckpt",
            root / codebook_relpath(token_rate, vocab),
        )
    for path in (files.encoder, files.decoder, files.codebook):
        if not path.is_file():
            raise WeightsMissingError(
                f"SemantiCodec token_rate={token_rate}, vocab={vocab}: missing file {path}; {FETCH_HINT}."
            )
    return files


def weights_available(token_rate: int = 100, vocab: int = 16384, root: str | Path | None = None) -> bool:
    """True when all three files of this operating point are on disk."""
    try:
        locate(root, token_rate, vocab)
    except WeightsMissingError:
        return False
    return True


def check_state_dict(state: dict, expected: dict, what: str, path: Path | str = "") -> None:
    """Raise CheckpointMismatchError naming the first few missing, unexpected or mis-shaped keys."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if not (missing or unexpected or shapes):
        return
    parts = []
    for label, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes)):
        if items:
            more = f" (+{len(items) - 5} more)" if len(items) > 5 else ""
            parts.append(f"{len(items)} {label}: {', '.join(items[:5])}{more}")
    raise CheckpointMismatchError(
        f"{what} {path} does not match the configured model: {'; '.join(parts)}. "
        "Is it the checkpoint of the same token rate (semanticodec_tokenrate_R)?"
    )


def _torch_load(path: Path) -> dict:
    from bench.codecs import weights as W

    W.verify_files([path])  # against the sha256 recorded when `bench weights fetch` downloaded it
    state = W.load_checkpoint(path, mmap=True)  # mmap: a multi-GB checkpoint is not read twice into memory
    if not isinstance(state, dict):
        raise CheckpointMismatchError(f"{path}: expected a plain state_dict, got {type(state).__name__}")
    if "state_dict" in state and isinstance(state["state_dict"], dict) and len(state) <= 3:
        state = state["state_dict"]  # a Lightning wrapper, just in case
    return state


def load_module(module, path: Path, what: str) -> None:
    """Verify `path` against `module.state_dict()` (names and shapes) and load it strictly."""
    state = _torch_load(Path(path))
    check_state_dict(state, module.state_dict(), what, path)
    module.load_state_dict(state, strict=True)


def load_codebook(path: Path, token_rate: int, vocab: int, feature_dim: int):
    """The k-means table `[V, F]` float32 from its .npy, shape-checked."""
    import numpy as np
    import torch

    table = np.load(path)
    if table.ndim != 2 or table.shape != (vocab, feature_dim):
        raise CheckpointMismatchError(
            f"semantic codebook {path} has shape {table.shape}, expected ({vocab}, {feature_dim}) for "
            f"token_rate={token_rate}, vocab={vocab}"
        )
    return torch.from_numpy(np.ascontiguousarray(table, dtype=np.float32))


def load_official(encoder, decoder, cfg: SemantiCodecConfig, root: str | Path | None) -> WeightFiles:
    """Load encoder.ckpt, decoder.ckpt and the semantic codebook for `cfg` into the two modules."""
    files = locate(root, cfg.token_rate, cfg.vocab)
    load_module(encoder, files.encoder, "encoder checkpoint")
    if not bool(encoder.quantizer._codebook.initted):
        log.warning("%s: acoustic codebook flagged as not initialised (initted=False)", files.encoder)
    encoder.set_centroids(load_codebook(files.codebook, cfg.token_rate, cfg.vocab, cfg.encoder.feature_dim))
    if decoder is not None:
        load_module(decoder, files.decoder, "decoder checkpoint")
    log.info("SemantiCodec weights loaded from %s", files.encoder.parent)
    return files


def save_official(encoder, decoder, cfg: SemantiCodecConfig, root: str | Path) -> WeightFiles:
    """Write our modules in the official HF layout under `root` (used to test loading with random weights)."""
    import numpy as np
    import torch

    root = Path(root)
    files = WeightFiles(
        root / rate_dir(cfg.token_rate) / "encoder.ckpt",
        root / rate_dir(cfg.token_rate) / "decoder.ckpt",
        root / codebook_relpath(cfg.token_rate, cfg.vocab),
    )
    files.encoder.parent.mkdir(parents=True, exist_ok=True)
    files.codebook.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu() for k, v in encoder.state_dict().items()}, files.encoder)
    if decoder is not None:
        torch.save({k: v.detach().cpu() for k, v in decoder.state_dict().items()}, files.decoder)
    np.save(files.codebook, encoder.centroids.detach().cpu().numpy().astype(np.float32))
    return files


def parse_variant(variant: str | int | None) -> tuple[int, ...]:
    """'100', 'tokenrate_100', 'semanticodec_tokenrate_50' -> (rate,); None -> all three rates."""
    if variant is None:
        return TOKEN_RATES
    digits = "".join(ch for ch in str(variant) if ch.isdigit())
    if not digits or int(digits) not in TOKEN_RATES:
        rates = ", ".join(map(str, TOKEN_RATES))
        raise ValueError(f"SemantiCodec variant {variant!r}: give a token rate, one of {rates}")
    return (int(digits),)


def list_weights(root: str | Path | None = None) -> list[dict]:
    """Rows {codec, variant, where, present} per token rate for `bench weights list` (variant lists vocabularies)."""
    root = Path(root) if root is not None else default_root()
    rows = []
    for rate in TOKEN_RATES:
        vocabs = [v for v in VOCABS if weights_available(rate, v, root)]
        variant = f"tokenrate_{rate}" + (f" (vocab {', '.join(map(str, vocabs))})" if vocabs else "")
        rows.append({"codec": "semanticodec", "variant": variant, "where": root / rate_dir(rate),
                     "present": bool(vocabs)})
    return rows
