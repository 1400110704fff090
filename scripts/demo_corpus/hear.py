"""HEAR-format probe tasks: spoken digits, instrument family, drum type."""

from __future__ import annotations

import csv
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

from demo_corpus.common import (
    AST_SOUNDS, FLUID_SF2, SOURCES, TIMGM_SF2, fade_out, mono, normalise, pad_to, read_audio,
    resample, run, trim,
)
from demo_corpus.sf2 import (
    samples_played,
)
from demo_corpus.sound import (
    DEMO_SOUNDS, H_ROCK, SOUND_ROOTS, one_shot,
)
from demo_corpus.speech import (
    synth,
)

log = logging.getLogger("build_demo_corpus")

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


def group_by_sample(clips: list[dict]) -> list[list[int]]:
    """Clip indices grouped so that no SoundFont sample, and no (soundfont, program), spans two groups.

    clips: dicts with "soundfont", "program" and "samples" (the sample names the note plays). Two clips
    are joined when they play one sample (a re-pitched sample keeps its timbre) or are one program of
    one soundfont; groups are the connected components, each sorted, in order of their first clip.
    """
    parent = list(range(len(clips)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[tuple, int] = {}
    for i, c in enumerate(clips):
        for key in [(c["soundfont"], "program", c["program"])] + [(c["soundfont"], s) for s in c["samples"]]:
            j = owner.setdefault(key, i)
            parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(clips)):
        groups.setdefault(root(i), []).append(i)
    return sorted(groups.values(), key=lambda g: g[0])


def assign_splits(groups: list[list[int]], rng: np.random.Generator, held_out: float = 1 / 6) -> dict[int, str]:
    """Whole groups to splits: about `held_out` of the clips to test, as many to valid, the rest to train.

    Groups are visited in a seeded random order; a group goes to test (then valid) while it fits the
    split's remaining size; when none fits, the smallest remaining group is taken. Train keeps at least one.
    """
    total = sum(len(g) for g in groups)
    remaining = [groups[i] for i in rng.permutation(len(groups))]
    out: dict[int, str] = {}
    for split in ("test", "valid"):
        need = max(1, round(held_out * total))
        chosen: list[list[int]] = []
        for g in list(remaining):
            if len(remaining) - len(chosen) > 1 and len(g) <= need - sum(len(c) for c in chosen):
                chosen.append(g)
        if not chosen and len(remaining) > 1:
            chosen = [min(remaining, key=len)]
        for g in chosen:
            remaining.remove(g)
            out.update({i: split for i in g})
    out.update({i: "train" for g in remaining for i in g})
    return out


def hear_instruments(root: Path, tmp: Path, seed: int = 0) -> dict:
    """8 families x 3 GM programs x 3 pitches x 2 soundfonts; per family, split by SoundFont sample."""
    w = HearWriter(root, "instruments", 0.5, "music")
    rng = np.random.default_rng(seed)
    notes = [(fam, prog, pitch) for fam, (progs, pitches) in FAMILIES.items() for prog in progs for pitch in pitches]
    slot, sr = 2.5, 48000  # long slots: a release tail must not reach the next note
    clips: list[dict] = []
    for sf2, pkg in ((FLUID_SF2, "fluid-soundfont-gm"), (TIMGM_SF2, "timgm6mb-soundfont")):
        mid = tmp / "notes.mid"
        write_midi_notes(mid, [(p, q) for _, p, q in notes], slot, 0.45)
        wav = tmp / "notes.wav"
        # no reverb/chorus: each slot must hold exactly one dry note
        run(["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.5", "-O", "float", "-r", str(sr), "-F",
             str(wav), str(sf2), str(mid)], timeout=300)
        x, _ = read_audio(wav)
        x = resample(mono(x), sr, HEAR_SR)
        for k, (fam, prog, pitch) in enumerate(notes):
            start = int(k * slot * HEAR_SR)
            clips.append({"family": fam, "soundfont": sf2.name, "program": prog, "pitch": pitch, "package": pkg,
                          "samples": samples_played(sf2, prog, pitch, velocity=100),
                          "audio": x[:, start:start + int(0.5 * HEAR_SR)]})
    provenance = {}
    for fam in FAMILIES:
        members = [i for i, c in enumerate(clips) if c["family"] == fam]
        groups = [[members[j] for j in g] for g in group_by_sample([clips[i] for i in members])]
        for i, split in sorted(assign_splits(groups, rng).items()):
            c = clips[i]
            fname = f"{fam}-gm{c['program']:03d}-p{c['pitch']}-{c['package'].split('-')[0]}.wav"
            w.add(split, fname, c["audio"], fam, f"{c['package']}:{c['soundfont']} program {c['program']}")
            provenance[fname] = {"split": split, "soundfont": c["soundfont"], "program": c["program"],
                                 "pitch": c["pitch"], "samples": c["samples"]}
    (w.dir / "provenance.json").write_text(json.dumps(dict(sorted(provenance.items())), indent=1) + "\n")
    return w.finish("instrument family of one General MIDI note (8 families x 3 programs x 3 pitches x 2 "
                    "soundfonts, rendered with fluidsynth); splits are disjoint by SoundFont sample and by "
                    "program (provenance.json names the samples each clip plays)")


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
