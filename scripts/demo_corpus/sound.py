"""demo-sound: recorded one-shots, short hits repeated so a clip lasts long enough for ViSQOL."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from demo_corpus.common import (
    HYDROGEN, LMMS, Row, SOURCES, fade_out, mono, read_audio, trim, write_item,
)

log = logging.getLogger("build_demo_corpus")

H_ROCK = "GMRockKit"
H_808 = "TR808EmulationKit"

# demo-sound: label -> files, as `package:path under its sample root`. None is used by the HEAR `drums` task.
_808, _ROCK, _LM = f"hydrogen-data:{H_808}/808_", f"hydrogen-data:{H_ROCK}/", "lmms-common:"
DEMO_SOUND_FILES = {
    "kick": [_808 + "Kick_Long.flac", _808 + "Kick_Short.flac", _LM + "drums/bassdrum01.ogg", _LM + "drums/kick01.ogg",
             _LM + "drums/kick_hard01.ogg"],
    "snare": [_808 + "Snare_1.flac", _808 + "Snare_2.flac", _LM + "drums/snare01.ogg",
              _LM + "drums/snare_acoustic01.ogg", _LM + "drums/snare_electro01.ogg"],
    "hihat": [_808 + "Hat_Closed.flac", _808 + "Hat_Open.flac", _808 + "Hat_Pedal.flac",
              _LM + "drums/hihat_closed01.ogg", _LM + "drums/hihat_opened01.ogg"],
    "tom": [_808 + "Tom_Hi.flac", _808 + "Tom_Mid.flac", _808 + "Tom_Low.flac", _LM + "drums/tom01.ogg",
            _LM + "drums/tom_hi01.ogg"],
    "cymbal": [_808 + "Cymbal.flac", _LM + "drums/crash01.ogg", _LM + "drums/crash02.ogg", _LM + "drums/ride01.ogg",
               _LM + "drums/ride02.ogg"],
    "clap": [_808 + "Clap.flac", _ROCK + "HandClap.wav"] + [_LM + f"drums/clap0{i}.ogg" for i in range(1, 5)],
    "cowbell": [_808 + "Cowbell.flac", _ROCK + "Cowbell-Soft.wav", _ROCK + "Cowbell-Med.wav",
                _ROCK + "Cowbell-Hardest.wav"],
    "shaker": [_808 + "Shaker.flac"] + [_LM + f"drums/shaker0{i}.ogg" for i in range(1, 4)],
    "rim": [_LM + "drums/rim01.ogg", _LM + "drums/nasty_rim01.ogg", _LM + "drums/sidestick01.ogg",
            _LM + "drums/snare_rim01.ogg"],
    "effect": [_LM + f"drums/zap0{i}.ogg" for i in range(1, 4)]
    + [_LM + "effects/explode01.ogg", _LM + "effects/start01.ogg", _LM + "effects/warp01.ogg"],
}
DEMO_SOUNDS = [(label, *src.split(":", 1)) for label, srcs in DEMO_SOUND_FILES.items() for src in srcs]
SOUND_ROOTS = {"hydrogen-data": HYDROGEN, "lmms-common": LMMS}


def one_shot(path: Path, max_seconds: float) -> tuple[np.ndarray, int]:
    """A recorded one-shot -> mono [1, T] at its native rate, silence trimmed, at most max_seconds (faded)."""
    x, sr = read_audio(path)
    x = trim(mono(x), sr, rel_db=-60, margin=0.005)
    if x.shape[1] > max_seconds * sr:
        x = fade_out(x[:, :int(max_seconds * sr)], sr, 0.1)
    return x, sr


SOUND_MIN_S = 1.25  # ViSQOL's audio mode needs about 1.05 s of signal; one-shots are often shorter
PATTERN_GAINS = (1.0, 0.7, 0.85, 0.55)


def as_pattern(x: np.ndarray, sr: int) -> np.ndarray:
    """Make a clip last at least SOUND_MIN_S (and at most 2 s). A hit under 1 s is played again, as a player
    would, at falling gains, one hit length (at least 0.4 s) apart, so the label still names all that is
    heard; a longer sound gets trailing silence, as after any hit."""
    n_min = int(SOUND_MIN_S * sr)
    if x.shape[1] >= n_min:
        return x
    if x.shape[1] >= sr:
        return np.pad(x, ((0, 0), (0, n_min - x.shape[1])))
    period = max(int(0.4 * sr), x.shape[1])
    repeats = 1 + -(-(n_min - x.shape[1]) // period)
    y = np.zeros((x.shape[0], (repeats - 1) * period + x.shape[1]), dtype=np.float32)
    for k in range(repeats):
        y[:, k * period: k * period + x.shape[1]] += PATTERN_GAINS[k % len(PATTERN_GAINS)] * x
    return y


def build_sound(out: Path, tmp: Path) -> list[Row]:
    rows = []
    for label, pkg, rel in DEMO_SOUNDS:
        x, sr = one_shot(SOUND_ROOTS[pkg] / rel, 2.0)
        x = as_pattern(x, sr)
        stem = Path(rel).stem.lower().replace("_", "-")
        kit = "lmms-" if pkg == "lmms-common" else ("gmrock-" if rel.startswith(H_ROCK) else "")
        rows.append(write_item(out, "demo-sound", "sound", f"{label}-{kit}{stem}", x, sr, "", label,
                               f"{pkg}:{rel}", SOURCES[pkg][2]))
    log.info("sound: %d one-shots, labels %s", len(rows), sorted({r.label for r in rows}))
    return rows
