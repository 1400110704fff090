"""Task registry (strings and metadata only; nothing heavy imported here)."""

from __future__ import annotations

from bench.registry import Registry

TASKS = Registry("task")

TASKS.register("demo-speech", "bench.tasks.demo:DemoSpeech", domain="speech",
               description="shipped: recorded Asterisk prompts + synthetic sentences, with transcripts")
TASKS.register("demo-music", "bench.tasks.demo:DemoMusic", domain="music",
               description="shipped: 10 s General MIDI renders at 48 kHz and recorded hold music at 16 kHz")
TASKS.register("demo-sound", "bench.tasks.demo:DemoSound", domain="sound",
               description="shipped: labelled recorded one-shot sounds (drums, effects, instruments)")
TASKS.register_prefix("files", "bench.tasks.files:FilesTask", domain="any",
                      description="files:PATH - every audio file under a folder (optional transcripts.tsv)")
TASKS.register_prefix("hear", "bench.tasks.hear:HearTask", domain="any",
                      description="hear:PATH - a HEAR benchmark task directory (task_metadata.json, splits, labels)")
TASKS.register("demo-digits", "bench.tasks.hear:DemoDigits", domain="speech",
               description="shipped HEAR task: spoken digits (synthetic voices train/valid, recorded speaker test)")
TASKS.register("demo-instruments", "bench.tasks.hear:DemoInstruments", domain="music",
               description="shipped HEAR task: instrument family of General MIDI renders")
TASKS.register("demo-drums", "bench.tasks.hear:DemoDrums", domain="sound",
               description="shipped HEAR task: drum type of recorded one-shots")


def load_task(name: str):
    """Build a task by name: "demo-speech", or "files:PATH"."""
    entry = TASKS.entry(name)
    cls = entry.load()
    if name in TASKS.names():
        return cls()
    _, _, arg = name.partition(":")
    return cls(arg)
