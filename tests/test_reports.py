"""Reports: headline table (Markdown, LaTeX, CSV), published block, plots, and the listening page in a browser."""

from __future__ import annotations

import re
import shutil
import subprocess

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
