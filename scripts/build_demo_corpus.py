#!/usr/bin/env python3
"""Build the shipped demo corpus in bench/data/demo from Debian packages (the reproducible recipe).

What it writes (see bench/data/demo/README.md):
    speech/<id>.flac, music/<id>.flac, sound/<id>.flac   16-bit FLAC, the `demo-*` tasks
    manifest.tsv                                          one row per FLAC file (header below)
    hear/{digits,instruments,drums}/                      HEAR-layout probe tasks (16 kHz mono WAV)
    LICENCES.md                                           attribution of every source

Needs (Debian 12 "bookworm"; everything else is the project's own dependencies):

    apt-get update && apt-get install -y --no-install-recommends \\
        asterisk-core-sounds-en-g722 asterisk-core-sounds-en asterisk-moh-opsound-g722 \\
        flite festival festvox-us-slt-hts espeak-ng fluidsynth fluid-soundfont-gm timgm6mb-soundfont \\
        openttd-openmsx hydrogen-data lmms-common ffmpeg
    pip install numpy soundfile soxr mido

Usage:

    python scripts/build_demo_corpus.py                      # everything
    python scripts/build_demo_corpus.py --parts speech,hear  # only some parts; other manifest rows are kept

The build is deterministic: inputs are sorted, every random choice uses a fixed seed, and the FLAC/WAV
writers add no timestamps, so a rebuild with the same package versions reproduces the same sha256 values.
Takes about 1.5 minutes on 2 CPU cores (synthesis and fluidsynth renders dominate).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import logging
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

log = logging.getLogger("build_demo_corpus")

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "bench" / "data" / "demo"

MANIFEST_HEADER = ["id", "task", "path", "domain", "sample_rate", "channels", "duration", "text", "label",
                   "source", "licence", "sha256"]
TASK_ORDER = {"demo-speech": 0, "demo-music": 1, "demo-sound": 2}

# --- source locations (Debian paths) --------------------------------------------------------------
AST_SOUNDS = Path("/usr/share/asterisk/sounds/en")
AST_TEXT = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
AST_MOH = Path("/usr/share/asterisk/moh")
OPENMSX = Path("/usr/share/games/openttd/baseset/openmsx")
FLUID_SF2 = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
TIMGM_SF2 = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")
HYDROGEN = Path("/usr/share/hydrogen/data/drumkits")
LMMS = Path("/usr/share/lmms/samples")

PEAK = 10 ** (-1.0 / 20)  # normalise every clip to -1 dBFS peak: loud enough, no clipping after FLAC rounding

# Debian package -> (upstream, copyright holder, licence). LICENCES.md is generated from this table.
SOURCES = {
    "asterisk-core-sounds-en-g722": (
        "Asterisk core sound prompts (English), G.722 16 kHz",
        "Recorded by Allison Smith (http://www.theivrvoice.com); financial contributions by Digium, Inc.",
        "CC-BY-SA-3.0"),
    "asterisk-core-sounds-en": (
        "Asterisk core sound prompts (English): transcripts core-sounds-en.txt",
        "Allison Smith / Digium, Inc.", "CC-BY-SA-3.0"),
    "asterisk-moh-opsound-g722": (
        "Asterisk music-on-hold 'opsound' tracks, G.722 16 kHz",
        "Paul Shuler (Macroform) 2009; Manolo Camp 2009; Reno Project 2008", "CC-BY-SA-3.0"),
    "flite": (
        "CMU Flite 2.2 speech synthesiser with its voices slt, rms, awb, kal16",
        "Carnegie Mellon University (Alan W Black, Kevin Lenzo and contributors)",
        "BSD-like CMU/Edinburgh licence (free use and redistribution; see /usr/share/doc/flite/copyright)"),
    "festvox-us-slt-hts": (
        "Festival HTS voice cmu_us_slt_arctic_hts (run with the `festival` package)",
        "Carnegie Mellon University; Nagoya Institute of Technology", "EST-2000/EST-2003 (BSD-like)"),
    "espeak-ng": (
        "eSpeak NG speech synthesiser (espeak-ng-data voices)",
        "Jonathan Duddington, Reece H. Dunn and contributors", "GPL-3+"),
    "openttd-openmsx": (
        "OpenMSX: General MIDI music set for OpenTTD",
        "OpenMSX authors 2010 (see the package's readme.txt)", "GPL-2.0"),
    "fluid-soundfont-gm": (
        "FluidR3 General MIDI soundfont (FluidR3_GM.sf2)", "Frank Wen 2000-2002, 2008; Toby Smithe 2008", "MIT"),
    "timgm6mb-soundfont": (
        "TimGM6mb General MIDI soundfont (TimGM6mb.sf2)", "Tim Brechbill 2004; David Bolton 2010", "GPL-2.0"),
    "harvard-sentences": (
        "Harvard sentences (IEEE Recommended Practice for Speech Quality Measurements, 1969), lists 1-3: text only",
        "IEEE 1969", "public domain"),
    "fluidsynth": ("FluidSynth software synthesiser (renderer only; no content)", "FluidSynth authors", "LGPL-2.1+"),
    "hydrogen-data": (
        "Hydrogen drum machine data: drum kits GMRockKit and TR808EmulationKit",
        "Alessandro Cominu, the Hydrogen development team and contributors", "GPL-2+"),
    "lmms-common": (
        "LMMS shared data: samples/ (drums, effects, misc)",
        "Tobias Doerffel, the LMMS developers and contributors", "GPL-2+"),
}

# Harvard sentences (IEEE Recommended Practice for Speech Quality Measurements, 1969), lists 1-3: public domain.
HARVARD = [
    "The birch canoe slid on the smooth planks.", "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.", "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.", "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.", "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.", "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.", "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.", "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.", "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.", "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.", "The girl at the booth sold fifty bonds.",
    "The small pup gnawed a hole in the sock.", "The fish twisted and turned on the bent hook.",
    "Press the pants and sew a button on the vest.", "The swan dive was far short of perfect.",
    "The beauty of the view stunned the young boy.", "Two blue fish swam in the tank.",
    "Her purse was full of useless trash.", "The colt reared and threw the tall rider.",
    "It snowed, rained, and hailed the same morning.", "Read verse out loud for pleasure.",
]
HARVARD_VOICES = ["flite-slt", "flite-rms", "flite-awb", "festival-hts-slt"]


@dataclass
class Row:
    id: str
    task: str
    path: str
    domain: str
    sample_rate: int
    channels: int
    duration: str
    text: str
    label: str
    source: str
    licence: str
    sha256: str

    def values(self) -> list[str]:
        return [str(getattr(self, k)) for k in MANIFEST_HEADER]


# --- small audio helpers (arrays are float32 [C, T]) ----------------------------------------------

def run(cmd: list[str], timeout: float = 300, stdin: bytes | None = None) -> bytes:
    """Run a tool, return stdout; fail loudly with its stderr (a missing package is the usual cause)."""
    try:
        res = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError:
        sys.exit(f"{cmd[0]} not found: install the Debian packages listed in this script's docstring")
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({res.returncode}): {res.stderr.decode()[-500:]}")
    return res.stdout


def read_wav_bytes(data: bytes) -> tuple[np.ndarray, int]:
    x, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return np.ascontiguousarray(x.T), int(sr)


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    """Any file soundfile reads (wav, flac, ogg) -> ([C, T], sr); G.722 goes through ffmpeg at 16 kHz."""
    if path.suffix == ".g722":
        return read_wav_bytes(run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "g722", "-i", str(path),
                                   "-ar", "16000", "-f", "wav", "-acodec", "pcm_s16le", "-"]))
    x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return np.ascontiguousarray(x.T), int(sr)


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    if sr_in == sr_out:
        return x
    return np.ascontiguousarray(soxr.resample(x.T, sr_in, sr_out, quality="VHQ").T, dtype=np.float32)


def mono(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=0, keepdims=True)


def trim(x: np.ndarray, sr: int, rel_db: float = -45.0, margin: float = 0.12) -> np.ndarray:
    """Cut leading/trailing parts quieter than rel_db below the peak, keeping `margin` s of context."""
    env = np.abs(x).max(axis=0)
    above = np.flatnonzero(env > env.max() * 10 ** (rel_db / 20))
    if above.size == 0:
        return x
    pad = int(margin * sr)
    return x[:, max(0, above[0] - pad): min(x.shape[1], above[-1] + pad + 1)]


def fade_out(x: np.ndarray, sr: int, seconds: float = 0.02) -> np.ndarray:
    """Short linear fade so a cut never ends on a click."""
    n = min(x.shape[1], int(seconds * sr))
    x = x.copy()
    x[:, x.shape[1] - n:] *= np.linspace(1.0, 0.0, n, dtype=np.float32)
    return x


def pad_to(x: np.ndarray, length: int) -> np.ndarray:
    """Centre x in `length` samples of silence (no-op if already long enough)."""
    if x.shape[1] >= length:
        return x
    left = (length - x.shape[1]) // 2
    return np.pad(x, ((0, 0), (left, length - x.shape[1] - left)))


def normalise(x: np.ndarray, peak: float = PEAK) -> np.ndarray:
    m = float(np.abs(x).max())
    if m < 1e-4:
        raise ValueError("silent clip")
    return (x * (peak / m)).astype(np.float32)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_item(out: Path, task: str, domain: str, item_id: str, x: np.ndarray, sr: int, text: str, label: str,
               source: str, licence: str) -> Row:
    """Write one FLAC (16-bit) under out/<domain>/<id>.flac and return its manifest row."""
    rel = f"{domain}/{item_id}.flac"
    path = out / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    x = normalise(x)
    sf.write(str(path), x.T, sr, format="FLAC", subtype="PCM_16")
    info = sf.info(str(path))
    for field in (text, label, source, licence):
        assert "\t" not in field and "\n" not in field and '"' not in field, field
    return Row(item_id, task, rel, domain, sr, x.shape[0], f"{info.frames / sr:.3f}", text, label, source,
               licence, sha256(path))


# --- speech ---------------------------------------------------------------------------------------

def asterisk_transcripts() -> dict[str, str]:
    out = {}
    with gzip.open(AST_TEXT, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith(";") or ":" not in line:
                continue
            name, _, text = line.partition(":")
            out[name.strip()] = " ".join(text.split())
    return out


def synth(voice: str, text: str, tmp: Path) -> tuple[np.ndarray, int]:
    """One utterance from a synthetic voice: 'flite-<v>', 'festival-hts-slt' or 'espeak-<v>[@speed]'."""
    wav = tmp / "synth.wav"
    if voice.startswith("flite-"):
        run(["flite", "-voice", voice.split("-", 1)[1], "-t", text, "-o", str(wav)], timeout=60)
    elif voice == "festival-hts-slt":
        run(["text2wave", "-eval", "(voice_cmu_us_slt_arctic_hts)", "-o", str(wav)], timeout=120,
            stdin=text.encode())
    elif voice.startswith("espeak-"):
        name, _, speed = voice.split("-", 1)[1].partition("@")
        run(["espeak-ng", "-v", name, "-s", speed or "160", "-w", str(wav), text], timeout=60)
    else:
        raise ValueError(voice)
    return read_audio(wav)


def build_speech(out: Path, tmp: Path, n_asterisk: int = 24, n_harvard: int = 24) -> list[Row]:
    rows = []
    texts = asterisk_transcripts()
    cands = []
    for name in sorted(texts):
        text = texts[name]
        # full sentences only: no '[tone]' items, no digits (spoken numbers make WER depend on the normaliser)
        if "/" in name or "[" in text or '"' in text or any(c.isdigit() for c in text):
            continue
        if len(text.split()) < 5 or text[-1] not in ".?!" or "..." in text:  # '...' marks a fragment
            continue
        path = AST_SOUNDS / f"{name}.g722"
        if not path.exists():
            continue
        x, sr = read_audio(path)
        x = trim(x, sr)
        if 2.0 <= x.shape[1] / sr <= 5.9:
            cands.append((name, text, x, sr))
    if len(cands) < n_asterisk:
        raise RuntimeError(f"only {len(cands)} Asterisk sentences of 2-6 s found; expected >= {n_asterisk}")
    # evenly spread over the sorted list, so every prompt family (agent, conf, vm, ...) is represented
    picks = sorted({round(i * (len(cands) - 1) / (n_asterisk - 1)) for i in range(n_asterisk)})
    for i in picks:
        name, text, x, sr = cands[i]
        rows.append(write_item(out, "demo-speech", "speech", f"asterisk-{name}", x, sr, text, "allison-smith",
                               f"asterisk-core-sounds-en-g722:en/{name}.g722;asterisk-core-sounds-en:"
                               "core-sounds-en.txt", "CC-BY-SA-3.0"))
    log.info("speech: %d recorded Asterisk sentences (of %d candidates)", len(picks), len(cands))

    for k, text in enumerate(HARVARD[:n_harvard]):
        voice = HARVARD_VOICES[k % len(HARVARD_VOICES)]
        x, sr = synth(voice, text, tmp)
        x = resample(mono(x), sr, 16000)
        x = pad_to(trim(x, 16000), int(2.05 * 16000))  # fast voices can say a short sentence in < 2 s
        if x.shape[1] > 6 * 16000:
            raise RuntimeError(f"{voice} took more than 6 s for {text!r}")
        src = "festvox-us-slt-hts:cmu_us_slt_arctic_hts" if voice.startswith("festival") else \
            f"flite:{voice.split('-', 1)[1]}"
        lic = SOURCES[src.split(":")[0]][2].split(" (")[0]
        rows.append(write_item(out, "demo-speech", "speech", f"harvard-{k // 10 + 1:02d}-{k % 10 + 1:02d}-{voice}",
                               x, 16000, text, voice, src + ";harvard-sentences", lic))
    log.info("speech: %d synthetic Harvard sentences (%s)", n_harvard, ", ".join(HARVARD_VOICES))
    return rows


# --- music ----------------------------------------------------------------------------------------

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


# --- sound (one-shots) ----------------------------------------------------------------------------

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


# --- HEAR-format probe tasks ----------------------------------------------------------------------

HEAR_SR = 16000
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
# synthetic voices for the digits task: 'espeak-<voice>@<words per minute>', 'flite-<voice>', festival HTS
DIGIT_VOICES = {
    "train": ["flite-slt", "flite-rms", "flite-awb", "flite-kal16", "festival-hts-slt", "espeak-en-us@140",
              "espeak-en-gb+f3@175", "espeak-en-gb-scotland+m3@160", "espeak-en-029+f2@150",
              "espeak-en-us+klatt@170"],
    "valid": ["espeak-en-gb-x-rp+f4@155", "espeak-en-us+m7@185", "espeak-en-us-nyc+f5@145"],
}
# instrument family -> General MIDI programs (0-based) and the MIDI pitches they are played at
FAMILIES = {
    "piano": ([0, 1, 4], [48, 60, 72]),
    "organ": ([16, 17, 19], [48, 60, 67]),
    "guitar": ([24, 25, 26], [45, 57, 64]),
    "bass": ([32, 33, 34], [33, 40, 47]),
    "strings": ([40, 42, 48], [52, 62, 69]),
    "brass": ([56, 57, 61], [50, 58, 65]),
    "reed": ([64, 68, 71], [58, 65, 72]),
    "pipe": ([73, 74, 75], [67, 74, 81]),
}
# drum class -> (package, glob patterns); none of these files is used by demo-sound
DRUM_CLASSES = {
    "kick": [("hydrogen-data", f"{H_ROCK}/Kick-*.wav"), ("lmms-common", "drums/bassdrum0[234].ogg"),
             ("lmms-common", "drums/bassdrum_acoustic*.ogg"), ("lmms-common", "drums/kick0[23].ogg"),
             ("lmms-common", "drums/kick_[dhls]*.ogg")],
    "snare": [("hydrogen-data", f"{H_ROCK}/Snare-*.wav"), ("hydrogen-data", f"{H_ROCK}/SnareRimshot-*.wav"),
              ("lmms-common", "drums/snare0[2-7].ogg"), ("lmms-common", "drums/snare_[hms]*.ogg"),
              ("lmms-common", "drums/nasty_snare01.ogg")],
    "hihat": [("hydrogen-data", f"{H_ROCK}/Hat*.wav"), ("lmms-common", "drums/hihat_closed0[2-5].ogg"),
              ("lmms-common", "drums/hihat_foot_pedal01.ogg"), ("lmms-common", "drums/hihat_opened0[23].ogg")],
    "tom": [("hydrogen-data", f"{H_ROCK}/Tom*.wav"), ("lmms-common", "drums/tom0[2-5].ogg"),
            ("lmms-common", "drums/tom_[lm]*.ogg")],
    "cymbal": [("hydrogen-data", f"{H_ROCK}/Crash-*.wav"), ("hydrogen-data", f"{H_ROCK}/Ride-*.wav"),
               ("hydrogen-data", f"{H_ROCK}/24Ride-*.wav"), ("hydrogen-data", f"{H_ROCK}/Splash-*.wav"),
               ("hydrogen-data", f"{H_ROCK}/Bell-*.wav")],
}


def fit(x: np.ndarray, sr: int, seconds: float) -> np.ndarray:
    """[1, T] -> exactly `seconds`: centre-pad short clips, cut long ones (with a fade)."""
    n = int(round(seconds * sr))
    if x.shape[1] > n:
        return fade_out(x[:, :n], sr, 0.03)
    return pad_to(x, n)


class HearWriter:
    """Collects clips of one HEAR task and writes its directory (task_metadata.json, labels, split json)."""

    def __init__(self, root: Path, name: str, seconds: float, domain: str):
        self.dir, self.name, self.seconds, self.domain = root / name, name, seconds, domain
        shutil.rmtree(self.dir, ignore_errors=True)
        self.splits: dict[str, dict[str, list[str]]] = {"train": {}, "valid": {}, "test": {}}
        self.sources: dict[str, set[str]] = {}

    def add(self, split: str, fname: str, x: np.ndarray, label: str, source: str) -> None:
        path = self.dir / str(HEAR_SR) / split / fname
        path.parent.mkdir(parents=True, exist_ok=True)
        x = normalise(fit(x, HEAR_SR, self.seconds))
        sf.write(str(path), x.T, HEAR_SR, subtype="PCM_16")
        assert fname not in self.splits[split]
        self.splits[split][fname] = [label]
        self.sources.setdefault(source.split(":")[0], set()).add(source.split(":", 1)[-1])

    def finish(self, description: str) -> dict:
        labels = sorted({lab for split in self.splits.values() for labs in split.values() for lab in labs})
        meta = {
            "task_name": self.name, "version": "bench-demo-1", "embedding_type": "scene",
            "prediction_type": "multiclass", "split_mode": "trainvaltest", "sample_duration": self.seconds,
            "evaluation": ["top1_acc"], "mode": "full", "splits": list(self.splits),
            "description": description, "domain": self.domain,  # `domain` and `licence` are bench extras
            "licence": "; ".join(sorted({f"{SOURCES[p][2].split(' (')[0]} ({p})" for p in self.sources}))
            + "; see bench/data/demo/LICENCES.md",
        }
        (self.dir / "task_metadata.json").write_text(json.dumps(meta, indent=2) + "\n")
        with (self.dir / "labelvocabulary.csv").open("w", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["idx", "label"])
            w.writerows(enumerate(labels))
        for split, items in self.splits.items():
            (self.dir / f"{split}.json").write_text(json.dumps(dict(sorted(items.items())), indent=1) + "\n")
        counts = {k: len(v) for k, v in self.splits.items()}
        log.info("hear/%s: %s clips of %.2f s, %d labels", self.name, counts, self.seconds, len(labels))
        return {"name": self.name, "counts": counts, "labels": labels, "sources": self.sources,
                "description": description}


def hear_digits(root: Path, tmp: Path) -> dict:
    w = HearWriter(root, "digits", 0.8, "speech")
    for split, voices in DIGIT_VOICES.items():
        for voice in voices:
            for digit, word in enumerate(DIGITS):
                x, sr = synth(voice, word, tmp)
                x = trim(resample(mono(x), sr, HEAR_SR), HEAR_SR, margin=0.03)
                tag = voice.replace("@", "-").replace("+", "-")
                pkg = {"festival": "festvox-us-slt-hts", "espeak": "espeak-ng"}.get(voice.split("-")[0], "flite")
                w.add(split, f"{tag}-{word}.wav", x, word, f"{pkg}:{voice}")
    for digit, word in enumerate(DIGITS):  # a real human speaker, unseen in training: the test split
        x, sr = read_audio(AST_SOUNDS / "digits" / f"{digit}.g722")
        w.add("test", f"asterisk-allison-{word}.wav", trim(x, sr, margin=0.03), word,
              f"asterisk-core-sounds-en-g722:en/digits/{digit}.g722")
    return w.finish("spoken digit zero..nine; train/valid: synthetic voices (flite, festival HTS, espeak-ng), "
                    "test: the recorded Asterisk speaker (Allison Smith)")


def write_midi_notes(path: Path, notes: list[tuple[int, int]], slot: float, hold: float) -> None:
    """One track on channel 0: for each (program, pitch) a program change then a note of `hold` s every `slot` s."""
    import mido

    tpb, tempo = 480, 500000  # 120 bpm: 960 ticks per second
    tps = tpb * 1e6 / tempo
    mid = mido.MidiFile(ticks_per_beat=tpb)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=tempo, time=0))
    gap = int(round((slot - hold) * tps))
    for k, (program, pitch) in enumerate(notes):
        tr.append(mido.Message("program_change", program=program, channel=0, time=0 if k == 0 else gap))
        tr.append(mido.Message("note_on", note=pitch, velocity=100, channel=0, time=0))
        tr.append(mido.Message("note_off", note=pitch, velocity=0, channel=0, time=int(round(hold * tps))))
    tr.append(mido.MetaMessage("end_of_track", time=gap))
    mid.save(str(path))


def hear_instruments(root: Path, tmp: Path, seed: int = 0) -> dict:
    w = HearWriter(root, "instruments", 0.5, "music")
    rng = np.random.default_rng(seed)
    notes = [(fam, prog, pitch) for fam, (progs, pitches) in FAMILIES.items() for prog in progs for pitch in pitches]
    slot, sr = 2.5, 48000  # long slots: a release tail must not reach the next note
    for sf2, pkg in ((FLUID_SF2, "fluid-soundfont-gm"), (TIMGM_SF2, "timgm6mb-soundfont")):
        mid = tmp / "notes.mid"
        write_midi_notes(mid, [(p, q) for _, p, q in notes], slot, 0.45)
        wav = tmp / "notes.wav"
        # no reverb/chorus: each slot must hold exactly one dry note
        run(["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.5", "-O", "float", "-r", str(sr), "-F",
             str(wav), str(sf2), str(mid)], timeout=300)
        x, _ = read_audio(wav)
        x = resample(mono(x), sr, HEAR_SR)
        # per family, the 9 (program, pitch) notes of this soundfont: 6 train, 1-2 valid, 1-2 test
        by_fam: dict[str, list[int]] = {}
        for k, (fam, _, _) in enumerate(notes):
            by_fam.setdefault(fam, []).append(k)
        for fam, ks in by_fam.items():
            order = rng.permutation(len(ks))
            for rank, j in enumerate(order):
                k = ks[j]
                split = "train" if rank < 6 else ("valid" if rank < 7 + (pkg == "timgm6mb-soundfont") else "test")
                _, prog, pitch = notes[k]
                start = int(k * slot * HEAR_SR)
                clip = x[:, start:start + int(0.5 * HEAR_SR)]
                w.add(split, f"{fam}-gm{prog:03d}-p{pitch}-{pkg.split('-')[0]}.wav", clip, fam,
                      f"{pkg}:{sf2.name} program {prog}")
    return w.finish("instrument family of one General MIDI note (8 families x 3 programs x 3 pitches x 2 "
                    "soundfonts, rendered with fluidsynth)")


def hear_drums(root: Path, tmp: Path, seed: int = 0) -> dict:
    w = HearWriter(root, "drums", 0.5, "sound")
    rng = np.random.default_rng(seed)
    used = {rel for _, _, rel in DEMO_SOUNDS}
    for label, patterns in DRUM_CLASSES.items():
        files = []
        for pkg, pattern in patterns:
            for path in sorted(SOUND_ROOTS[pkg].glob(pattern)):
                rel = str(path.relative_to(SOUND_ROOTS[pkg]))
                if rel not in used and rel != "drums/kick04.ogg":  # kick04.ogg does not decode
                    files.append((pkg, rel))
        order = rng.permutation(len(files))
        n_test = n_valid = max(2, round(0.2 * len(files)))
        for rank, j in enumerate(order):
            pkg, rel = files[j]
            split = "test" if rank < n_test else ("valid" if rank < n_test + n_valid else "train")
            x, sr = one_shot(SOUND_ROOTS[pkg] / rel, 0.5)
            x = resample(x, sr, HEAR_SR)
            stem = f"{label}-{pkg.split('-')[0]}-{Path(rel).stem.lower().replace('_', '-')}"
            w.add(split, f"{stem}.wav", x, label, f"{pkg}:{rel}")
    return w.finish("drum type of one recorded one-shot (Hydrogen GMRockKit + LMMS samples); "
                    "splits are disjoint by recording")


def build_hear(root: Path, tmp: Path) -> list[dict]:
    root.mkdir(parents=True, exist_ok=True)
    tasks = [hear_digits(root, tmp), hear_instruments(root, tmp), hear_drums(root, tmp)]
    (root / "sources.json").write_text(json.dumps(
        [{**t, "sources": {k: sorted(v) for k, v in sorted(t["sources"].items())}} for t in tasks], indent=1) + "\n")
    return tasks


# --- manifest and licences ------------------------------------------------------------------------

def read_manifest(path: Path) -> list[Row]:
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader)
        assert header == MANIFEST_HEADER, header
        return [Row(*r) for r in reader]


def write_manifest(path: Path, rows: list[Row]) -> None:
    rows = sorted(rows, key=lambda r: (TASK_ORDER[r.task], r.id))
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter="\t", quoting=csv.QUOTE_NONE, lineterminator="\n", escapechar=None)
        w.writerow(MANIFEST_HEADER)
        for r in rows:
            w.writerow(r.values())


def package_version(pkg: str) -> str:
    if pkg == "harvard-sentences":
        return "-"
    try:
        return run(["dpkg-query", "-W", "-f=${Version}", pkg], timeout=30).decode() or "?"
    except (RuntimeError, SystemExit):
        return "?"


def write_licences(path: Path, rows: list[Row], hear_root: Path) -> None:
    """LICENCES.md: one table of source packages, then which corpus files came from each."""
    hear_file = hear_root / "sources.json"
    hear = json.loads(hear_file.read_text()) if hear_file.exists() else []
    used: dict[str, list[str]] = {}
    for r in sorted(rows, key=lambda r: (TASK_ORDER[r.task], r.id)):
        for src in r.source.split(";"):
            used.setdefault(src.split(":")[0], []).append(r.path)
    for t in hear:
        for pkg in t["sources"]:
            used.setdefault(pkg, [])
    lines = [
        "# Licences and attribution of the demo corpus",
        "",
        "Generated by `scripts/build_demo_corpus.py` (do not edit by hand). Every file here was made from the",
        "Debian 12 packages below (recordings decoded, trimmed, peak-normalised to -1 dBFS and stored as 16-bit",
        "FLAC or WAV; synthetic speech rendered by the synthesisers named; MIDI music rendered with FluidSynth).",
        "Each row of `manifest.tsv` names its source as `package:path-or-voice` (several joined by `;`) and its",
        "licence. The originals, and the full licence texts, are in the named packages",
        "(`/usr/share/doc/<package>/copyright`); the build script is the exact recipe.",
        "",
        "- **CC-BY-SA-3.0** (<https://creativecommons.org/licenses/by-sa/3.0/>): the Asterisk English prompts were",
        "  recorded by **Allison Smith** (<http://www.theivrvoice.com>) with financial contributions by",
        "  **Digium, Inc.**; the hold-music excerpts are by Paul Shuler (Macroform), Manolo Camp and Reno Project.",
        "  Our excerpts are adaptations (trimmed, resampled or re-encoded) and are shared under the same licence.",
        "- **GPL** items (OpenMSX compositions, Hydrogen and LMMS samples, TimGM6mb soundfont renders, espeak-ng",
        "  output) are redistributed under their GPL terms; the preferred form for modification of a recording is",
        "  the original sample in the named Debian package (source packages on <https://sources.debian.org>).",
        "- The Harvard sentences are public-domain text; flite and festival voices are under BSD-like CMU terms.",
        "",
        "## Source packages",
        "",
        "| package | version | content | copyright | licence | files |",
        "|---|---|---|---|---|---|",
    ]
    for pkg in sorted(used):
        what, who, licence = SOURCES[pkg]
        n_hear = sum(len(t["sources"].get(pkg, [])) > 0 for t in hear)
        count = f"{len(used[pkg])} demo" + (f", {n_hear} HEAR task(s)" if n_hear else "")
        lines.append(f"| {pkg} | {package_version(pkg)} | {what} | {who} | {licence} | {count} |")
    for task in TASK_ORDER:
        task_rows = [r for r in rows if r.task == task]
        if not task_rows:
            continue
        lines += ["", f"## {task} ({len(task_rows)} files)", ""]
        for r in sorted(task_rows, key=lambda r: r.id):
            lines.append(f"- `{r.path}`: {r.source.replace(';', ' + ')} ({r.licence})")
    if hear:
        lines += ["", "## HEAR-format probe tasks (`hear/`)", "",
                  "16 kHz mono 16-bit WAV clips; each split's files and labels are in `hear/<task>/<split>.json`.", ""]
        for t in hear:
            lines += [f"### hear/{t['name']}: {t['description']}", "",
                      f"Clips: {', '.join(f'{k} {v}' for k, v in t['counts'].items())}; labels: "
                      f"{', '.join(t['labels'])}.", ""]
            for pkg, items in t["sources"].items():
                lines.append(f"- {pkg} ({SOURCES[pkg][2]}): {', '.join(f'`{i}`' for i in items)}")
            lines.append("")
    path.write_text("\n".join(lines).rstrip() + "\n")


PARTS = ("speech", "music", "sound", "hear")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="corpus folder (default bench/data/demo)")
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma list of {', '.join(PARTS)}")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    for p in parts:
        if p not in PARTS:
            ap.error(f"unknown part {p!r}; choose from {', '.join(PARTS)}")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "manifest.tsv"
    rows = read_manifest(manifest)
    builders = {"speech": ("demo-speech", build_speech), "music": ("demo-music", build_music),
                "sound": ("demo-sound", build_sound)}
    with tempfile.TemporaryDirectory(prefix="demo-corpus-") as tmpdir:
        tmp = Path(tmpdir)
        for part in parts:
            if part == "hear":
                continue
            task, build = builders[part]
            shutil.rmtree(out / part, ignore_errors=True)
            rows = [r for r in rows if r.task != task] + build(out, tmp)
            write_manifest(manifest, rows)
        if "hear" in parts:
            build_hear(out / "hear", tmp)
    write_licences(out / "LICENCES.md", rows, out / "hear")
    log.info("wrote %s (%d rows)", manifest, len(rows))


if __name__ == "__main__":
    main()
