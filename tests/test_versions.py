"""Every codec and metric class has its own code_version, and a change to its sources without a bump fails here.

The record is tests/data/code_versions.json, written by `python -m tests.update_code_versions` (see that module
for what counts as a class's sources).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import update_code_versions as ucv  # noqa: E402


@pytest.fixture(scope="module")
def classes():
    return ucv.registered_classes()


def test_record_matches_the_sources(classes):
    found = ucv.problems(ucv.load_record(), ucv.scan(classes=classes))
    assert not found, "\n".join(found)


def test_every_registered_class_has_its_own_code_version(classes):
    for kind, named in classes.items():
        for name, cls in named.items():
            own = cls.__dict__.get("code_version")
            assert isinstance(own, str) and own, f"{kind} {name}: {cls.__qualname__} sets no code_version of its own"
    assert len(classes["codecs"]) >= 7 and len(classes["metrics"]) >= 10


def test_dependencies_follow_imports(classes):
    def deps(kind, name):
        return ucv.dependencies(ucv.class_module_path(classes[kind][name]), ucv.REPO)

    semanticodec = deps("codecs", "semanticodec")
    package = sorted(p.relative_to(ucv.REPO).as_posix() for p in (ucv.REPO / "bench/codecs/semanticodec").glob("*.py")
                     if p.name != "__init__.py")
    assert set(package) <= set(semanticodec)
    assert "bench/codecs/neural.py" in deps("codecs", "encodec") and "bench/codecs/neural.py" in deps("codecs", "dac")
    assert "bench/codecs/classic/common.py" in deps("codecs", "mp3")
    assert "bench/metrics/base.py" in deps("metrics", "mel") and "bench/probe/mlp.py" in deps("metrics", "probe")
    assert "bench/codecs/weights.py" not in deps("codecs", "encodec")  # weights enter by their content digest


def _copy_sources(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(ucv.REPO / "bench", root / "bench", ignore=shutil.ignore_patterns("__pycache__", "data"))
    return root


def test_an_edit_without_a_bump_fails(tmp_path, classes, monkeypatch):
    from bench.metrics import spectral

    root = _copy_sources(tmp_path)
    recorded = ucv.scan(root, classes)
    assert ucv.problems(recorded, ucv.scan(root, classes)) == []
    path = root / "bench/metrics/spectral.py"
    path.write_text(path.read_text().replace("1e-5", "1e-6"))  # a change that moves every mel and STFT distance
    found = ucv.problems(recorded, ucv.scan(root, classes))
    assert ("bench/metrics/spectral.py changed but MelDistance.code_version is still 1: bump it (or, for a change "
            "that cannot move any output, run `python -m tests.update_code_versions` and say why in the commit)"
            in found)
    assert {line.split(" but ")[1].split(".")[0] for line in found} == {"MelDistance", "MelDistanceDAC",
                                                                        "STFTDistance"}
    # bumped: the record must follow (else the next edit would go unnoticed) ...
    for cls in (spectral.MelDistance, spectral.MelDistanceDAC, spectral.STFTDistance):
        monkeypatch.setattr(cls, "code_version", "2")
    bumped = ucv.scan(root, classes)
    assert all("records 1: run `python -m tests.update_code_versions`" in line
               for line in ucv.problems(recorded, bumped))
    # ... and once recorded, all is in order
    assert ucv.problems(bumped, ucv.scan(root, classes)) == []


def test_a_shared_module_edit_names_every_class_it_reaches(tmp_path, classes):
    root = _copy_sources(tmp_path)
    recorded = ucv.scan(root, classes)
    path = root / "bench/codecs/classic/common.py"
    path.write_text(path.read_text() + "\nEXTRA = 1\n")
    found = ucv.problems(recorded, ucv.scan(root, classes))
    assert sorted(line.split(" but ")[1].split(".")[0] for line in found) == ["Codec2", "Identity", "MP3", "Opus"]
    assert all(line.startswith("bench/codecs/classic/common.py changed") for line in found)


@pytest.mark.parametrize("edited, version", [("bench/scoring.py", "bench.pipeline.SCORING_VERSION"),
                                             ("bench/coding.py", "bench.pipeline.CODING_VERSION"),
                                             ("bench/channel.py", "bench.channel.CHANNEL_VERSION")])
def test_a_shared_step_edit_without_a_bump_fails(tmp_path, classes, edited, version):
    root = _copy_sources(tmp_path)
    recorded = ucv.scan(root, classes)
    path = root / edited
    path.write_text(path.read_text() + "\nEXTRA = 1\n")
    found = ucv.problems(recorded, ucv.scan(root, classes))
    assert found == [f"{edited} changed but {version} is still 1: bump it (or, for a change that cannot move any "
                     "output, run `python -m tests.update_code_versions` and say why in the commit)"]
    module, _, name = version.rpartition(".")
    source = root / (module.replace(".", "/") + ".py")
    source.write_text(source.read_text().replace(f'{name} = "1"', f'{name} = "2"'))
    bumped = ucv.scan(root, classes)
    assert ucv.problems(recorded, bumped) == [f"{version} is 2 but tests/data/code_versions.json records 1: run "
                                              "`python -m tests.update_code_versions` to record the bump"]
    assert ucv.problems(bumped, ucv.scan(root, classes)) == []


def test_an_edited_audio_module_names_both_pipeline_versions(tmp_path, classes):
    root = _copy_sources(tmp_path)
    recorded = ucv.scan(root, classes)
    path = root / "bench/audio.py"
    path.write_text(path.read_text() + "\nEXTRA = 1\n")
    assert sorted(line.split(" but ")[1].split(" is ")[0] for line in ucv.problems(recorded, ucv.scan(root, classes))) \
        == ["bench.pipeline.CODING_VERSION", "bench.pipeline.SCORING_VERSION"]


def test_a_pipeline_bump_changes_the_keys(monkeypatch):
    import bench
    from bench import pipeline

    codec, metric = bench.load_codec("opus", bitrate=6), bench.load_metric("mel")
    before = codec.fingerprint(), metric.fingerprint()
    monkeypatch.setattr(pipeline, "CODING_VERSION", "2")
    assert codec.fingerprint() != before[0] and metric.fingerprint() == before[1]  # re-code, and so re-score
    monkeypatch.setattr(pipeline, "CODING_VERSION", "1")
    monkeypatch.setattr(pipeline, "SCORING_VERSION", "2")
    assert codec.fingerprint() == before[0] and metric.fingerprint() != before[1]  # outputs kept, re-scored


def test_line_endings_do_not_count(tmp_path, classes):
    root = _copy_sources(tmp_path)
    recorded = ucv.scan(root, classes)
    path = root / "bench/metrics/signal.py"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert ucv.problems(recorded, ucv.scan(root, classes)) == []


def test_missing_and_unowned_classes_fail(classes, monkeypatch):
    from bench.codecs.classic.opus import Opus

    current = ucv.scan(classes=classes)
    record = {**current, "metrics": {k: v for k, v in current["metrics"].items() if k != "pesq"}}
    assert ucv.problems(record, current) == [
        "metric 'pesq' (PESQ) is not in tests/data/code_versions.json: run `python -m tests.update_code_versions`"]
    monkeypatch.delattr(Opus, "code_version")  # falls back to the base class's
    found = ucv.problems(current, ucv.scan(classes=classes))
    assert found == ["bench.codecs.classic.opus.Opus has no code_version of its own: add `code_version = \"1\"` "
                     "to the class"]


def test_the_updater_runs_as_a_module():
    out = subprocess.run([sys.executable, "-m", "tests.update_code_versions", "--check"], cwd=ucv.REPO,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "in order" in out.stdout
