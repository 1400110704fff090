"""demo-speech: recorded Asterisk prompts and synthetic Harvard sentences."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import numpy as np

from demo_corpus.common import (
    AST_SOUNDS, AST_TEXT, Row, SOURCES, mono, pad_to, read_audio, resample, run, trim, write_item,
)

log = logging.getLogger("build_demo_corpus")

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
