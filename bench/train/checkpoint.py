"""Run directory of `bench train semanticodec model`: official-layout checkpoints, resume state, saved config.

    RUN_DIR/config.json                                   every hyper-parameter of the run (resume checks it)
    RUN_DIR/train_state.pt                                step, trainable + EMA + VQ + scale_factor state,
                                                          optimiser, RNG states: all a resume needs
    RUN_DIR/semanticodec_tokenrate_R/encoder.ckpt         official layout (what `bench run --weights RUN_DIR`
    RUN_DIR/semanticodec_tokenrate_R/decoder.ckpt         and `weights.load_official` read)
    RUN_DIR/codebook_idx/combine_{512/K}_audioset_dominate/codebook_{V/2}_0.npy   the semantic codebook (copied)
    RUN_DIR/train_log.csv, val_log.csv, curves.png        logs and plots

Every file is written atomically (temporary file in the same folder, fsync, rename, fsync of the folder), so
a run killed at any moment leaves either the old or the new file. `train_state.pt` is self-contained and
written last: a resume reads only it.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.fsutil import share

STATE_FILE = "train_state.pt"
CONFIG_FILE = "config.json"
STATE_VERSION = 1
# flags that may change between a run and its resume (they do not change what a step computes)
RESUMABLE = frozenset({"steps", "checkpoint_every", "log_every", "val_every", "stop_after", "progress"})


class ConfigMismatchError(ValueError):
    """A resume whose flags differ from the run's saved config."""


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[Any], None], binary: bool = True) -> Path:
    """Call `write(file_object)` on a temporary file beside `path`, fsync it, rename it onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    share(fd)  # readable as an open() would make it, not 0600
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def torch_save_atomic(obj: Any, path: str | Path) -> Path:
    import torch

    return atomic_write(path, lambda f: torch.save(obj, f))


def save_config(run_dir: Path, config: dict) -> None:
    atomic_write(run_dir / CONFIG_FILE, lambda f: json.dump(config, f, indent=2, sort_keys=True), binary=False)


def check_config(run_dir: Path, config: dict) -> None:
    """Raise ConfigMismatchError naming the differing keys when `run_dir`'s saved config differs from `config`
    (flags in RESUMABLE excepted)."""
    saved = json.loads((run_dir / CONFIG_FILE).read_text())
    keys = sorted((set(saved) | set(config)) - RESUMABLE)
    diff = [f"{k}: {saved.get(k)!r} -> {config.get(k)!r}" for k in keys if saved.get(k) != config.get(k)]
    if diff:
        more = f" (+{len(diff) - 4} more)" if len(diff) > 4 else ""
        raise ConfigMismatchError(
            f"{run_dir} holds a run with another configuration ({'; '.join(diff[:4])}{more}); resume it with its "
            f"own flags (see {run_dir / CONFIG_FILE}) or start a new run with another --out")


def rng_state() -> dict:
    import torch

    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"python": random.getstate(), "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict) -> None:
    import torch

    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _cpu(state: dict) -> dict:
    return {k: v.detach().cpu().clone() for k, v in state.items()}


def save_official(run_dir: Path, encoder, decoder, cfg) -> None:
    """encoder.ckpt and decoder.ckpt (plain state dicts, the official keys) under RUN_DIR/semanticodec_tokenrate_R/."""
    from bench.codecs.semanticodec.weights import rate_dir

    folder = run_dir / rate_dir(cfg.token_rate)
    torch_save_atomic(_cpu(encoder.state_dict()), folder / "encoder.ckpt")
    torch_save_atomic(_cpu(decoder.state_dict()), folder / "decoder.ckpt")


def keep_snapshot(run_dir: Path, step: int, cfg) -> Path:
    """RUN_DIR/checkpoints/step_NNNNNNN/: the official layout of this step (hard links to the files just written,
    copies where links are not possible), for `bench run --weights` on any kept step."""
    import shutil

    from bench.codecs.semanticodec.weights import codebook_relpath, rate_dir

    dest = run_dir / "checkpoints" / f"step_{int(step):07d}"
    rels = [f"{rate_dir(cfg.token_rate)}/encoder.ckpt", f"{rate_dir(cfg.token_rate)}/decoder.ckpt",
            codebook_relpath(cfg.token_rate, cfg.vocab)]
    for rel in rels:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        try:
            os.link(run_dir / rel, target)  # the run's files are replaced by rename, never rewritten in place
        except OSError:
            shutil.copy2(run_dir / rel, target)
    from bench.codecs.weights import RANDOM_MARKER

    if (run_dir / RANDOM_MARKER).exists():  # random frozen parts: results from the step folder are labelled too
        shutil.copy2(run_dir / RANDOM_MARKER, dest / RANDOM_MARKER)
    return dest


def save_codebook(run_dir: Path, table: np.ndarray, cfg) -> Path:
    """The semantic codebook `[V, F]` float32 at its official path under RUN_DIR."""
    from bench.codecs.semanticodec.weights import codebook_relpath

    path = run_dir / codebook_relpath(cfg.token_rate, cfg.vocab)
    return atomic_write(path, lambda f: np.save(f, np.ascontiguousarray(table, dtype=np.float32)))


def save_state(run_dir: Path, step: int, trainer, optimizer, extra: dict | None = None) -> None:
    """train_state.pt: all a resume needs (written after the official files)."""
    enc = trainer.encoder
    state = {
        "version": STATE_VERSION,
        "step": int(step),
        "lstm": _cpu(enc.encoder.state_dict()),
        "linear": _cpu(enc.encoder_output_linear.state_dict()),
        "vq": _cpu(enc.quantizer.state_dict()),
        "unet": _cpu(trainer.decoder.model.state_dict()),
        "ema": _cpu(trainer.decoder.model_ema.state_dict()),
        "scale_factor": trainer.decoder.scale_factor.detach().cpu().clone(),
        "optimizer": optimizer.state_dict(),
        "rng": rng_state(),
        **(extra or {}),
    }
    torch_save_atomic(state, run_dir / STATE_FILE)


def load_state(run_dir: Path, trainer, optimizer) -> dict:
    """Restore train_state.pt into `trainer` and `optimizer`; returns the state (step, extra keys)."""
    import torch

    state = torch.load(run_dir / STATE_FILE, map_location="cpu", weights_only=True)
    if state.get("version") != STATE_VERSION:
        raise ConfigMismatchError(f"{run_dir / STATE_FILE}: state version {state.get('version')} is not "
                                  f"{STATE_VERSION}; start a new run with another --out")
    enc = trainer.encoder
    enc.encoder.load_state_dict(state["lstm"])
    enc.encoder_output_linear.load_state_dict(state["linear"])
    enc.quantizer.load_state_dict(state["vq"])
    trainer.decoder.model.load_state_dict(state["unet"])
    trainer.decoder.model_ema.load_state_dict(state["ema"])
    trainer.decoder.scale_factor.copy_(state["scale_factor"])
    optimizer.load_state_dict(state["optimizer"])
    set_rng_state(state["rng"])
    return state
