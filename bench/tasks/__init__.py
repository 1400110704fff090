"""Task registry (strings and metadata only; nothing heavy imported here)."""

from __future__ import annotations

from bench.registry import Registry

TASKS = Registry("task")

TASKS.register("demo-speech", "bench.tasks.demo:DemoSpeech", domain="speech",
               description="shipped: recorded Asterisk prompts + synthetic sentences, with transcripts")
TASKS.register("demo-music", "bench.tasks.demo:DemoMusic", domain="music",
               description="shipped: 10 s General MIDI renders and recorded hold music at 48 kHz")
TASKS.register("demo-sound", "bench.tasks.demo:DemoSound", domain="sound",
               description="shipped: labelled recorded one-shot sounds (drums, effects, instruments)")
TASKS.register_prefix("files", "bench.tasks.files:FilesTask", domain="any",
                      description="files:PATH - every audio file under a folder (optional transcripts.tsv)")


def load_task(name: str):
    """Build a task by name: "demo-speech", or "files:PATH"."""
    entry = TASKS.entry(name)
    cls = entry.load()
    if name in TASKS.names():
        return cls()
    _, _, arg = name.partition(":")
    return cls(arg)
