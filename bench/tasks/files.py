"""`files:PATH`: every audio file under a folder as a task.

Optional `transcripts.tsv` in the folder (`relative/path<TAB>transcript` or `id<TAB>transcript`, no header)
gives transcripts; an item with a transcript is speech, the others take the `domain` given (default
"sound"). A file that cannot be decoded becomes one recorded failure when the runner reads it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from bench.audio import AUDIO_EXTENSIONS
from bench.tasks.base import Item, Task, TaskMeta


class FilesTask(Task):
    def __init__(self, path: str, domain: str | None = None):
        if not str(path).strip():
            raise FileNotFoundError("files: needs a folder: files:PATH (an empty path would scan the current folder)")
        self.root = Path(path).expanduser().resolve()
        if not self.root.is_dir():
            raise FileNotFoundError(f"files:{path}: no such folder; give a folder of audio files as files:PATH")
        self.transcripts = self._read_transcripts()
        # an item with a transcript is speech; the others take `domain` (default "sound")
        self.domain = domain or "sound"
        self.meta = TaskMeta(f"files:{self.root}", "mixed" if self.transcripts else self.domain,
                             f"audio files under {self.root}")

    def _read_transcripts(self) -> dict[str, str]:
        table = self.root / "transcripts.tsv"
        out: dict[str, str] = {}
        if table.exists():
            try:
                text = table.read_text(encoding="utf-8-sig")  # a BOM (Windows editors) is not part of the first key
            except UnicodeDecodeError as err:
                raise ValueError(f"{table} is not UTF-8 (byte 0x{err.object[err.start]:02x} at offset {err.start}); "
                                 "save it as UTF-8") from None
            for line in text.splitlines():
                key, sep, text = line.partition("\t")
                if sep and text.strip():
                    out[key.strip()] = text.strip()
        return out

    def items(self) -> list[Item]:
        files = sorted(p for p in self.root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
        if not files:
            raise FileNotFoundError(f"files:{self.root}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) found")
        # The id is the path without its extension, unless two files share it (a.wav, a.flac): then theirs keep it.
        stems = [p.relative_to(self.root).with_suffix("").as_posix() for p in files]
        shared = {s for s, n in Counter(stems).items() if n > 1}
        items = []
        for p, stem in zip(files, stems):
            rel = p.relative_to(self.root).as_posix()
            item_id = rel if stem in shared else stem
            text = self.transcripts.get(rel) or self.transcripts.get(item_id) or self.transcripts.get(p.stem)
            items.append(Item(id=item_id, domain="speech" if text else self.domain, path=p, text=text))
        return items
