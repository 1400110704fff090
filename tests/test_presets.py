"""`--preset semanticodec-paper`: the paper's tasks and metrics on dataset trees in their own layouts."""

from __future__ import annotations

import pytest

import bench
from bench.reports.build import write_report
from bench.tasks.presets import PRESETS, SEMANTICODEC_PAPER, available_codecs, get_preset
from test_tasks_datasets import audioset_tree, esc50_tree, libritts_tree, musdb_hq_tree


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    root = tmp_path / "data"
    libritts_tree(root / "LibriTTS")
    musdb_hq_tree(root / "musdb18hq", lengths=(("Track A - Song", 21.0),))  # two 10 s windows
    audioset_tree(root / "audioset")
    esc50_tree(root / "ESC-50")
    monkeypatch.setenv("BENCH_DATA", str(root))
    return root


def test_the_paper_preset_runs_on_the_datasets_and_writes_the_report(tmp_path, data_root):
    res = bench.run(codecs=["opus:bitrate=6"], preset="semanticodec-paper", out=tmp_path / "ws", jobs=1)
    frame = res.to_frame()
    assert set(frame.task) == {"libritts", "musdb", "audioset", "esc50"}
    assert set(frame.metric_name) == set(SEMANTICODEC_PAPER.metrics)
    opus = frame[frame.codec == "opus"]
    speech = opus[(opus.task == "libritts") & (opus.metric_name == "wer")]
    assert speech.n.iloc[0] == 3  # the three test-clean utterances, with their transcripts
    music = opus[(opus.task == "musdb") & (opus.metric_name == "mel")]
    assert music.n.iloc[0] == 2  # 21 s of mixture in 10 s windows
    assert not res.failures().stage.isin(["codec", "load"]).any()
    paths = write_report(res.store)
    text = paths["markdown"].read_text()
    assert "preset semanticodec-paper" in text and "ESC-50 with HEAR's 5-fold protocol" in text
    assert "SemantiCodec paper" in text  # the paper's rows beside ours


def test_preset_codecs_without_weights_are_left_out_and_names_are_checked(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="no codec of it has weights here"):
        available_codecs(SEMANTICODEC_PAPER)
    with pytest.raises(ValueError, match="did you mean 'semanticodec-paper'"):
        get_preset("semanticodec-papr")
    # SemantiCodec looks inside the folder (empty here: left out); Encodec and DAC, which cannot, are checked in the
    # cache (empty too), not kept to fail at load with "no weights found in DIR"
    with pytest.raises(ValueError, match="no codec of it has weights here"):
        available_codecs(SEMANTICODEC_PAPER, weights=str(tmp_path))
    assert "semanticodec-paper" in PRESETS


def _semanticodec_layout(root, token_rate: int, vocab: int) -> None:
    """The three files of one SemantiCodec point in the official layout (empty: only their presence is checked)."""
    rate = root / f"semanticodec_tokenrate_{token_rate}"
    rate.mkdir(parents=True)
    (rate / "encoder.ckpt").touch()
    (rate / "decoder.ckpt").touch()
    book = root / "codebook_idx" / f"combine_{512 // (100 // token_rate)}_audioset_dominate"
    book.mkdir(parents=True, exist_ok=True)
    (book / f"codebook_{vocab // 2}_0.npy").touch()


def test_preset_weights_folder_goes_only_to_the_codecs_it_fits(monkeypatch, tmp_path, caplog):
    # --weights DIR with SemantiCodec's layout: once it went on Encodec and DAC too, which cannot look inside a
    # folder, so they were kept and every run ended "encodec (24khz): no weights found in DIR"
    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "home"))  # an empty cache
    weights = tmp_path / "W"
    _semanticodec_layout(weights, 100, 32768)  # the 1.40 kbps row only
    with caplog.at_level("WARNING", logger="bench.tasks.presets"):
        chosen = available_codecs(SEMANTICODEC_PAPER, weights=str(weights))
    assert chosen == [f"semanticodec:token_rate=100,vocab=32768,weights={weights}"]
    left_out = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert len(left_out) == 6 and any(m.startswith("preset semanticodec-paper: encodec:bandwidth=3 left out")
                                      for m in left_out), left_out
    assert not any("weights=" in m for m in left_out)  # each names the preset's own spec
    # a codec whose weights are in the cache is kept, without the folder that is not its own
    cache = tmp_path / "home" / "weights" / "encodec" / "24khz"
    cache.mkdir(parents=True)
    (cache / "config.json").write_text("{}")
    (cache / "model.safetensors").touch()
    chosen = available_codecs(SEMANTICODEC_PAPER, weights=str(weights))
    assert chosen == [f"semanticodec:token_rate=100,vocab=32768,weights={weights}", "encodec:bandwidth=3",
                      "encodec:bandwidth=1.5"]
