"""HEAR task directories: reading, errors, and the probe end to end on a synthetic task."""

from __future__ import annotations

import json

import numpy as np
import pytest

import bench
from bench.probe.synthetic import write_synthetic_hear_task
from bench.tasks.hear import DEMO_HEAR_ROOT, HearTask, HearTaskError


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    return write_synthetic_hear_task(tmp_path_factory.mktemp("tones"))


def test_reads_items_splits_labels(tones):
    task = bench.load_task(f"hear:{tones}")
    assert isinstance(task, HearTask) and task.name == f"hear:{tones}"
    items = task.items()
    assert len(items) == 3 * (12 + 6 + 15)
    by_split = {s: [i for i in items if i.info["split"] == s] for s in ("train", "valid", "test")}
    assert [len(v) for v in by_split.values()] == [36, 18, 45]
    item = by_split["test"][0]
    assert item.id == "test/high_test_000" and item.label == "high" and item.info["labels"] == ["high"]
    assert item.info["fold"] is None and item.domain == "sound" and item.sample_rate == 16000
    audio, sr = item.load()
    assert sr == 16000 and audio.shape == (1, 8000) and audio.dtype == np.float32
    assert task.vocabulary == ["low", "mid", "high"]
    assert task.prediction_type == "multiclass" and task.evaluation == ["top1_acc"]
    assert task.data_splits() == [{"train": ["train"], "valid": ["valid"], "test": ["test"]}]


def test_kfold_dir_and_domain_override(tmp_path):
    root = write_synthetic_hear_task(tmp_path, per_class=2, split_mode="new_split_kfold", nfolds=3, seconds=0.1)
    md = json.loads((root / "task_metadata.json").read_text())
    (root / "task_metadata.json").write_text(json.dumps({**md, "domain": "music"}))
    task = HearTask(root)
    assert {i.info["fold"] for i in task.items()} == {0, 1, 2}
    assert task.items()[0].id.startswith("fold00/") and task.domain == "music"
    assert len(task.data_splits()) == 3


def test_picks_highest_rate_or_asked_rate(tmp_path):
    root = write_synthetic_hear_task(tmp_path, per_class=1, seconds=0.1, sample_rate=16000)
    write_synthetic_hear_task(tmp_path, per_class=1, seconds=0.1, sample_rate=48000)
    assert HearTask(root).sample_rate == 48000
    assert HearTask(root, sample_rate=16000).items()[0].load()[1] == 16000
    with pytest.raises(HearTaskError, match="22050"):
        HearTask(root, sample_rate=22050)


@pytest.mark.parametrize("breakage, message", [
    ("rm labelvocabulary.csv", "labelvocabulary.csv is missing"),
    ("rm task_metadata.json", "task_metadata.json is missing"),
    ("rm valid.json", "valid.json is missing"),
    ("rm audio", "16000/test is missing"),
    ("bad label", "not in labelvocabulary.csv"),
    ("event task", "scene tasks only"),
    ("bad json", "not valid JSON"),
])
def test_malformed_dirs_name_the_problem(tmp_path, breakage, message):
    import shutil

    root = write_synthetic_hear_task(tmp_path, per_class=1, seconds=0.1)
    md = json.loads((root / "task_metadata.json").read_text())
    if breakage.startswith("rm "):
        target = breakage[3:]
        if target == "audio":
            shutil.rmtree(root / "16000" / "test")
        else:
            (root / target).unlink()
    elif breakage == "bad label":
        (root / "train.json").write_text(json.dumps({"low_train_000.wav": ["kazoo"]}))
    elif breakage == "event task":
        (root / "task_metadata.json").write_text(json.dumps({**md, "embedding_type": "event"}))
    elif breakage == "bad json":
        (root / "test.json").write_text("{oops")
    with pytest.raises(HearTaskError, match=message):
        HearTask(root).items()


def test_missing_folder_message():
    with pytest.raises(HearTaskError, match="hear:PATH"):
        bench.load_task("hear:/no/such/hear/task")


# -- the probe end to end ----------------------------------------------------------------------

def test_probe_logmel_separable_and_shuffled(tones, tmp_path):
    from bench.probe import evaluate, read_heareval_embeddings

    task = bench.load_task(f"hear:{tones}")
    res = evaluate(None, task, grid="reduced", seed=0, export_dir=tmp_path / "emb")
    assert res["embedding_kind"] == "logmel" and res["dim"] == 64 and res["n_failed"] == 0
    assert res["n_items"] == {"train": 36, "valid": 18, "test": 45}
    assert res["top1_acc"] >= 0.9 and res["mAP"] >= 0.9 and res["score"] == res["top1_acc"]
    emb, labels = read_heareval_embeddings(tmp_path / "emb", "test")
    assert emb.shape == (45, 64) and labels[0] == ["high"]
    assert (tmp_path / "emb" / "task_metadata.json").exists()

    shuffled = write_synthetic_hear_task(tmp_path / "shuffled", shuffle_labels=True)
    res = evaluate(None, bench.load_task(f"hear:{shuffled}"), grid="reduced", seed=0)
    assert res["top1_acc"] <= 0.6  # chance is 1/3; separable labels score >= 0.9 above


def test_probe_metric_meanstd_and_subset(tones):
    metric = bench.load_metric("probe:grid=reduced,pooling=meanstd")
    assert metric.meta.level == "task" and metric.identity() == "probe:grid=reduced,pooling=meanstd"
    assert bench.load_metric("probe").identity() == "probe"
    task = bench.load_task(f"hear:{tones}")
    values = metric.evaluate(None, task, items=[i for i in task.items() if not i.id.endswith("_014")])
    assert values["dim"] == 128 and values["n"] == 99 - 3 and values["embedding_kind"] == "logmel"
    assert values["probe"] == values["top1_acc"] >= 0.9
    with pytest.raises(Exception, match="task-level"):
        metric.score(np.zeros((1, 10)), np.zeros((1, 10)), 16000)
    assert metric.skip_reason_task(object()) is not None


def test_probe_kfold_reports_std(tmp_path):
    from bench.probe import evaluate

    root = write_synthetic_hear_task(tmp_path, per_class=6, split_mode="new_split_kfold", nfolds=3, seconds=0.25)
    res = evaluate(None, HearTask(root), grid="reduced", seed=0)
    assert len(res["folds"]) == 3 and "top1_acc_std" in res
    accs = [f["top1_acc"] for f in res["folds"]]
    assert res["top1_acc"] == pytest.approx(np.mean(accs))
    assert res["top1_acc_std"] == pytest.approx(np.std(accs, ddof=1))


@pytest.mark.parametrize("name", ["demo-digits", "demo-instruments", "demo-drums"])
def test_shipped_demo_tasks_load(name):
    sub = {"demo-digits": "digits", "demo-instruments": "instruments", "demo-drums": "drums"}[name]
    assert (DEMO_HEAR_ROOT / sub / "task_metadata.json").exists(), f"the shipped HEAR task {sub} is missing"
    task = bench.load_task(name)
    assert task.name == name
    items = task.items()
    assert {i.info["split"] for i in items} == set(task.splits)
    assert all(i.info["labels"] and set(i.info["labels"]) <= set(task.vocabulary) for i in items)
    audio, sr = items[0].load()
    assert audio.ndim == 2 and sr == task.sample_rate


def test_runner_round_trip_hear_path(tones, tmp_path):
    """`bench run --codec identity --metric probe --task hear:PATH` from the user's side (reduced grid)."""
    res = bench.run(codecs=["identity"], tasks=[f"hear:{tones}"], metrics=["probe:grid=reduced"],
                    out=tmp_path / "out", jobs=1)
    frame = res.to_frame()
    row = frame[(frame["metric"].astype(str).str.startswith("probe")) & (frame["codec"].astype(str) == "identity")]
    assert len(row) == 1
    assert float(row["value"].iloc[0]) >= 0.9  # identity keeps everything: as separable as the log-mel reference
