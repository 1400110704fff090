"""`files:PATH`: every audio file under a folder as a task.

Optional `transcripts.tsv` in the folder (`relative/path<TAB>transcript` or `id<TAB>transcript`, no header)
gives transcripts; an item with a transcript is speech, the others take the `domain` given (default
"sound"). A file that cannot be decoded becomes one recorded failure when the runner reads it.
"""

from __future__ import annotations

from pathlib import Path

from bench.audio import AUDIO_EXTENSIONS
from bench.tasks.base import Item, Task, TaskMeta


class FilesTask(Task):
    def __init__(self, path: str, domain: str | None = None):
        self.root = Path(path).expanduser()
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
            for line in table.read_text(encoding="utf-8").splitlines():
                key, sep, text = line.partition("\t")
                if sep and text.strip():
                    out[key.strip()] = text.strip()
        return out

    def items(self) -> list[Item]:
        files = sorted(p for p in self.root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
        if not files:
            raise FileNotFoundError(f"files:{self.root}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) found")
        items = []
        for p in files:
            rel = p.relative_to(self.root).as_posix()
            item_id = rel.rsplit(".", 1)[0]
            text = self.transcripts.get(rel) or self.transcripts.get(item_id) or self.transcripts.get(p.stem)
            items.append(Item(id=item_id, domain="speech" if text else self.domain, path=p, text=text))
        return items
