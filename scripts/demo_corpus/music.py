"""demo-music: General MIDI renders (fluidsynth) and recorded hold music."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from demo_corpus.common import (
    AST_MOH, FLUID_SF2, OPENMSX, Row, SOURCES, TIMGM_SF2, fade_out, mono, read_audio, run, trim,
    write_item,
)

log = logging.getLogger("build_demo_corpus")

def render_midi(mid: Path, sf2: Path, tmp: Path, sr: int = 48000) -> np.ndarray:
    """Render a whole General MIDI file with fluidsynth -> stereo [2, T] at sr (trailing silence cut)."""
    wav = tmp / "render.wav"
    # float output: dense passages would saturate a 16-bit render (we normalise later); timeout guards hanging notes
    run(["fluidsynth", "-ni", "-q", "-g", "0.4", "-O", "float", "-r", str(sr), "-F", str(wav), str(sf2), str(mid)],
        timeout=300)
    x, got = read_audio(wav)
    assert got == sr, (got, sr)
    return trim(x, sr, rel_db=-60, margin=0.0)


def loudest_window(x: np.ndarray, sr: int, seconds: float, skip: float = 5.0, step: float = 2.5) -> int:
    """Start sample of the `seconds`-long window (on a `step` grid, after `skip`) with the highest RMS."""
    n = int(seconds * sr)
    starts = list(range(int(skip * sr), x.shape[1] - n, int(step * sr))) or [max(0, x.shape[1] - n)]
    energy = [float(np.mean(x[:, s:s + n] ** 2)) for s in starts]
    return starts[int(np.argmax(energy))]


def cut(x: np.ndarray, sr: int, start: int, seconds: float) -> np.ndarray:
    y = x[:, start:start + int(seconds * sr)]
    fade = int(0.02 * sr)
    y = fade_out(y, sr)
    y[:, :fade] *= np.linspace(0.0, 1.0, fade, dtype=np.float32)
    return y


def build_music(out: Path, tmp: Path, n_midi: int = 12, n_stereo: int = 1, n_hold: int = 2) -> list[Row]:
    rows = []
    pieces = sorted(OPENMSX.glob("*.mid"))
    if len(pieces) < n_midi:
        raise RuntimeError(f"{OPENMSX}: {len(pieces)} MIDI files; install openttd-openmsx")
    picks = [pieces[round(i * (len(pieces) - 1) / (n_midi - 1))] for i in range(n_midi)]
    for k, mid in enumerate(picks):
        # alternate soundfonts: two GM renderings of different character (FluidR3 is larger and cleaner)
        sf2, sf_pkg = (FLUID_SF2, "fluid-soundfont-gm") if k % 2 == 0 else (TIMGM_SF2, "timgm6mb-soundfont")
        x = render_midi(mid, sf2, tmp)
        x = cut(x, 48000, loudest_window(x, 48000, 10.0), 10.0)
        stereo = k >= n_midi - n_stereo  # the last pieces stay stereo to exercise channel handling
        if not stereo:
            x = mono(x)
        piece = mid.stem
        rows.append(write_item(
            out, "demo-music", "music", f"midi-{piece}{'-stereo' if stereo else ''}", x, 48000, "", piece,
            f"openttd-openmsx:{mid.name};{sf_pkg}:{sf2.name};fluidsynth",
            f"GPL-2.0 (composition); {SOURCES[sf_pkg][2]} (soundfont)"))
    tracks = sorted(AST_MOH.glob("*.g722"))
    for k in range(n_hold):
        track = tracks[round(k * (len(tracks) - 1) / max(1, n_hold - 1))]
        x, sr = read_audio(track)  # 16 kHz source: kept at its native rate, never upsampled
        x = cut(mono(x), sr, loudest_window(x, sr, 10.0, skip=20.0, step=5.0), 10.0)
        rows.append(write_item(out, "demo-music", "music", f"hold-{track.stem}", x, sr, "", track.stem,
                               f"asterisk-moh-opsound-g722:{track.name}", "CC-BY-SA-3.0"))
    log.info("music: %d MIDI renders (%d stereo) + %d hold-music excerpts", n_midi, n_stereo, n_hold)
    return rows
