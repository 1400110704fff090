"""`bench train semanticodec model`: a run killed between checkpoints and resumed gives the same loss curve and
weights as an uninterrupted one; a resume under other flags is refused; dead-code replacement (micro config of
test_model_training)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.train import checkpoint as ckpt
from bench.train.model import read_log, train_model
from tests.train.test_model_training import _cfg, micro  # noqa: F401 (the fixture)

pytestmark = pytest.mark.usefixtures("micro")


def test_killed_run_resumes_to_the_same_curve(tmp_path):
    # dead-code replacement on, so that its draws are covered by the exact-resume check too
    train_model(_cfg(tmp_path / "whole", steps=16, vq_dead_code_threshold=1.0))
    # "killed" after step 13: the last checkpoint is step 10, steps 11-13 are logged but lost
    part = train_model(_cfg(tmp_path / "part", steps=16, stop_after=13, vq_dead_code_threshold=1.0))
    assert part.step == 13
    resumed = train_model(_cfg(tmp_path / "part", steps=16, vq_dead_code_threshold=1.0))
    assert resumed.resumed_from == 10
    a = read_log(tmp_path / "whole" / "train_log.csv")
    b = read_log(tmp_path / "part" / "train_log.csv")
    assert [r["step"] for r in b] == list(range(1, 17))
    np.testing.assert_allclose([r["loss"] for r in b], [r["loss"] for r in a], rtol=1e-6, atol=0)
    for f in ("encoder.ckpt", "decoder.ckpt"):
        sa = torch.load(tmp_path / "whole" / "semanticodec_tokenrate_50" / f, weights_only=True)
        sb = torch.load(tmp_path / "part" / "semanticodec_tokenrate_50" / f, weights_only=True)
        for k in sa:
            torch.testing.assert_close(sb[k], sa[k], rtol=1e-5, atol=1e-6, msg=f"{f}:{k}")
    # a resume under other flags is refused, naming the flag
    with pytest.raises(ckpt.ConfigMismatchError, match="lr: 0.001 -> 0.002"):
        train_model(_cfg(tmp_path / "part", steps=20, lr=2e-3, vq_dead_code_threshold=1.0))


def test_dead_code_replacement_uses_more_codes(tmp_path):
    plain = read_log(train_model(_cfg(tmp_path / "a", steps=10, log_every=10)).run_dir / "train_log.csv")
    fresh = read_log(train_model(_cfg(tmp_path / "b", steps=10, log_every=10, vq_dead_code_threshold=1.0)).run_dir
                     / "train_log.csv")
    # a random codebook collapses onto a few codes; restarting unused codes at batch vectors spreads them
    assert fresh[-1]["vq_utilisation"] > 4 * plain[-1]["vq_utilisation"]


def test_frozen_cache_is_exact_and_bounded(tmp_path):
    cached = train_model(_cfg(tmp_path / "a", steps=8)).losses
    uncached = train_model(_cfg(tmp_path / "b", steps=8, frozen_cache_mb=0)).losses  # nothing fits: all recomputed
    np.testing.assert_allclose(uncached, cached, rtol=1e-6)


class _CountingTrainer:
    """Stands in for the trainer's frozen parts: each output row is a function of its audio row alone."""

    def __init__(self):
        self.rows: list[int] = []  # rows computed per call

    def frozen(self, wave, lengths):
        from bench.train.objective import Frozen

        self.rows.append(wave.shape[0])
        return Frozen(feat=wave[:, None, :4].clone(), sem=wave[:, None, :1].long(),
                      cutoff=torch.tensor(lengths, dtype=torch.float64), mean=2 * wave[:, None, None, :4],
                      logvar=-wave[:, None, None, :4])


def test_frozen_cache_keys_by_crop_and_keeps_to_its_budget():
    """Known answers for `_FrozenCache`: a (clip, start) crop seen before is not recomputed, another start of the
    same clip is, each row gets its own crop's outputs in batch order, and a full budget stores nothing more."""
    from bench.train.data import Batch
    from bench.train.model import _FrozenCache

    def batch(*keys):  # each crop's audio is distinct: row values clip + start / 10**4
        wave = np.stack([np.full(8, c + s / 1e4, np.float32) for c, s in keys])
        return Batch(wave, [8 - c for c, _ in keys], list(keys))

    def want(b):  # the frozen outputs computed afresh
        return _CountingTrainer().frozen(torch.from_numpy(b.wave), b.lengths)

    trainer = _CountingTrainer()
    entry = 4 * 4 + 8 + 8 + 4 * 4 + 4 * 4  # bytes of one crop's outputs (feat, sem, cutoff, mean, logvar)
    cache = _FrozenCache(trainer, True, max_mb=2 * entry / 2**20)  # room for two crops
    for keys, computed in (([(0, 0), (1, 2560)], [2]),
                           ([(1, 2560), (0, 5120)], [2, 1]),  # (0, 5120): same clip, another crop
                           ([(0, 5120), (0, 0), (1, 2560)], [2, 1, 1])):  # (0, 5120) did not fit: again
        b = batch(*keys)
        got = cache(b, "cpu")
        assert trainer.rows == computed, keys
        ref = want(b)
        for f in ("feat", "sem", "cutoff", "mean", "logvar"):
            assert torch.equal(getattr(got, f), getattr(ref, f)), (keys, f)
    assert sorted(cache.store) == [(0, 0), (1, 2560)] and cache.used == 2 * entry
    off = _FrozenCache(trainer, False)
    off(batch((0, 0)), "cpu")
    off(batch((0, 0)), "cpu")
    assert trainer.rows[-2:] == [1, 1] and off.store == {}
