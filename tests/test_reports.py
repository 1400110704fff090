"""Reports: headline table (Markdown, LaTeX, CSV), published block, plots, and the listening page in a browser."""

from __future__ import annotations

import re
import shutil
import subprocess

import pandas as pd
import pytest

import bench
from bench.reports.build import write_report

import fakes


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    fakes.install(mp)
    from conftest import tone
    import soundfile as sf

    clips = tmp_path_factory.mktemp("clips")
    for i in range(3):
        sf.write(clips / f"c{i}.wav", tone(0.5, 16000, 200 + 100 * i, seed=i), 16000)
    ws = tmp_path_factory.mktemp("ws")
    res = bench.run(codecs=["gain:gain=0.5", "gain:gain=0.9", "identity"], tasks=[f"files:{clips}"],
                    metrics=["l1", "mel", "peak"], out=ws, jobs=1)
    paths = write_report(res.store)
    yield res, paths
    mp.undo()


def test_headline_markdown_latex_csv(report):
    res, paths = report
    md = paths["markdown"].read_text()
    assert "## Headline" in md and "## Per task" in md and "## How this was measured" in md
    assert "Published: SemantiCodec paper" in md and "| SemantiCodec | 1.4 | 100 | 3.81 | 3.4 | 52.5 |" in md
    # measured and published never share a table: the published block comes after the measured tables
    assert md.index("## Published") > md.index("## Per task")
    assert "`l1` at 8000 Hz" in md and "items scored per task" in md
    tex = paths["latex"].read_text()
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex
    headline = paths["headline_csv"].read_text()
    assert "gain:delay=0.0,fail_on=0,gain=0.9" in headline


def test_best_value_is_bold_and_ceilings_are_not_competitors(report):
    res, paths = report
    frame = res.to_frame()
    assert set(frame.metric) >= {"l1", "peak"}
    tex = paths["latex"].read_text()
    md = paths["markdown"].read_text()
    # gain 0.9 has the lower mel distance among coded rows (identity is a ceiling, excluded from "best")
    mel = frame[(frame.metric_name == "mel") & (frame.codec == "gain")].sort_values("value")
    assert mel.label.iloc[0].endswith("gain=0.9")
    best = mel.value.iloc[0]
    assert f"\\textbf{{{best:.3f}}}" in tex and f"**{best:.3f}**" in md
    assert "**0.000**" not in md  # identity's perfect score is not bolded


def test_plots_are_images(report):
    _, paths = report
    pngs = [p for k, p in paths.items() if k.startswith("plot") and p.suffix == ".png"]
    pdfs = [p for k, p in paths.items() if k.startswith("plot") and p.suffix == ".pdf"]
    assert pngs and pdfs
    from PIL import Image

    for p in pngs:
        with Image.open(p) as im:
            assert im.size[0] > 300 and im.size[1] > 200
            low, high = im.convert("L").getextrema()
            assert high - low > 100  # not a blank canvas
    assert all(p.read_bytes()[:4] == b"%PDF" for p in pdfs)


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def test_listening_page_is_self_contained(report):
    _, paths = report
    page = paths["html"].read_text()
    n_audio = page.count("<audio")
    assert n_audio == 3 * 4  # three items, each: reference + three codecs
    assert "src=\"data:audio/flac;base64," in page and "http://" not in page and "https://" not in page


@pytest.mark.skipif(_chromium() is None, reason="no Chromium on this machine (apt-get install chromium to run it)")
def test_listening_page_audio_plays_in_headless_chromium(report, tmp_path):
    _, paths = report
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
           "--autoplay-policy=no-user-gesture-required", "--virtual-time-budget=15000", "--dump-dom",
           paths["html"].as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    status = re.search(r'id="audio-status">([^<]*)<', dom)
    assert status, dom[:500]
    assert status.group(1) == "12 of 12 audio clips ready"


# -- fair comparisons: tiny stores written through ResultStore's public methods -------------------------

def _store(root, cells, random=(), domain="speech"):
    """cells: (codec label, task, metric display identity, value, n, n_failed, extra). Keys are `name@digest`."""
    from bench.store import ResultStore

    store = ResultStore(root)
    names = {"mel": ("mel", False), "probe": ("probe", True), "wer": ("wer", False)}
    for metric, (name, higher) in names.items():
        store.add_metric(f"{metric}@0123456789", name, name, {"identity": metric, "higher_is_better": higher,
                                                               "version": "1"})
    for label in dict.fromkeys(c[0] for c in cells):
        store.add_codec(f"fp-{label}", label.split(":")[0], {}, label, None,
                        {"random_weights": label in random})
    for task in dict.fromkeys(c[1] for c in cells):
        store.add_item(task, "i0", domain, 16000, 1.0, None, None)
    for label, task, metric, value, n, n_failed, extra in cells:
        store.write_cell(f"fp-{label}", task, f"{metric}@0123456789", value, n, n_failed, 0, extra=extra)
    return store


def _headline(store):
    """(headline.csv indexed by codec, report.md) of a full `write_report` (no listening page)."""
    paths = write_report(store, store.root / "report", html=False)
    table = pd.read_csv(paths["headline_csv"]).set_index("codec")
    return table, paths["markdown"].read_text()


def test_frame_shows_the_display_identity_and_keeps_the_key(tmp_path):
    from bench.reports.frame import summary_frame

    frame = summary_frame(_store(tmp_path, [("a", "t1", "mel", 1.0, 10, 0, {})]))
    assert list(frame.metric) == ["mel"] and list(frame.metric_key) == ["mel@0123456789"]


def test_headline_never_averages_a_codec_over_fewer_tasks(tmp_path):
    # "b" ran only the easy task: its mean (0.5) would beat "a" (1.0) over both tasks
    store = _store(tmp_path, [("a", "easy", "mel", 0.6, 10, 0, {}), ("a", "hard", "mel", 1.4, 10, 0, {}),
                              ("b", "easy", "mel", 0.5, 10, 0, {}),
                              ("c", "easy", "mel", 0.9, 10, 0, {}), ("c", "hard", "mel", 1.6, 10, 0, {})])
    table, md = _headline(store)
    assert table.loc["a", "mel"] == pytest.approx(1.0)
    assert pd.isna(table.loc["b", "mel"]) and table.loc["b", "mel mark"] == "†"
    assert "| b | - | - | -† |" in md and "**1.000**" in md
    assert "`b` has no mel on hard, which the other rows average over (easy, hard)" in md
    headline = md.split("## Headline", 1)[1].split("## Per task", 1)[0]
    assert "`a`" not in headline and "`c`" not in headline
    assert "mel ↓ (n=20)" in md  # n of the common item set, in the column title


def test_headline_marks_a_codec_that_scored_fewer_items_and_never_ranks_it(tmp_path):
    store = _store(tmp_path, [("a", "t", "mel", 1.0, 48, 0, {}), ("b", "t", "mel", 0.5, 45, 3, {}),
                              ("c", "t", "mel", 1.2, 48, 0, {})])
    table, md = _headline(store)
    assert table.loc["b", "mel mark"] == "*" and pd.isna(table.loc["a", "mel mark"])
    assert "| b | - | - | 0.500* (n=45) |" in md and "**1.000**" in md and "**0.500**" not in md
    assert "`b`: mel on t cover other items than the other rows (n=45, 3 failed; the others n=48)" in md


def test_random_weight_rows_are_never_bold(tmp_path):
    store = _store(tmp_path, [("trained", "t", "mel", 1.0, 10, 0, {}), ("untrained", "t", "mel", 0.1, 10, 0, {}),
                              ("other", "t", "mel", 1.5, 10, 0, {})], random={"untrained"})
    table, md = _headline(store)
    assert "**1.000**" in md and "**0.100**" not in md and "| untrained [random weights] | - | - | 0.100 |" in md
    tex = (store.root / "report" / "headline.tex").read_text()
    assert "\\textbf{1.000}" in tex and "\\textbf{0.100}" not in tex


def _probe_extra(kind, acc, n_test=24):
    return {"embedding_kind": kind, "primary": "top1_acc", "top1_acc": acc,
            "folds": [{"test": "test", "n_test": n_test, "top1_acc": acc}]}


def test_probe_accuracy_is_split_by_embedding_kind_with_n_and_interval(tmp_path):
    store = _store(tmp_path, [
        ("latent", "inst", "probe", 0.5, 144, 0, _probe_extra("codec-latent", 0.5)),
        ("latent2", "inst", "probe", 0.25, 144, 0, _probe_extra("codec-latent", 0.25)),
        ("opus", "inst", "probe", 0.75, 144, 0, _probe_extra("decoded-logmel", 0.75)),
        ("mp3", "inst", "probe", 0.625, 144, 0, _probe_extra("decoded-logmel", 0.625)),
    ])
    table, md = _headline(store)
    assert "Acc % (codec-latent)" in table and "Acc % (decoded-logmel)" in table and "Acc %" not in table
    assert pd.isna(table.loc["latent", "Acc % (decoded-logmel)"])
    assert table.loc["opus", "Acc % (decoded-logmel)"] == pytest.approx(75.0)
    # each kind has its own best: the latent row is not beaten by a log-mel row
    assert "**50.0 [31.4, 68.6]**" in md and "**75.0 [55.1, 88.0]**" in md
    assert "Acc % (codec-latent) ↑ (n=24)" in md
    per_task = md.split("## Per task", 1)[1]
    assert "0.500 [0.314, 0.686] (24 test, codec-latent)" in per_task


def test_every_table_shows_n(report):
    _, paths = report
    md = paths["markdown"].read_text()
    headline = md.split("## Headline", 1)[1].split("## Per task", 1)[0]
    assert "mel ↓ (n=3)" in headline
    per_task = md.split("## Per task", 1)[1].split("## Published", 1)[0]
    assert "| items | failed |" in per_task
    page = paths["html"].read_text()
    assert "mel ↓ (n=3)" in page and "<th>items</th>" in page


# -- report files are written atomically ----------------------------------------------------------

def test_report_files_are_renamed_into_place_after_fsync(report, monkeypatch):
    import os

    res, _ = report
    fsynced, renamed = set(), []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        fsynced.add(os.path.realpath(f"/proc/self/fd/{fd}"))
        return real_fsync(fd)

    def replace(src, dst):
        assert os.path.dirname(os.path.abspath(src)) == os.path.dirname(os.path.abspath(dst))
        assert os.path.realpath(src) in fsynced, f"{src} renamed before fsync"
        renamed.append(os.path.abspath(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    paths = write_report(res.store)
    assert {str(p.resolve()) for p in paths.values()} <= set(map(os.path.realpath, renamed))
    assert any(p.suffix == ".png" for p in paths.values()) and any(p.suffix == ".pdf" for p in paths.values())


def test_a_failed_report_leaves_the_previous_files_whole(report, monkeypatch):
    import os

    res, paths = report
    before = {p: p.read_bytes() for p in paths.values()}

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_report(res.store)
    assert {p: p.read_bytes() for p in paths.values()} == before
    folder = paths["markdown"].parent
    assert not [p for p in folder.rglob("*") if ".tmp" in p.name], "temporary files left behind"


# -- a workspace with a 10-channel item --------------------------------------------------------

def test_ten_channel_item_is_reported(monkeypatch, tmp_path):
    import numpy as np
    import soundfile as sf

    from conftest import tone

    fakes.install(monkeypatch)
    clips_dir = tmp_path / "clips"
    clips_dir.mkdir()
    sf.write(clips_dir / "wide.wav", np.stack([tone(0.5, 16000, 200 + 50 * c, seed=c) for c in range(10)], axis=1), 16000)
    sf.write(clips_dir / "mono.wav", tone(0.5, 16000, 300), 16000)
    res = bench.run(codecs=["identity", "gain"], tasks=[f"files:{clips_dir}"], metrics=["l1"], out=tmp_path / "ws", jobs=1)
    assert not res.failures().shape[0], res.failures()
    paths = write_report(res.store)
    page = paths["html"].read_text()
    assert "reference (first 8 of 10 channels)" in page and "identity (first 8 of 10 channels)" in page
    assert page.count("<audio") == 2 * 3  # two items: reference, identity, gain
    import base64
    import io

    clips = [sf.read(io.BytesIO(base64.b64decode(part.split('"', 1)[0])), dtype="float32", always_2d=True)[0]
             for part in page.split('src="data:audio/flac;base64,')[1:]]
    # the mono item's three clips and gain's (mono) clip of the wide item: 1 channel; the wide item's reference
    # and identity: its first 8 channels, as written (16-bit)
    assert sorted(c.shape[1] for c in clips) == [1, 1, 1, 1, 8, 8]
    wide = sf.read(clips_dir / "wide.wav", dtype="float32", always_2d=True)[0]
    for c in (c for c in clips if c.shape[1] == 8):
        np.testing.assert_allclose(c, wide[: len(c), :8], rtol=0, atol=1 / 32768)


def test_two_keys_of_one_metric_are_never_averaged_together(tmp_path):
    """A code-version bump leaves mel@old beside mel@new for one codec and task: never one mean of both."""
    store = _store(tmp_path, [("a", "t", "mel", 1.0, 10, 0, {}), ("b", "t", "mel", 3.0, 10, 0, {})])
    store.add_metric("mel@ffffffffff", "mel", "mel", {"identity": "mel", "higher_is_better": False, "version": "2"})
    store.write_cell("fp-a", "t", "mel@ffffffffff", 2.0, 10, 0, 0, extra={})
    table, md = _headline(store)
    headline = md.split("## Headline", 1)[1].split("## Per task", 1)[0]
    assert "1.500" not in headline  # the mean of a's two keys
    mel = [c for c in table.columns if c.startswith("mel") and not c.endswith((" n", " lo", " hi", " mark"))]
    assert all(table.loc["a", c] in (1.0, 2.0) or pd.isna(table.loc["a", c]) for c in mel), table[mel]


def test_a_metric_that_failed_on_every_item_keeps_its_column_and_its_failures(monkeypatch, audio_dir, tmp_path):
    """n=0 with recorded failures is not "does not apply": the column stays ("-", n=0, k failed) and `failed`
    counts its failures, as failures.csv lists them; a metric that applies to no item (n=0, all skipped) goes."""
    from bench.metrics import METRICS

    fakes.install(monkeypatch)
    monkeypatch.setitem(METRICS._entries, "alwaysfails", fakes.Entry("alwaysfails", "fakes:AlwaysFails", {}))
    monkeypatch.setitem(METRICS._entries, "musiconly", fakes.Entry("musiconly", "fakes:MusicOnly", {}))
    res = bench.run(codecs=["gain"], tasks=[f"files:{audio_dir}"], metrics=["l1", "alwaysfails", "musiconly"],
                    out=tmp_path / "ws", jobs=1)
    paths = write_report(res.store, tmp_path / "ws" / "report", html=False)
    failures = pd.read_csv(paths["failures"], keep_default_na=False)  # an item is named "nan"
    gain = failures[failures.fingerprint != "reference"]
    # the reference: every item that failed for gain (5 that do not load, 5 loaded ones where alwaysfails raised)
    assert gain["item"].nunique() == 10 and gain.metric.str.startswith("alwaysfails@").sum() == 5
    md = paths["markdown"].read_text()
    table = md.split("## Per task", 1)[1]
    head = next(line for line in table.splitlines() if line.startswith("| codec"))
    assert "alwaysfails" in head and "musiconly" not in head
    row = next(line for line in table.splitlines() if line.startswith("| gain"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    columns = [c.strip() for c in head.strip("|").split("|")]
    values = dict(zip(columns, cells))
    assert values["items"] == "5" and values["failed"] == "10", row
    assert values[next(c for c in columns if c.startswith("alwaysfails"))] == "- (n=0, 10 failed)", row


def test_a_codec_that_failed_on_every_item_keeps_its_row(monkeypatch, tmp_path):
    """A row with no value but recorded failures stays in its task's table, with the failures counted (as
    failures.csv lists them); before, the codec vanished from the table."""
    import soundfile as sf

    from conftest import tone

    fakes.install(monkeypatch)
    clips = tmp_path / "clips"
    clips.mkdir()
    for i in range(3):
        sf.write(clips / f"c{i}.wav", tone(0.5, 16000, 200 + 100 * i, seed=i), 16000)
    res = bench.run(codecs=["gain:gain=0.5", "gain:gain=0.9,fail_on=10"], tasks=[f"files:{clips}"], metrics=["l1"],
                    out=tmp_path / "ws", jobs=1)
    paths = write_report(res.store, tmp_path / "ws" / "report", html=False)
    failures = pd.read_csv(paths["failures"])
    broken = [fp for fp, label, _ in res.store.codec_rows() if "fail_on=10" in label]
    assert (failures.fingerprint == broken[0]).sum() == 3  # the reference: every item failed in the codec
    table = paths["markdown"].read_text().split("## Per task", 1)[1].split("\n## ", 1)[0]
    head = next(line for line in table.splitlines() if line.startswith("| codec"))
    columns = [c.strip() for c in head.strip("|").split("|")]
    row = next(line for line in table.splitlines() if "fail_on=10" in line)
    values = dict(zip(columns, [c.strip() for c in row.strip("|").split("|")]))
    assert values["failed"] == "3" and values["items"] == "0", row
