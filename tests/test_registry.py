"""Registries: lazy, with did-you-mean, and declared metadata that agrees with each class."""

from __future__ import annotations

import subprocess
import sys

import pytest

import bench
from bench.codecs import CODECS
from bench.metrics import METRICS
from bench.registry import UnknownNameError, format_spec, parse_spec
from bench.tasks import TASKS


@pytest.mark.parametrize("args", [["--help"], ["list", "codecs"], ["list", "metrics"], ["list", "tasks"]])
def test_cli_listing_never_imports_torch(args):
    code = ("import sys; from bench.cli import main\n"
            "try:\n    main(%r)\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'numpy', 'pandas', 'transformers') if m in sys.modules]\n"
            "print('HEAVY', heavy)" % (args,))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out


def test_list_codecs_shows_metadata():
    out = subprocess.run([sys.executable, "-m", "bench.cli", "list", "codecs"], capture_output=True, text=True,
                         check=True).stdout
    assert "codec2" in out and "0.7, 1.2" in out and "8000" in out and "licence" in out


def test_unknown_names_get_did_you_mean_and_the_list():
    with pytest.raises(UnknownNameError, match=r"Did you mean 'opus'\?.*Known codecs: .*codec2"):
        bench.load_codec("opsu")
    with pytest.raises(UnknownNameError, match="Did you mean 'mel'"):
        bench.load_metric("mell")
    with pytest.raises(UnknownNameError, match="demo-speech"):
        bench.load_task("demo-speach")


def test_spec_round_trip():
    assert parse_spec("semanticodec:token_rate=50,vocab=4096,tiny") == (
        "semanticodec", {"token_rate": 50, "vocab": 4096, "tiny": True})
    assert parse_spec("opus:bitrate=6.5") == ("opus", {"bitrate": 6.5})
    assert format_spec(*parse_spec("a:z=1,b=x,flag")) == "a:b=x,flag,z=1"


@pytest.mark.parametrize("name", CODECS.names())
def test_codec_metadata_matches_class(name):
    entry = CODECS.entry(name)
    cls = entry.load()
    assert cls.name == name
    points = cls.operating_points()
    declared = tuple(entry.meta["operating_points"])
    if points:
        assert sorted({round(p.kbps, 4) for p in points}) == sorted({round(float(k), 4) for k in declared})
    for key in ("sample_rate", "channels", "frame_rate", "needs_weights", "licence"):
        assert key in entry.meta, f"{name}: registry entry lacks {key}"
    # the values `bench list codecs` prints (without importing the class) are the loaded codec's: one loaded per
    # sample-rate variant ("24000|48000"); a field with as many alternatives follows it position by position
    # ("1|2" channels), any other ("12.5|25|50", set by another option) must hold the loaded value
    rates = _alternatives(entry.meta["sample_rate"])
    for i, rate in enumerate(rates):
        options = ({"tiny": True} if entry.meta["needs_weights"] else {}) | (
            {"sample_rate": int(rate)} if len(rates) > 1 else {})
        meta = bench.load_codec(name, **options).meta
        assert meta.licence == entry.meta["licence"], (name, meta.licence, entry.meta["licence"])  # list = reports
        for key in ("sample_rate", "channels", "frame_rate"):
            declared = _alternatives(entry.meta[key])
            got = None if getattr(meta, key) is None else round(float(getattr(meta, key)), 2)
            if len(declared) == len(rates):
                assert got == declared[i], (name, options, key, got, entry.meta[key])
            else:
                assert got in declared, (name, options, key, got, entry.meta[key])


def _alternatives(value) -> list[float | None]:
    """A registry field as its alternatives: 48000 -> [48000.0], "75|150" -> [75.0, 150.0], None -> [None]."""
    if value is None:
        return [None]
    return [round(float(v), 2) for v in str(value).split("|")]


@pytest.mark.parametrize("name", METRICS.names())
def test_metric_metadata_matches_class(name):
    entry = METRICS.entry(name)
    metric = bench.load_metric(name)  # every metric's dependencies are required: an ImportError fails
    assert metric.name == name
    assert metric.meta.higher_is_better == entry.meta["higher_is_better"]
    if metric.meta.sample_rate is not None and entry.meta.get("sample_rate") not in (None, "item"):
        assert metric.meta.sample_rate == entry.meta["sample_rate"]
    assert tuple(metric.meta.domains) == tuple(entry.meta.get("domains", ()))


@pytest.mark.parametrize("name", TASKS.names())
def test_task_metadata_matches_class(name):
    task = bench.load_task(name)
    assert task.meta.name == name
    items = task.items()
    assert items, f"{name} has no items"
    assert all(i.domain in ("speech", "music", "sound") for i in items)
