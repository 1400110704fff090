"""`bench train semanticodec model`: learning, exact resume, official-layout checkpoints that `bench run` loads,
and the one-line errors.

The learning and resume tests shrink the tiny configuration inside the test (a 0.64 s window and a two-level
UNet of width 8; the shipped tiny config is untouched): 200 steps of the shipped tiny model take minutes on two
loaded CPU cores. The `bench run` test uses the shipped tiny config (10.24 s windows), for two steps.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from bench.codecs.semanticodec import config as C
from bench.train.model import TrainConfig, TrainError, read_log, train_model

_get_config = C.get_config


def _micro(token_rate=100, vocab=16384, tiny=False):
    sc = _get_config(token_rate, vocab, tiny)
    if not tiny:
        return sc
    unet = C.UNetConfig(model_channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_resolutions=(2,),
                        num_head_channels=8, norm_groups=4)
    return dataclasses.replace(sc, decoder=dataclasses.replace(sc.decoder, unet=unet))


@pytest.fixture
def micro(monkeypatch):
    """The test-local micro configuration, one torch thread (2 threads on a loaded 2-core box are 5x slower)."""
    monkeypatch.setattr(C, "get_config", _micro)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _cfg(out, **kw) -> TrainConfig:
    base = dict(tasks=["demo-speech"], limit=2, out=str(out), random_weights=True, tiny=True, window_seconds=0.64,  # noqa: C408
                batch_size=2, lr=1e-3, log_every=1, val_every=10**6, checkpoint_every=10, val_ddim_steps=5)
    base.update(kw)
    return TrainConfig(**base)


def test_200_steps_lower_loss_and_mel_distance(micro, tmp_path):
    run = tmp_path / "run"
    res = train_model(_cfg(run, steps=200, val_every=200, checkpoint_every=200, log_every=10))
    assert res.step == 200 and len(res.losses) == 200
    first, last = res.val[0], res.val[-1]
    assert (first["step"], last["step"]) == (0, 200)
    # fixed (t, noise) draws: the objective itself, against the untrained model
    assert last["val_loss"] < 0.95 * first["val_loss"]
    # decoded audio (DDIM, CFG 2): closer to the frozen first stage's resynthesis of the clip (what the diffusion
    # model can reach through a random VAE + vocoder), and to the input itself
    assert last["mel_distance_resynth"] < 0.95 * first["mel_distance_resynth"]
    assert last["mel_distance"] < first["mel_distance"]
    train = read_log(run / "train_log.csv")
    assert np.mean([r["loss"] for r in train[-5:]]) < np.mean([r["loss"] for r in train[:2]])
    assert all(0 < r["vq_utilisation"] <= 1 and r["steps_per_s"] > 0 for r in train)
    assert (run / "curves.png").stat().st_size > 1000
    saved = json.loads((run / "config.json").read_text())
    assert saved["lr"] == 1e-3 and saved["cond_drop"] == 0.1 and saved["ema_decay"] == 0.9999
    # the UNet EMA moved towards the trained weights, with LitEma's update count
    dec = torch.load(run / "semanticodec_tokenrate_50" / "decoder.ckpt", weights_only=True)
    assert int(dec["model_ema.num_updates"]) == 200
    name = next(k for k in dec if k.startswith("model.diffusion_model.") and k.endswith("weight"))
    shadow = dec["model_ema." + name[len("model."):].replace(".", "")]
    assert not torch.equal(shadow, dec[name])


def test_one_line_errors(micro, tmp_path):
    short = tmp_path / "short"
    short.mkdir()
    sf.write(short / "a.wav", (0.1 * np.sin(np.arange(4000) / 5)).astype(np.float32), 16000)
    with pytest.raises(TrainError, match="less than one 10.24 s window"):
        train_model(_cfg(tmp_path / "r1", tasks=[f"files:{short}"], window_seconds=10.24, steps=1))
    bad = tmp_path / "cb.npy"
    np.save(bad, np.zeros((4096, 128), dtype=np.float32))  # width of token rate 25 (K = 4) in the tiny model
    with pytest.raises(TrainError, match=r"shape \(4096, 128\).*needs \(4096, 64\).*fits --token-rate 25"):
        train_model(_cfg(tmp_path / "r2", codebook=str(bad), steps=1))
    with pytest.raises(TrainError, match="window-seconds 0.5"):
        train_model(_cfg(tmp_path / "r3", window_seconds=0.5, steps=1))


def test_bf16_autocast_follows_fp32(micro, tmp_path):
    fp32 = train_model(_cfg(tmp_path / "a", steps=3)).losses
    bf16 = train_model(_cfg(tmp_path / "b", steps=3, precision="bf16")).losses
    assert bf16 != fp32  # autocast did run
    np.testing.assert_allclose(bf16, fp32, rtol=2e-2)
    assert json.loads((tmp_path / "b" / "config.json").read_text())["precision"] == "bf16"
