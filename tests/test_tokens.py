"""Token statistics: known answers on planted code streams, the report table built from planted cache files,
and the table of a real run of a tiny random-weight neural codec."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bench.metrics.tokens import codebook_stats, entropy_bits, stream_stats
from bench.reports.tokens import token_frame, token_markdown
from bench.store import ResultStore


# -- known answers -------------------------------------------------------------------------------------


def test_uniform_stream_uses_every_entry_at_log2_v_bits():
    v = 64
    codes = np.tile(np.arange(v), 5)[None]  # [1, 320]: every entry 5 times
    (s,) = codebook_stats(codes, [v], frame_rate=50.0)
    assert s.distinct == v and s.used == 1.0 and s.frames == 320
    assert s.entropy == pytest.approx(math.log2(v), abs=1e-12) and s.perplexity == pytest.approx(v)
    assert s.raw_bps == pytest.approx(6 * 50.0) and s.entropy_bps == pytest.approx(s.raw_bps)


def test_constant_stream_has_zero_entropy_and_uses_one_entry():
    (s,) = codebook_stats(np.full((1, 200), 7), [1024], frame_rate=75.0)
    assert s.entropy == 0.0 and s.perplexity == 1.0 and s.entropy_bps == 0.0
    assert s.used == pytest.approx(1 / 1024) and s.distinct == 1
    assert s.raw_bps == pytest.approx(10 * 75.0)


def test_two_symbols_one_to_three():
    codes = np.array([[0, 1, 1, 1] * 25])  # p = (1/4, 3/4)
    (s,) = codebook_stats(codes, [2], frame_rate=12.5)
    assert s.entropy == pytest.approx(0.8112781244591328, abs=1e-12)  # -(1/4 log2 1/4 + 3/4 log2 3/4)
    assert s.perplexity == pytest.approx(2 ** 0.8112781244591328)
    assert s.entropy_bps == s.entropy * 12.5  # exactly entropy x frame rate


def test_streams_are_separate_items_pooled_and_padding_ignored():
    a = np.array([[0, 0, 0, 0], [3, 3, 3, 3]])
    b = np.array([[1, 1, 1, 1, -1, -1], [3, 2, 3, 2, -1, -1]])  # -1: padding past the item's end
    s0, s1 = codebook_stats([a, b[None]], [4, 4], frame_rate=10.0)
    assert s0.frames == 8 and s0.entropy == pytest.approx(1.0)  # pooled: half 0, half 1
    assert s1.distinct == 2 and s1.frames == 8  # entries 2 (twice) and 3 (six times)
    assert s1.entropy == pytest.approx(entropy_bits(np.array([0, 0, 2, 6]))) == pytest.approx(0.8112781244591328)
    unknown = stream_stats(np.array([2, 6]), None, 10.0)
    assert math.isnan(unknown.used) and math.isnan(unknown.raw_bps) and unknown.entropy_bps == pytest.approx(8.112781)


def test_bad_inputs_say_what_is_wrong():
    with pytest.raises(ValueError, match="different numbers of code streams"):
        codebook_stats([np.zeros((2, 3), int), np.zeros((3, 3), int)], None, 1.0)
    with pytest.raises(ValueError, match="2 codebook sizes given for 1"):
        codebook_stats(np.zeros((1, 3), int), [4, 4], 1.0)
    with pytest.raises(ValueError, match=r"expected codes \[K, N\]"):
        codebook_stats(np.zeros(3, int), None, 1.0)


# -- the report table from planted cache files -----------------------------------------------------------


def _plant(store: ResultStore, fp: str, label: str, meta: dict, task: str, items: dict[str, np.ndarray],
           seconds: float, bps: float) -> None:
    store.add_codec(fp, label.split(":")[0], {}, label, None, meta)
    for item, codes in items.items():
        path = store.cache_path(fp, task, item, "sig")
        ResultStore.save_output(path, np.zeros((1, 160), np.float32), codes, 16000, bps)
        store.record_item(fp, task, item, encode={"bits_per_second": bps, "seconds": seconds, "sample_rate": 16000,
                                                  "path": str(path)})


def test_token_frame_from_stored_codes(tmp_path):
    store = ResultStore(tmp_path / "ws")
    # two items of 4 frames, 1 s each: frame rate 4/s; stream 0 uniform over 4 entries, stream 1 constant
    items = {"a": np.array([[[0, 1, 2, 3], [5, 5, 5, 5]]]), "b": np.array([[[3, 2, 1, 0], [5, 5, 5, 5]]])}
    _plant(store, "tok", "fake:k=2", {"codebook_sizes": [4, 8], "needs_weights": True}, "t", items, 1.0, 20.0)
    _plant(store, "cls", "opus:kbps=6", {"needs_weights": False, "frame_rate": 50.0}, "t",
           {"a": np.array([[[12, 250, 7]]])}, 1.0, 6000.0)  # bytes, not tokens: left out
    _plant(store, "chn", "fake:k=2 [loss=0.1]", {"codebook_sizes": [4, 8], "channel": {"loss": 0.1}}, "t",
           items, 1.0, 20.0)  # a channel row: the same codes as the plain codec, left out
    frame = token_frame(store)
    assert set(frame.fingerprint) == {"tok"}
    rows = frame.set_index("codebook")
    assert rows.loc["0", "used_pct"] == 100.0 and rows.loc["0", "entropy_bits"] == pytest.approx(2.0)
    assert rows.loc["0", "raw_kbps"] == pytest.approx(2 * 4 / 1000) and rows.loc["0", "entropy_kbps"] == pytest.approx(
        2 * 4 / 1000)
    assert rows.loc["1", "used_pct"] == pytest.approx(100 / 8) and rows.loc["1", "entropy_bits"] == 0.0
    assert rows.loc["1", "raw_kbps"] == pytest.approx(3 * 4 / 1000)
    assert rows.loc["all", "raw_kbps"] == pytest.approx(0.020)  # the measured bitrate, as stored
    assert rows.loc["all", "entropy_kbps"] == pytest.approx(0.008) and rows.loc["all", "frames"] == 8
    assert set(frame["items"]) == {2}
    md = token_markdown(frame)
    assert "| fake:k=2 | t | 0 | 4 | 100.0 | 2.000 | 4.0 | 0.008 | 0.008 | 8 |" in md
    assert "| fake:k=2 | t | all | - | - | 2.000 | - | 0.02 | 0.008 | 8 |" in md


def test_unknown_codebook_sizes_and_unreadable_files(tmp_path):
    store = ResultStore(tmp_path / "ws")
    _plant(store, "nn", "zoo:x", {"needs_weights": True}, "t", {"a": np.array([[[1, 1, 2, 2]]])}, 1.0, 40.0)
    _plant(store, "nn", "zoo:x", {"needs_weights": True}, "t", {"b": np.array([[[1, 1, 2, 2]]])}, 1.0, 40.0)
    broken = store.cache_path("nn", "t", "b", "sig")
    broken.write_bytes(b"not a zip")
    frame = token_frame(store)
    first = frame[frame.codebook == "0"].iloc[0]
    assert pd.isna(first["size"]) and math.isnan(first.used_pct) and first.entropy_bits == pytest.approx(1.0)
    assert first["items"] == 1 and broken.exists()  # the report reads, never deletes
    assert "declare no codebook sizes" in token_markdown(frame)


def test_no_token_codecs():
    assert "No neural codec" in token_markdown(pd.DataFrame(columns=["codec"]))


# -- a real run ------------------------------------------------------------------------------------------


def test_report_of_a_tiny_random_neural_codec_run(tmp_path):
    import bench
    from bench.reports.build import write_report

    res = bench.run(codecs=["dac:tiny=True,n_codebooks=2", "opus:bitrate=6"], tasks=["demo-speech"],
                    metrics=["mel"], out=tmp_path / "ws", limit=1, jobs=1)
    paths = write_report(res.store, html=False)
    md = paths["markdown"].read_text()
    section = md[md.index("## Token statistics"):md.index("## Speed")]
    assert "dac:" in section and "[random weights]" in section and "opus" not in section
    tokens = pd.read_csv(paths["tokens_csv"], dtype={"codebook": str})
    assert list(tokens.codebook) == ["0", "1", "all"] and set(tokens["size"].dropna()) == {1024}
    per = tokens[tokens.codebook != "all"]
    assert (per.entropy_bits <= 10 + 1e-9).all() and (per.used_pct <= 100).all() and (per.entropy_bits > 0).all()
    total = tokens[tokens.codebook == "all"].iloc[0]
    frame = res.to_frame()
    measured = frame[frame.codec == "dac"].bitrate_kbps.iloc[0]
    assert total.raw_kbps == pytest.approx(measured) and per.raw_kbps.sum() == pytest.approx(measured, rel=1e-9)
    assert total.entropy_kbps == pytest.approx(per.entropy_kbps.sum()) and total.entropy_kbps < measured
