"""The demo corpus shipped inside the package (bench/data/demo, built by scripts/build_demo_corpus.py).

`manifest.tsv` columns: id, task, path, domain, sample_rate, channels, duration, text, label, source,
licence, sha256 (path relative to the demo folder).
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

from bench.tasks.base import Item, Task, TaskMeta

DEMO_DIR = Path(__file__).resolve().parent.parent / "data" / "demo"
MANIFEST = DEMO_DIR / "manifest.tsv"


@lru_cache(maxsize=1)
def read_manifest() -> tuple[dict[str, str], ...]:
    if not MANIFEST.exists():
        raise FileNotFoundError(
            f"the demo corpus manifest is missing ({MANIFEST}); reinstall the package, or rebuild the corpus with "
            "scripts/build_demo_corpus.py"
        )
    with open(MANIFEST, newline="", encoding="utf-8") as f:
        return tuple(csv.DictReader(f, delimiter="\t"))


class DemoTask(Task):
    task_name = ""
    domain = ""
    description = ""

    def __init__(self) -> None:
        self.meta = TaskMeta(self.task_name, self.domain, self.description,
                             licence="see bench/data/demo/LICENCES.md", source="bench/data/demo")

    def items(self) -> list[Item]:
        rows = [r for r in read_manifest() if r["task"] == self.task_name]
        return [
            Item(
                id=r["id"],
                domain=r["domain"],
                path=DEMO_DIR / r["path"],
                text=r.get("text") or None,
                label=r.get("label") or None,
                sample_rate=int(r["sample_rate"]),
                info={"source": r.get("source", ""), "licence": r.get("licence", ""), "duration": float(r["duration"])},
            )
            for r in rows
        ]


class DemoSpeech(DemoTask):
    task_name, domain = "demo-speech", "speech"
    description = "recorded Asterisk prompts and synthetic Harvard sentences, with transcripts"


class DemoMusic(DemoTask):
    task_name, domain = "demo-music", "music"
    description = "ten-second General MIDI renders and recorded hold music"


class DemoSound(DemoTask):
    task_name, domain = "demo-sound", "sound"
    description = "labelled recorded one-shot sounds"
