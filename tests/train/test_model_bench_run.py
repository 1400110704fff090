"""`bench train semanticodec model` through the CLI at the shipped tiny config: the run folder loads through the
real loader (`bench.load_codec(..., weights=RUN_DIR)`), encodes, and evaluates in `bench.run`."""

from __future__ import annotations

import numpy as np
import torch


def test_checkpoint_loads_in_bench_run(tmp_path):
    import bench
    from bench.cli import main

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    run = tmp_path / "run"
    try:
        rc = main(["train", "semanticodec", "model", "--task", "demo-speech", "--limit", "3", "--random-weights",
                   "--tiny", "--steps", "2", "--batch-size", "1", "--checkpoint-every", "1", "--keep-checkpoints", "--val-every", "100",
                   "--out", str(run)])
        assert rc in (0, None)
        codec = bench.load_codec("semanticodec", token_rate=50, vocab=4096, tiny=True, weights=str(run),
                                 ddim_steps=2)
        state = torch.load(run / "semanticodec_tokenrate_50" / "encoder.ckpt", weights_only=True)
        torch.testing.assert_close(codec.encoder.encoder.weight_hh_l0, state["encoder.weight_hh_l0"])
        data, sr = bench.load_task("demo-speech").items()[0].load()
        wav = torch.from_numpy(np.asarray(data, dtype=np.float32)).reshape(1, -1, np.shape(data)[-1])[:, :1, :sr]
        enc = codec.encode(wav, sample_rate=sr)
        assert enc.codes.shape[:2] == (1, 2) and int(enc.codes[0, 1].max()) < 8192
        # the kept step-1 checkpoint loads too, and differs from the final (step 2) one
        step1 = bench.load_codec("semanticodec", token_rate=50, vocab=4096, tiny=True,
                                 weights=str(run / "checkpoints" / "step_0000001"), ddim_steps=2)
        assert not torch.equal(step1.encoder.encoder.weight_hh_l0, codec.encoder.encoder.weight_hh_l0)
        assert step1.meta.random_weights  # frozen parts were random: results are labelled so
        res = bench.run(codecs=[f"semanticodec:tiny=1,token_rate=50,vocab=4096,ddim_steps=2,weights={run}"],
                        tasks=["demo-speech"], metrics=["mel"], out=str(tmp_path / "ws"), limit=1)
        frame = res.to_frame()
        assert len(frame) == 1 and frame["n"].iloc[0] == 1 and np.isfinite(frame["value"].iloc[0])
    finally:
        torch.set_num_threads(threads)
