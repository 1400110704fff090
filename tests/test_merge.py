"""Shards (`--shard K/N`) and `bench merge`: merged shards equal one run (issue 12, item 4)."""

from __future__ import annotations

import json
import math

import pytest

import bench
from bench.merge import MergeError, merge
from bench.selection import parse_shard, shard_items, task_items
from bench.store import ResultStore

import fakes


@pytest.fixture(autouse=True)
def _fakes(monkeypatch):
    fakes.install(monkeypatch)


# tot: a task value that is not the mean of the items' (total / total), which the merge must recompute the same way
RUN = dict(codecs=["gain:gain=0.5", "gain:gain=0.8"], metrics=["l1", "peak", "itemcount", "tot"], jobs=1)


def _rows(ws):
    store = ResultStore(ws, readonly=True)
    scores = sorted(map(tuple, store.scores_frame()[["fingerprint", "task", "item", "metric", "key", "value"]]
                        .itertuples(index=False)))
    cells = store.cells()[["fingerprint", "task", "metric", "value", "n", "n_failed", "n_skipped", "items_digest"]]
    cells = sorted((tuple("nan" if isinstance(v, float) and math.isnan(v) else v for v in r)
                    for r in cells.itertuples(index=False)), key=str)
    failures = sorted((f["fingerprint"], f["item"], f["stage"], f["metric"]) for f in store.failures())
    store.close()
    return scores, cells, failures


def test_shards_merged_equal_one_run(tmp_path, audio_dir):
    task = f"files:{audio_dir}"
    bench.run(tasks=[task], out=tmp_path / "whole", **RUN)
    for k in (1, 2, 3):
        bench.run(tasks=[task], out=tmp_path / f"s{k}", shard=f"{k}/3", **RUN)
    parts = [_rows(tmp_path / f"s{k}")[0] for k in (1, 2, 3)]
    assert sum(len(p) for p in parts) == len(_rows(tmp_path / "whole")[0])  # disjoint and complete
    summary = merge([tmp_path / f"s{k}" for k in (1, 2, 3)], tmp_path / "merged")
    assert summary.workspaces == 3 and summary.files > 0
    assert _rows(tmp_path / "merged") == _rows(tmp_path / "whole")
    # the merged workspace is a normal one: a re-run there codes and scores nothing again
    again = bench.run(tasks=[task], out=tmp_path / "merged", **RUN)
    assert again.codec_work == 0
    assert _rows(tmp_path / "merged") == _rows(tmp_path / "whole")


def test_a_missing_shard_is_refused_unless_allowed(tmp_path, audio_dir):
    task = f"files:{audio_dir}"
    for k in (1, 2):
        bench.run(tasks=[task], out=tmp_path / f"s{k}", shard=f"{k}/3", **RUN)
    with pytest.raises(MergeError, match=r"shard\(s\) 3/3 are missing"):
        merge([tmp_path / "s1", tmp_path / "s2"], tmp_path / "merged")
    summary = merge([tmp_path / "s1", tmp_path / "s2"], tmp_path / "partial", allow_partial=True)
    assert summary.notes and "3/3" in summary.notes[0]


def test_shards_of_other_item_lists_are_refused(tmp_path, audio_dir):
    task = f"files:{audio_dir}"
    bench.run(tasks=[task], out=tmp_path / "s1", shard="1/2", limit=4, **RUN)
    bench.run(tasks=[task], out=tmp_path / "s2", shard="2/2", **RUN)
    with pytest.raises(MergeError, match="different item lists"):
        merge([tmp_path / "s1", tmp_path / "s2"], tmp_path / "merged")


def test_shards_split_by_id_and_subsets_are_seeded(audio_dir):
    items = bench.load_task(f"files:{audio_dir}").items()
    parts = [shard_items(items, (k, 4)) for k in range(1, 5)]
    assert sorted(i.id for p in parts for i in p) == sorted(i.id for i in items)
    assert shard_items(list(reversed(items)), (2, 4)) == list(reversed(parts[1]))  # order does not matter
    task = bench.load_task(f"files:{audio_dir}")
    a, b = task_items(task, 4, subset_seed=7), task_items(task, 4, subset_seed=7)
    assert [i.id for i in a] == [i.id for i in b] and len(a) == 4
    assert [i.id for i in task_items(task, 4)] == [i.id for i in items[:4]]  # no seed: the first N
    seeds = {tuple(i.id for i in task_items(task, 4, subset_seed=s)) for s in range(8)}
    assert len(seeds) > 1
    for bad in ("0/2", "3/2", "1-2", "x", (1, 0)):
        with pytest.raises(ValueError, match="shard must be K/N"):
            parse_shard(bad)


def test_shards_and_merge_from_the_command_line(tmp_path, audio_dir):
    from bench.cli import main

    base = ["run", "--codec", "opus", "--bitrate", "6", "--task", f"files:{audio_dir}", "--metric", "mel",
            "--no-report", "--jobs", "1"]
    assert main(base + ["--out", str(tmp_path / "whole")]) == 0
    for k in (1, 2):
        assert main(base + ["--out", str(tmp_path / f"s{k}"), "--shard", f"{k}/2"]) == 0
    assert main(["merge", str(tmp_path / "s1"), str(tmp_path / "s2"), "--out", str(tmp_path / "m")]) == 0
    assert _rows(tmp_path / "m") == _rows(tmp_path / "whole")
    assert (tmp_path / "m" / "report" / "report.md").exists()
    assert main(["merge", str(tmp_path / "s1"), "--out", str(tmp_path / "m2"), "--no-report"]) == 2  # 2/2 missing


def _no_nan(text):
    def refuse(constant):
        raise ValueError(f"export wrote {constant}, which is not JSON")
    return json.loads(text, parse_constant=refuse)


def test_a_shard_and_a_merge_keep_the_task_domain_in_reports_and_exports(tmp_path, capsys):
    # a shard stores the other shards' items with only a signature (no domain): the domain must come from the
    # items that have one, the export must stay valid JSON, and the report title must name the domain
    from bench.cli import main
    from bench.reports.build import write_report

    run = dict(codecs=["gain"], tasks=["demo-speech"], metrics=["l1"], limit=6, jobs=1)
    for k in (1, 2):
        bench.run(out=tmp_path / f"s{k}", shard=f"{k}/2", **run)
    merge([tmp_path / "s1", tmp_path / "s2"], tmp_path / "merged")
    for ws in ("s1", "merged"):
        capsys.readouterr()
        assert main(["export", "--out", str(tmp_path / ws)]) == 0
        summary = _no_nan(capsys.readouterr().out)
        assert summary["rows"] and {r["domain"] for r in summary["rows"]} == {"speech"}, ws
        md = write_report(ResultStore(tmp_path / ws, readonly=True), tmp_path / ws / "report",
                          html=False)["markdown"].read_text()
        assert "### demo-speech (speech)" in md and "(nan)" not in md, ws


def test_export_never_writes_nan(tmp_path):
    import pandas as pd

    from bench.reports.compare import export_summary

    row = {"codec": "c", "label": "c", "options": "{}", "fingerprint": "fp", "task": "t", "domain": float("nan"),
           "metric": "m", "metric_name": "m", "metric_key": "m@1", "value": float("nan"), "higher_is_better": True,
           "n": 0, "n_failed": 0, "bitrate_kbps": float("nan"), "random_weights": False}
    summary = _no_nan(json.dumps(export_summary(pd.DataFrame([row]))))
    assert summary["rows"][0]["domain"] is None and summary["rows"][0]["value"] is None
