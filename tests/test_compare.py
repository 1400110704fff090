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
