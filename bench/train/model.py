"""`bench train semanticodec model`: train the acoustic encoder and the latent-diffusion UNet of SemantiCodec.

`train_model(TrainConfig(...))` builds the model (frozen AudioMAE, semantic codebook, VAE and vocoder from a
released checkpoint folder, or random), trains it with the objective of `objective.py` on seeded windows of
any task's audio, and writes RUN_DIR in the official layout (`checkpoint.py`) every `checkpoint_every` steps.
Device placement, bf16 autocast and several processes/GPUs come from Hugging Face `accelerate`
(`accelerate launch -m bench.cli train ...` for several GPUs). A run directory that already holds a
`train_state.pt` is resumed from it (the config must match, `checkpoint.check_config`).

Logs: RUN_DIR/train_log.csv (step, loss, diffusion, commitment, vq_utilisation, steps_per_s) every
`log_every` steps, RUN_DIR/val_log.csv (step, mel distance of a few decoded validation windows against the
input, and against the frozen first stage's own resynthesis), RUN_DIR/curves.png.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.train import checkpoint as ckpt
from bench.train.logs import append_csv, plot_curves, read_log, truncate_csv

__all__ = ["TrainConfig", "TrainError", "TrainResult", "plot_curves", "read_log", "train_model"]

log = logging.getLogger(__name__)

TRAIN_COLUMNS = ["step", "loss", "diffusion", "commitment", "vq_utilisation", "lr", "steps_per_s"]
VAL_COLUMNS = ["step", "val_loss", "mel_distance", "mel_distance_resynth"]
VAL_LOSS_DRAWS = 4  # fixed (t, noise) draws per validation window for val_loss


class TrainError(ValueError):
    """A one-line, user-facing training error."""


@dataclass
class TrainConfig:
    """Every hyper-parameter of a run (saved as RUN_DIR/config.json). Defaults: the official configuration
    (spec section 9): AdamW at lr 1e-4, EMA 0.9999, VQ decay 0.9, commitment 1.0; the rest is ours, said
    beside each flag."""

    tasks: list[str]
    out: str
    token_rate: int = 50
    vocab: int = 4096
    weights: str | None = None  # released checkpoint folder: frozen parts (and the starting point) from it
    random_weights: bool = False
    tiny: bool = False
    codebook: str | None = None  # a [V, F] .npy (e.g. from `bench train semanticodec codebook`)
    init: str = "weights"  # "weights": start the trainable parts from --weights; "random": fresh init
    steps: int = 100000
    batch_size: int = 2
    lr: float = 1e-4  # base_learning_rate of the official LDM config
    weight_decay: float = 0.01  # torch AdamW's default (the LDM's configure_optimizers passes none)
    warmup_steps: int = 0  # linear warm-up (0: none, as the LDM)
    grad_clip: float = 0.0  # 0: none (Lightning's default, the LDM sets none)
    ema_decay: float = 0.9999
    cond_drop: float = 0.1
    commitment_weight: float = 1.0
    vq_decay: float = 0.9
    vq_dead_code_threshold: float = 0.0  # replace codes used less than this (EMA count); 0: off, as the official
    latent: str = "sample"  # "sample" (LDM: posterior sample) | "mean"
    scale_by_std: bool = True  # recompute scale_factor from the first batch on a fresh run
    precision: str = "fp32"  # "fp32" | "bf16" (autocast)
    seed: int = 0
    limit: int | None = None
    window_seconds: float = 10.24
    checkpoint_every: int = 1000
    keep_checkpoints: bool = False  # also keep each checkpoint in RUN_DIR/checkpoints/step_NNNNNNN/ (official layout)
    log_every: int = 10
    val_every: int = 1000
    val_clips: int = 2
    val_ddim_steps: int = 10
    val_cfg_scale: float = 2.0
    cache_frozen: bool = True  # keep AudioMAE/VAE outputs per (clip, start): exact, faster on small data
    frozen_cache_mb: float = 2048  # memory bound of that cache (about 2 MB per 10.24 s crop at full size)
    stop_after: int | None = None  # stop this invocation after this step (tests: a kill between checkpoints)
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("stop_after")
        return d


# -- building ----------------------------------------------------------------------------------------------


def _codebook_table(cfg_sc, path: str | None, weights: str | None, random_weights: bool, seed: int):
    """The semantic codebook `[V, F]`: --codebook, else the one in --weights, else random N(0, 1)."""
    import torch

    from bench.codecs.semanticodec import weights as SW

    f = cfg_sc.encoder.feature_dim
    if path is not None:
        p = Path(path).expanduser()
        if p.is_dir():
            p = p / SW.codebook_relpath(cfg_sc.token_rate, cfg_sc.vocab)
        if not p.is_file():
            raise TrainError(f"codebook {p} not found; give the .npy written by `bench train semanticodec codebook`")
        table = np.load(p, mmap_mode="r")
        if table.ndim != 2 or tuple(table.shape) != (cfg_sc.vocab, f):
            hint = ""
            if table.ndim == 2 and table.shape[1] % cfg_sc.encoder.mae_dim == 0:
                k = table.shape[1] // cfg_sc.encoder.mae_dim
                if k and 100 % k == 0:
                    hint = f" (its width fits --token-rate {100 // k})"
            raise TrainError(
                f"codebook {p} has shape {tuple(table.shape)}, but --token-rate {cfg_sc.token_rate} --vocab "
                f"{cfg_sc.vocab} needs ({cfg_sc.vocab}, {f}){hint}; pass the matching --token-rate/--vocab or "
                "another --codebook")
        return torch.from_numpy(np.array(table, dtype=np.float32))
    if weights is not None:
        files = SW.locate(weights, cfg_sc.token_rate, cfg_sc.vocab)
        return SW.load_codebook(files.codebook, cfg_sc.token_rate, cfg_sc.vocab, f)
    g = torch.Generator().manual_seed(int(seed) + 1)
    return torch.randn(cfg_sc.vocab, f, generator=g)


def window_frames(window_seconds: float, unet_levels: int = 4) -> int:
    """fbank frames (10 ms) of a training window: whole 16-frame AudioMAE patches and a latent of frames / 4
    that the UNet can halve `unet_levels - 1` times (the official UNet: multiples of 0.32 s)."""
    unit = max(16, 4 * 2 ** (unet_levels - 1))
    frames = round(float(window_seconds) * 100)
    if frames < unit or frames % unit or frames > 1024 or abs(frames - float(window_seconds) * 100) > 1e-6:
        raise TrainError(f"--window-seconds {window_seconds}: give a multiple of {unit / 100:g} s up to 10.24 s "
                         "(10.24: the released models' window)")
    return frames


def model_config(cfg: TrainConfig):
    """The SemantiCodecConfig of the run: the official (or tiny) one at (token_rate, vocab), with a shorter
    window than 10.24 s when --window-seconds asks (AudioMAE grid and latent length follow; such a model is
    for experiments and tests: `bench run` decodes 10.24 s windows)."""
    from bench.codecs.semanticodec import config as C

    try:
        sc = C.get_config(cfg.token_rate, cfg.vocab, tiny=cfg.tiny)
    except ValueError as err:
        raise TrainError(str(err)) from None
    frames = window_frames(cfg.window_seconds, len(sc.decoder.unet.channel_mult))
    if frames != sc.encoder.mel_frames:
        sc = dataclasses.replace(sc, encoder=dataclasses.replace(sc.encoder, mel_frames=frames),
                                 decoder=dataclasses.replace(sc.decoder, latent_t=frames // 4))
    return sc


def build_model(cfg: TrainConfig):
    """(SemantiCodecConfig, encoder, decoder) with the frozen parts loaded (or random) and the codebook set."""
    import torch

    from bench.codecs.semanticodec.codec import randomise
    from bench.codecs.semanticodec.decoder import LatentDiffusionDecoder
    from bench.codecs.semanticodec.encoder import SemantiCodecEncoder
    from bench.codecs.semanticodec.weights import load_official

    if (cfg.weights is None) == (not cfg.random_weights):
        raise TrainError("give exactly one of --weights DIR (a released checkpoint) and --random-weights")
    sc = model_config(cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        encoder = SemantiCodecEncoder(sc.encoder)
        decoder = LatentDiffusionDecoder(sc.decoder)
        randomise(encoder, decoder)
        fresh = {"lstm": {k: v.clone() for k, v in encoder.encoder.state_dict().items()},
                 "linear": {k: v.clone() for k, v in encoder.encoder_output_linear.state_dict().items()},
                 "unet": {k: v.clone() for k, v in decoder.model.state_dict().items()}}
    if cfg.weights is not None:
        table = _codebook_table(sc, cfg.codebook, cfg.weights, False, cfg.seed) if cfg.codebook else None
        try:
            if table is not None:  # the released codebook need not exist when another is given
                from bench.codecs.semanticodec import weights as SW

                enc_file, dec_file, _ = _files_without_codebook(Path(cfg.weights).expanduser(), sc)
                SW.load_module(encoder, enc_file, "encoder checkpoint")
                SW.load_module(decoder, dec_file, "decoder checkpoint")
            else:
                load_official(encoder, decoder, sc, cfg.weights)
                table = encoder.centroids.clone()
        except ValueError as err:
            raise TrainError(str(err)) from None
        if cfg.init == "random":
            encoder.encoder.load_state_dict(fresh["lstm"])
            encoder.encoder_output_linear.load_state_dict(fresh["linear"])
            decoder.model.load_state_dict(fresh["unet"])
    else:
        table = _codebook_table(sc, cfg.codebook, None, True, cfg.seed)
    encoder.set_centroids(table)
    return sc, encoder, decoder


def _files_without_codebook(root: Path, sc):
    from bench.codecs.base import WeightsMissingError
    from bench.codecs.semanticodec.weights import FETCH_HINT, rate_dir

    for folder in (root / rate_dir(sc.token_rate), root):
        enc, dec = folder / "encoder.ckpt", folder / "decoder.ckpt"
        if enc.is_file() and dec.is_file():
            return enc, dec, None
    raise WeightsMissingError(f"no encoder.ckpt/decoder.ckpt for token_rate={sc.token_rate} under {root}; "
                              f"{FETCH_HINT}")


# -- the loop ---------------------------------------------------------------------------------------------


class _FrozenCache:
    """Frozen outputs per (clip, start), computed once (they depend on the audio alone); at most `max_mb` of
    them are kept (then new crops are computed each time), so memory does not grow with the data."""

    def __init__(self, trainer, enabled: bool, max_mb: float = 2048):
        self.trainer, self.enabled, self.store = trainer, enabled, {}
        self.budget, self.used = float(max_mb) * 2**20, 0.0

    def __call__(self, batch, device):
        import torch

        from bench.train.objective import Frozen

        def compute(rows):
            wave = torch.from_numpy(batch.wave[rows]).to(device)
            return self.trainer.frozen(wave, [batch.lengths[i] for i in rows])

        if not self.enabled:
            return compute(list(range(len(batch.keys))))
        missing = [i for i, k in enumerate(batch.keys) if k not in self.store]
        fresh = {}
        if missing:
            fz = compute(missing)
            for j, i in enumerate(missing):
                fresh[batch.keys[i]] = one = Frozen(*(getattr(fz, f.name)[j: j + 1].clone()
                                                     for f in dataclasses.fields(fz)))
                size = sum(getattr(one, f.name).nbytes for f in dataclasses.fields(one))
                if self.used + size <= self.budget:
                    self.store[batch.keys[i]] = one
                    self.used += size
        parts = [self.store.get(k) or fresh[k] for k in batch.keys]
        return Frozen(*(torch.cat([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(Frozen)))


def validate(trainer, batch, device, cfg: TrainConfig, step: int) -> dict:
    """Mel distance (bench's `mel` metric) of decoded validation windows: against the input, and against the
    frozen VAE + vocoder's resynthesis of the input's own latent (the best the diffusion model can reach)."""
    import torch

    from bench.metrics.spectral import mel_distance
    from bench.train.objective import step_generator

    dec = trainer.decoder
    was = trainer.training
    trainer.train(False)
    try:
        with torch.no_grad():
            wave = torch.from_numpy(batch.wave).to(device)
            fz = trainer.frozen(wave, batch.lengths)
            val_loss = float(np.mean([float(trainer(fz, step_generator(cfg.seed, 2**40 + k))["loss"])
                                      for k in range(VAL_LOSS_DRAWS)]))
            q, _, _ = trainer.acoustic(fz)
            cond = trainer.condition(q, fz)
            gens = [torch.Generator(device=device).manual_seed(cfg.seed * 1000 + i) for i in range(len(batch.lengths))]
            latent = dec.sample_latent(cond, ddim_steps=cfg.val_ddim_steps, cfg_scale=cfg.val_cfg_scale,
                                       generator=gens)
            rec = dec.mel_to_wave(dec.latent_to_mel(latent))
            resynth = dec.mel_to_wave(dec.latent_to_mel(dec.scale_factor * fz.mean))
    finally:
        trainer.train(was)
    d_in, d_re = [], []
    for i, n in enumerate(batch.lengths):
        ref = batch.wave[i: i + 1, :n]
        out = rec[i: i + 1, :n].float().cpu().numpy()
        d_in.append(mel_distance(ref, out, 16000))
        d_re.append(mel_distance(resynth[i: i + 1, :n].float().cpu().numpy(), out, 16000))
    return {"step": step, "val_loss": val_loss, "mel_distance": float(np.mean(d_in)), "mel_distance_resynth": float(np.mean(d_re))}


def _accelerator(mixed_precision: str):
    """An `accelerate.Accelerator`; its process-wide state is reset first when an earlier run in this process
    chose another precision (library use: several runs in one Python process). The distributed state is kept."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    if AcceleratorState._shared_state and AcceleratorState().mixed_precision != mixed_precision:
        AcceleratorState._reset_state(reset_partial_state=False)
    return Accelerator(mixed_precision=mixed_precision)


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    resumed_from: int
    losses: list[float]
    val: list[dict]


def train_model(cfg: TrainConfig, progress: Callable | None = None) -> TrainResult:
    """Train (or resume) the run `cfg.out`; returns where it stopped. `progress(total, initial)` -> a tqdm-like
    bar (update(n), set_postfix(**kw), close()); None: no bar."""
    import torch

    from bench.codecs.weights import mark_random
    from bench.train.data import DataTooShortError, WindowSampler, load_clips
    from bench.train.objective import (
        Objective,
        SemantiCodecTrainer,
        UNetEMA,
        step_generator,
    )

    if cfg.precision not in ("fp32", "bf16"):
        raise TrainError(f"--precision must be fp32 or bf16, got {cfg.precision!r}")
    if cfg.latent not in ("sample", "mean"):
        raise TrainError(f"--latent must be sample or mean, got {cfg.latent!r}")
    for name in ("steps", "batch_size", "checkpoint_every", "log_every", "val_every"):
        if int(getattr(cfg, name)) < 1:
            raise TrainError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(cfg, name)}")
    run_dir = Path(cfg.out).expanduser()
    config = cfg.to_json()
    resume = (run_dir / ckpt.STATE_FILE).exists()
    if resume:
        ckpt.check_config(run_dir, config)

    acc = _accelerator("bf16" if cfg.precision == "bf16" else "no")
    device = acc.device
    sc, encoder, decoder = build_model(cfg)
    window = sc.encoder.mel_frames * 160  # samples at 16 kHz
    ids, clips = load_clips(cfg.tasks, cfg.limit)
    try:
        sampler = WindowSampler(clips, window, cfg.batch_size, seed=cfg.seed, world=acc.num_processes, ids=ids)
    except DataTooShortError as err:
        raise TrainError(str(err)) from None

    objective = Objective(cond_drop=cfg.cond_drop, commitment_weight=cfg.commitment_weight, vq_decay=cfg.vq_decay,
                          dead_code_threshold=cfg.vq_dead_code_threshold,
                          latent_sample=cfg.latent == "sample")
    trainer = SemantiCodecTrainer(encoder, decoder, objective).to(device)
    ema = UNetEMA(decoder, cfg.ema_decay)
    params = trainer.trainable_parameters()
    # fused: one kernel for all ~1100 tensors (the per-tensor loop cost ~2 s a step on 2 loaded CPU cores)
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    warm = max(0, int(cfg.warmup_steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warm) if warm else 1.0)

    start = 0
    if resume:
        state = ckpt.load_state(run_dir, trainer, optimizer)
        start = int(state["step"])
        scheduler.last_epoch = start
        for g, base in zip(optimizer.param_groups, scheduler.base_lrs):
            g["lr"] = base * (min(1.0, (start + 1) / warm) if warm else 1.0)
        for name in ("train_log.csv", "val_log.csv"):
            truncate_csv(run_dir / name, start)
        log.info("resuming %s at step %d", run_dir, start)
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)
        ema.reset()
    frozen = _FrozenCache(trainer, cfg.cache_frozen, cfg.frozen_cache_mb)
    model, optimizer = acc.prepare(trainer, optimizer)
    core = acc.unwrap_model(model)

    if not resume:
        if cfg.scale_by_std:
            fz0 = frozen(sampler.batch(0, acc.process_index), device)
            value = core.scale_by_std(fz0, step_generator(cfg.seed, 0, acc.process_index))
            log.info("scale_by_std: scale_factor = %.6g", value)
        if acc.is_main_process:
            ckpt.save_config(run_dir, config)
            ckpt.save_codebook(run_dir, encoder.centroids.cpu().numpy(), sc)
            if cfg.random_weights:
                mark_random(run_dir)  # results of this checkpoint are labelled random-weight (frozen parts random)
    val_batch = sampler.fixed(cfg.val_clips)

    def save(step: int) -> None:
        acc.wait_for_everyone()
        if acc.is_main_process:
            ckpt.save_official(run_dir, core.encoder, core.decoder, sc)
            if cfg.keep_checkpoints:
                ckpt.keep_snapshot(run_dir, step, sc)
            ckpt.save_state(run_dir, step, core, optimizer, {"config": json.dumps(config, sort_keys=True)})
            plot_curves(run_dir)

    losses: list[float] = []
    vals: list[dict] = []
    if not resume and acc.is_main_process and cfg.val_every <= cfg.steps:
        row = validate(core, val_batch, device, cfg, 0)
        vals.append(row)
        append_csv(run_dir / "val_log.csv", VAL_COLUMNS, row)
    used = torch.zeros(sc.encoder.codebook_size, dtype=torch.bool, device=device)
    acc_rows: list[dict] = []
    bar = progress(cfg.steps, start) if (progress and acc.is_main_process) else None
    t0, s0 = time.perf_counter(), start
    step = start
    try:
        for step in range(start + 1, cfg.steps + 1):
            batch = sampler.batch(step - 1, acc.process_index)
            fz = frozen(batch, device)
            gen = step_generator(cfg.seed, step, acc.process_index, device)
            with acc.autocast():
                out = model(fz, gen)
            acc.backward(out["loss"])
            if cfg.grad_clip > 0:
                acc.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            ema.update()
            used[out["ids"].reshape(-1)] = True
            row = {"loss": float(out["loss"].detach()), "diffusion": float(out["diffusion"]),
                   "commitment": float(out["commitment"])}
            losses.append(row["loss"])
            acc_rows.append(row)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{row['loss']:.4f}")
            if step % cfg.log_every == 0 and acc.is_main_process:
                rate = (step - s0) / max(time.perf_counter() - t0, 1e-9)
                mean = {k: float(np.mean([r[k] for r in acc_rows])) for k in acc_rows[0]}
                append_csv(run_dir / "train_log.csv", TRAIN_COLUMNS, {
                    "step": step, **mean, "vq_utilisation": float(used.float().mean()),
                    "lr": optimizer.param_groups[0]["lr"], "steps_per_s": rate})
                acc_rows, used = [], torch.zeros_like(used)
            if step % cfg.val_every == 0 and acc.is_main_process:
                row = validate(core, val_batch, device, cfg, step)
                vals.append(row)
                append_csv(run_dir / "val_log.csv", VAL_COLUMNS, row)
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                save(step)
            if cfg.stop_after is not None and step >= cfg.stop_after:
                break
    finally:
        if bar is not None:
            bar.close()
    if acc.is_main_process:
        plot_curves(run_dir)
    return TrainResult(run_dir, step, start, losses, vals)
