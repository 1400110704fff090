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

# Datasets in their usual layouts: NAME:ROOT[,option=value...], or NAME alone with ROOT under $BENCH_DATA.
DATASET_PREFIXES = ("libritts", "librispeech", "musdb", "audioset", "esc50")
TASKS.register_prefix("libritts", "bench.tasks.libritts:LibriTTSTask", domain="speech",
                      description="libritts:ROOT[,split=test-clean,segment=S] - LibriTTS (ROOT/test-clean/SPK/CH/*.wav "
                                  "+ .normalized.txt); ROOT defaults to $BENCH_DATA/LibriTTS")
TASKS.register_prefix("librispeech", "bench.tasks.libritts:LibriSpeechTask", domain="speech",
                      description="librispeech:ROOT[,split=test-clean,segment=S] - LibriSpeech (*.flac + "
                                  "SPK-CH.trans.txt); ROOT defaults to $BENCH_DATA/LibriSpeech")
TASKS.register_prefix("musdb", "bench.tasks.musdb:MusdbTask", domain="music",
                      description="musdb:ROOT[,split=test,stem=mixture,segment=10] - MUSDB18-HQ wav folders or MUSDB18 "
                                  ".stem.mp4; ROOT defaults to $BENCH_DATA/musdb18hq (or musdb18)")
TASKS.register_prefix("audioset", "bench.tasks.audioset:AudioSetTask", domain="sound",
                      description="audioset:ROOT[,csv=eval_segments.csv,clips=DIR] - AudioSet clips + segment and "
                                  "label CSVs; ROOT defaults to $BENCH_DATA/audioset")
TASKS.register_prefix("esc50", "bench.tasks.esc50:ESC50Task", domain="sound",
                      description="esc50:ROOT[,fold=K,esc10] - ESC-50 (meta/esc50.csv, audio/) as a 5-fold probe task; "
                                  "ROOT defaults to $BENCH_DATA/ESC-50")


def load_task(name: str):
    """Build a task by name: "demo-speech", "files:PATH", "libritts:ROOT,split=test-other", or "libritts" alone
    (ROOT under $BENCH_DATA)."""
    if name in DATASET_PREFIXES:
        name += ":"
    entry = TASKS.entry(name)
    cls = entry.load()
    if name in TASKS.names():
        return cls()
    _, _, arg = name.partition(":")
    return cls(arg)
