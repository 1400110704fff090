"""Which SoundFont samples a note plays: a reader of the SF2 preset/instrument tables (no audio read).

SoundFont 2.04 layout (facts from the specification): a RIFF `sfbk` file whose `pdta` list holds the
tables `phdr` (presets, 38-byte records), `pbag`/`pgen` (preset zones and their generators), `inst`
(22-byte records), `ibag`/`igen` (instrument zones) and `shdr` (samples, 46-byte records). A zone's
generators are (operator u16, amount 2 bytes); operator 43 is keyRange and 44 velRange (lo, hi bytes),
41 instrument and 53 sampleID (u16). A first zone without instrument (preset) or sampleID (instrument)
is the global zone: its ranges are the default of the other zones.

    samples_played(path, program, pitch, velocity=100, bank=0) -> sorted sample names

A note plays every sample of every instrument zone whose key and velocity ranges hold the note, inside
every preset zone whose ranges hold it. Re-pitched notes of one sample share that sample's timbre, so the
HEAR instruments split keeps every clip playing a given sample in one split.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

KEY_RANGE, VEL_RANGE, INSTRUMENT, SAMPLE_ID = 43, 44, 41, 53


@dataclass(frozen=True)
class Zone:
    keys: tuple[int, int]
    vels: tuple[int, int]
    target: int | None  # instrument index (preset zone) or sample index (instrument zone); None: global


def _chunks(data: bytes, start: int, end: int):
    pos = start
    while pos + 8 <= end:
        tag, size = data[pos:pos + 4].decode("latin-1"), struct.unpack_from("<I", data, pos + 4)[0]
        yield tag, pos + 8, size
        pos += 8 + size + (size & 1)


def _pdta(path: Path) -> dict[str, bytes]:
    """The pdta sub-chunks of an SF2 file, read without loading the sample data."""
    with path.open("rb") as fh:
        head = fh.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"sfbk":
            raise ValueError(f"{path} is not a SoundFont 2 file")
        while True:
            header = fh.read(12)
            if len(header) < 8:
                raise ValueError(f"{path}: no pdta list")
            tag, size = header[:4], struct.unpack("<I", header[4:8])[0]
            if tag == b"LIST" and header[8:12] == b"pdta":
                body = fh.read(size - 4)
                return {t: body[s:s + n] for t, s, n in _chunks(body, 0, len(body))}
            fh.seek(size - 4 + (size & 1), 1)


def _records(blob: bytes, fmt: str) -> list[tuple]:
    size = struct.calcsize(fmt)
    return [struct.unpack_from(fmt, blob, i) for i in range(0, len(blob) - size + 1, size)]


def _zones(bags: list[tuple], gens: list[tuple], first: int, last: int, target_op: int) -> list[Zone]:
    """Zones first..last-1 (bag indices), global-zone ranges applied as defaults."""
    zones, default_keys, default_vels = [], (0, 127), (0, 127)
    for b in range(first, last):
        keys, vels, target = None, None, None
        for op, amount in gens[bags[b][0]:bags[b + 1][0]]:
            lo, hi = amount & 0xFF, amount >> 8
            if op == KEY_RANGE:
                keys = (lo, hi)
            elif op == VEL_RANGE:
                vels = (lo, hi)
            elif op == target_op:
                target = amount
        if target is None and b == first:
            default_keys, default_vels = keys or default_keys, vels or default_vels
            continue
        if target is not None:
            zones.append(Zone(keys or default_keys, vels or default_vels, target))
    return zones


@lru_cache(maxsize=4)
def _tables(path: str):
    pdta = _pdta(Path(path))
    presets = _records(pdta["phdr"], "<20sHHHIII")
    pbag, pgen = _records(pdta["pbag"], "<HH"), _records(pdta["pgen"], "<HH")
    insts = _records(pdta["inst"], "<20sH")
    ibag, igen = _records(pdta["ibag"], "<HH"), _records(pdta["igen"], "<HH")
    names = [r[0].split(b"\0", 1)[0].decode("latin-1").strip() for r in _records(pdta["shdr"], "<20sIIIIIBbHH")]
    by_program = {}
    for i in range(len(presets) - 1):  # the last record is the terminal "EOP"
        _, program, bank, bag, *_ = presets[i]
        by_program[(bank, program)] = _zones(pbag, pgen, bag, presets[i + 1][3], INSTRUMENT)
    inst_zones = [_zones(ibag, igen, insts[i][1], insts[i + 1][1], SAMPLE_ID) for i in range(len(insts) - 1)]
    return by_program, inst_zones, names


def samples_played(path: Path, program: int, pitch: int, velocity: int = 100, bank: int = 0) -> list[str]:
    """Names of the samples (`#index name`) sounding when `program` plays `pitch` at `velocity`."""
    by_program, inst_zones, names = _tables(str(path))
    if (bank, program) not in by_program:
        raise ValueError(f"{path.name} has no preset bank {bank} program {program}")

    def holds(z: Zone) -> bool:
        return z.keys[0] <= pitch <= z.keys[1] and z.vels[0] <= velocity <= z.vels[1]

    out = {f"#{z.target} {names[z.target]}" for pz in by_program[(bank, program)] if holds(pz)
           for z in inst_zones[pz.target] if holds(z)}
    if not out:
        raise ValueError(f"{path.name}: program {program} plays no sample at pitch {pitch}")
    return sorted(out)
