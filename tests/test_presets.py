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
    with_weights = available_codecs(SEMANTICODEC_PAPER, weights=str(tmp_path))
    # SemantiCodec looks inside the folder (empty here: left out); Encodec and DAC find out when they load it
    assert not [s for s in with_weights if s.startswith("semanticodec")]
    assert f"encodec:bandwidth=3,weights={tmp_path}" in with_weights and len(with_weights) == 4
    assert "semanticodec-paper" in PRESETS
