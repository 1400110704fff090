"""bench export / bench compare: exit 1 on a planted regression, 0 on identical runs."""

from __future__ import annotations

import json

import pytest

import bench
from bench.cli import main
from bench.reports.compare import compare, parse_tolerances

import fakes


@pytest.fixture
def workspace(monkeypatch, audio_dir, tmp_path):
    fakes.install(monkeypatch)
    ws = tmp_path / "ws"
    bench.run(codecs=["gain"], tasks=[f"files:{audio_dir}"], metrics=["l1", "peak"], out=ws, jobs=1)
    return ws


def _export(ws, path):
    assert main(["export", "--out", str(ws), "-o", str(path)]) == 0
    return json.loads(path.read_text())


def test_identical_runs_pass_and_planted_regression_fails(workspace, tmp_path, capsys):
    base = _export(workspace, tmp_path / "base.json")
    assert base["schema_version"] == 1 and base["rows"]
    assert main(["compare", str(tmp_path / "base.json"), "--out", str(workspace)]) == 0

    worse = json.loads(json.dumps(base))
    for row in worse["rows"]:
        if row["metric"] == "l1":  # lower is better: +10 % is a regression beyond the 2 % default
            row["value"] *= 1.10
    (tmp_path / "worse.json").write_text(json.dumps(worse))
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "base.json"), str(tmp_path / "worse.json")]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION" in out and "l1" in out

    # The same change within a loosened tolerance passes; an improvement never fails.
    assert main(["compare", str(tmp_path / "base.json"), str(tmp_path / "worse.json"), "--tolerance", "l1=20%"]) == 0
    assert main(["compare", str(tmp_path / "worse.json"), str(tmp_path / "base.json")]) == 0


def test_direction_and_missing_rows():
    row = {"label": "c", "task": "t", "metric": "peak", "metric_name": "peak", "higher_is_better": True}
    base = {"rows": [dict(row, value=1.0)]}
    lower = {"rows": [dict(row, value=0.9)]}
    higher = {"rows": [dict(row, value=1.1)]}
    tol = parse_tolerances(["peak=0.05"])
    assert compare(base, lower, tol)[0].status == "REGRESSION"
    assert compare(base, higher, tol)[0].status == "better"
    assert compare(base, {"rows": []}, tol)[0].status == "missing"
    with pytest.raises(ValueError, match="METRIC=VALUE"):
        parse_tolerances(["peak"])


def test_percent_tolerances_are_relative_to_the_baseline_and_plain_ones_absolute():
    # baseline 2.0, lower is better: "5%" allows 0.1 of worsening, "0.05" allows 0.05. (The runs above loosen a
    # 10 % change with "l1=20%", which also passes if 20% were read as 20, as 0.2 absolute, or as 20 x baseline.)
    tol = parse_tolerances(["mel=5%", "wer=0.05"])
    assert tol["mel"] == ("rel", 0.05) and tol["wer"] == ("abs", 0.05)
    assert {k: v for k, v in tol.items() if k not in ("mel", "wer")} == {
        k: v for k, v in parse_tolerances([]).items() if k not in ("mel", "wer")}

    def status(metric, value, tolerances):
        row = {"label": "c", "task": "t", "metric": metric, "metric_name": metric, "higher_is_better": False}
        return compare({"rows": [dict(row, value=2.0)]}, {"rows": [dict(row, value=value)]}, tolerances)[0].status

    assert status("mel", 2.09, tol) == "ok" and status("mel", 2.11, tol) == "REGRESSION"  # 4.5 % and 5.5 % worse
    assert status("wer", 2.04, tol) == "ok" and status("wer", 2.06, tol) == "REGRESSION"  # 0.04 and 0.06 worse
    assert status("mel", 1.89, tol) == "better" and status("mel", 1.91, tol) == "ok"  # improvements by the same rule


def _planted(base: dict, **changes) -> dict:
    """A copy of `base` whose l1 rows get `changes` (e.g. value scaled, n and n_failed moved)."""
    out = json.loads(json.dumps(base))
    for row in out["rows"]:
        if row["metric"] == "l1":
            if "value_scale" in changes:
                row["value"] *= changes["value_scale"]
            row["n"] += changes.get("n", 0)
            row["n_failed"] += changes.get("n_failed", 0)
    return out


def test_fewer_items_or_more_failures_fail_even_when_the_value_improves(workspace, tmp_path, capsys):
    base = _export(workspace, tmp_path / "base.json")
    l1 = next(r for r in base["rows"] if r["metric"] == "l1")
    assert l1["n"] >= 2 and "n_failed" in l1
    # one more item failed and was dropped from the mean: l1 (lower is better) looks 30 % better
    (tmp_path / "cur.json").write_text(json.dumps(_planted(base, value_scale=0.7, n=-1, n_failed=1)))
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "base.json"), str(tmp_path / "cur.json")]) == 1
    out = capsys.readouterr().out
    assert "FEWER ITEMS" in out and "MORE FAILURES" in out and f"{l1['n']} → {l1['n'] - 1}" in out
    assert main(["compare", str(tmp_path / "base.json"), str(tmp_path / "cur.json"), "--allow-fewer-items"]) == 1
    assert main(["compare", str(tmp_path / "base.json"), str(tmp_path / "cur.json"), "--allow-failures"]) == 1
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "base.json"), str(tmp_path / "cur.json"), "--allow-fewer-items",
                 "--allow-failures"]) == 0
    assert "allowed: fewer items, more failures" in capsys.readouterr().out
    # the counts alone: fewer items with the same failures, more failures with the same n
    (tmp_path / "fewer.json").write_text(json.dumps(_planted(base, n=-1)))
    assert main(["compare", str(tmp_path / "base.json"), str(tmp_path / "fewer.json")]) == 1
    assert main(["compare", str(tmp_path / "base.json"), str(tmp_path / "fewer.json"), "--allow-fewer-items"]) == 0
    (tmp_path / "failed.json").write_text(json.dumps(_planted(base, n_failed=1)))
    assert main(["compare", str(tmp_path / "base.json"), str(tmp_path / "failed.json")]) == 1
    assert main(["compare", str(tmp_path / "base.json"), str(tmp_path / "failed.json"), "--allow-failures"]) == 0
    # more items than the baseline is not a problem
    (tmp_path / "more.json").write_text(json.dumps(_planted(base, n=1)))
    assert main(["compare", str(tmp_path / "base.json"), str(tmp_path / "more.json")]) == 0


def test_a_real_run_over_fewer_items_is_a_regression(monkeypatch, audio_dir, tmp_path, capsys):
    fakes.install(monkeypatch)
    bench.run(codecs=["gain"], tasks=[f"files:{audio_dir}"], metrics=["l1"], out=tmp_path / "a", jobs=1)
    _export(tmp_path / "a", tmp_path / "base.json")
    (audio_dir / "good3.wav").unlink()
    bench.run(codecs=["gain"], tasks=[f"files:{audio_dir}"], metrics=["l1"], out=tmp_path / "b", jobs=1)
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "base.json"), "--out", str(tmp_path / "b")]) == 1
    assert "FEWER ITEMS" in capsys.readouterr().out
    assert main(["compare", str(tmp_path / "base.json"), "--out", str(tmp_path / "b"), "--allow-fewer-items"]) == 0


@pytest.mark.parametrize("text, message", [
    ('{\n "schema": "bench-summary",\n "rows": ]\n}\n',
     "baseline.json is not a bench export (line 3: Expecting value); make it with `bench export`"),
    ("[1, 2]\n", 'baseline.json is not a bench export (no "schema": "bench-summary")'),
    ('{"schema": "bench-summary", "schema_version": 1, "rows": [{"label": "x"}]}',
     "baseline.json: row 0 lacks task, metric, value, higher_is_better"),
    (b"\xff\xfe{}", "baseline.json is not a bench export (not UTF-8"),
])
def test_malformed_summary_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch, text, message):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "baseline.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    (tmp_path / "cur.json").write_text('{"schema": "bench-summary", "schema_version": 1, "rows": []}')
    capsys.readouterr()
    assert main(["compare", "baseline.json", "cur.json"]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in captured.err + captured.out, captured
    assert "error: " + message in err
    assert main(["compare", "missing.json", "cur.json"]) == 2
    assert "missing.json: no such file; make it with `bench export`" in capsys.readouterr().err


def test_a_metric_with_no_value_on_both_sides_is_not_a_regression():
    # wer on a music task: n=0, n_failed=0, value None in both summaries (the metric does not apply)
    row = {"label": "c", "task": "demo-music", "metric": "wer", "metric_name": "wer", "higher_is_better": False,
           "n": 0, "n_failed": 0, "value": None}
    scored = dict(row, task="demo-speech", value=0.25, n=3)
    summary = {"rows": [row, scored]}
    diffs = compare(summary, json.loads(json.dumps(summary)))
    assert [d.status for d in diffs] == ["no value", "ok"]
    assert not any(d.regression or d.status == "missing" for d in diffs)
    # a value that disappears is still missing; one that appears is still new
    assert compare({"rows": [scored]}, {"rows": [dict(scored, value=None)]})[0].status == "missing"
    assert compare({"rows": [dict(scored, value=None)]}, {"rows": [scored]})[0].status == "new"
    # no value on either side, but items now fail where none did: still a problem
    failing = compare({"rows": [row]}, {"rows": [dict(row, n_failed=3)]})[0]
    assert failing.status == "MORE FAILURES" and failing.regression


def test_compare_with_own_export_passes_when_a_metric_does_not_apply(monkeypatch, audio_dir, tmp_path, capsys):
    fakes.install(monkeypatch)
    from bench.metrics import METRICS

    monkeypatch.setitem(METRICS._entries, "musiconly", fakes.Entry("musiconly", "fakes:MusicOnly", {}))
    ws = tmp_path / "ws"
    bench.run(codecs=["gain"], tasks=[f"files:{audio_dir}"], metrics=["l1", "musiconly"], out=ws, jobs=1)
    base = _export(ws, tmp_path / "base.json")
    assert any(r["metric"] == "musiconly" and r["value"] is None and r["n"] == 0 for r in base["rows"])
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "base.json"), "--out", str(ws)]) == 0
    assert "no regression beyond tolerance" in capsys.readouterr().out
