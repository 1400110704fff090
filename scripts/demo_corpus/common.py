"""Shared pieces of the demo-corpus recipe: source locations, licences table, audio helpers, rows."""

from __future__ import annotations

import hashlib
import io
import logging
import subprocess
import sys
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
