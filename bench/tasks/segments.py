"""What the dataset tasks (libritts, librispeech, musdb, audioset, esc50) share.

- **Spec parsing.** `--task NAME:ROOT,key=value,flag`: the options are peeled off the right-hand end (only the
  task's own option names count as options), and what is left is ROOT, so a path may hold commas. `NAME` alone
  or `NAME:key=value` takes ROOT from the environment variable `BENCH_DATA`: ROOT = $BENCH_DATA/<folder>, where
  each task names its conventional folder (the one its official archive unpacks to).
- **Task names** carry the options that differ from the defaults but never the path (`libritts`,
  `libritts:split=test-other`, `musdb:stem=vocals`): results are about the dataset, not about where it is
  mounted; the items' content signatures and `manifest_digest()` tell copies apart.
- **Fixed windows.** `segment=S` cuts each file into windows of S seconds: `ID#0000`, `ID#0001`, ... A last
  partial window shorter than half a window is dropped; a file shorter than one window stays one whole item.
  `SegmentItem` reads only its window (soundfile `start`/`stop`; for an MP4 stream it decodes the stream and
  slices it, see `read_window`) and its `signature()` carries the window bounds.
- **Manifest digest.** `manifest_digest(items)` = sha256 over the sorted (id, file size, window, stream, text,
  labels, domain, info) rows (info: split, stem, speaker, offsets...; never a path or an mtime): content-based
  (a `touch` does not change it; a transcript edit or a replaced file of another size does), so two users can
  check that they scored the same items.

Sample positions are frames at the file's own rate; audio is float32 `[C, T]`.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from bench.tasks.base import Item, Task

log = logging.getLogger(__name__)

DATA_ENV = "BENCH_DATA"
MANIFEST_VERSION = 1
# A decoded MP4 stream is kept (one per process) for the next window of the same track when it is no larger
# than this: a 4-minute stereo 44.1 kHz track is 85 MB; decoding it again for each of its 24 windows would cost
# 24 x 0.4 s.
DECODE_CACHE_BYTES = 512 * 2**20

_OPTION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_-]*)\s*=(.*)$")


class DataRootError(FileNotFoundError):
    """A dataset root is missing, or is not in the layout the task reads; the message names what was expected."""


class DataLayoutError(ValueError):
    """A dataset file is malformed (a CSV row, a transcript line); the message names the file and line."""


# -- specs, options, roots -------------------------------------------------------------------------------------


def parse_arg(prefix: str, arg: str | os.PathLike | None, defaults: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """`"ROOT,split=test-other,esc10"` -> ("ROOT", {"split": "test-other", "esc10": True}).

    Only names in `defaults` are options; a trailing `name=value` with another name is an error with a
    did-you-mean (a typo would otherwise silently become part of the path).
    """
    from bench.registry import parse_value

    text = "" if arg is None else os.fspath(arg)
    parts = text.split(",")
    options: dict[str, Any] = {}
    while parts:
        last = parts[-1].strip()
        match = _OPTION.match(last)
        if match:
            key, value = match.group(1), match.group(2).strip()
            if key not in defaults:
                raise ValueError(_unknown_option(prefix, key, defaults))
            options[key] = parse_value(value)
        elif last in defaults and isinstance(defaults[last], bool):
            options[last] = True
        elif not last and len(parts) > 1:  # a stray trailing comma
            pass
        else:
            break
        parts.pop()
    return ",".join(parts).strip(), options


def _unknown_option(prefix: str, key: str, defaults: dict[str, Any]) -> str:
    close = difflib.get_close_matches(key, list(defaults), n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"{prefix}: unknown option {key!r}.{hint} Options: {describe_options(defaults)}"


def describe_options(defaults: dict[str, Any]) -> str:
    return ", ".join(f"{k} (flag)" if isinstance(v, bool) else f"{k}=... (default {v})" for k, v in defaults.items())


def resolve_root(prefix: str, root: str, folders: tuple[str, ...], expected: str) -> Path:
    """The dataset folder: ROOT as given, else the first of $BENCH_DATA/<folder> that exists.

    `expected` says what ROOT must hold (it goes into the error message). Raises DataRootError.
    """
    if root:
        path = Path(root).expanduser()
        if not path.is_dir():
            raise DataRootError(f"{prefix}:{root}: no such folder; ROOT must be the folder holding {expected}")
        return path.resolve()
    base = os.environ.get(DATA_ENV, "").strip()
    if not base:
        raise DataRootError(f"{prefix}: no data root; give --task {prefix}:ROOT (the folder holding {expected}) or "
                            f"set {DATA_ENV} so that ROOT = ${DATA_ENV}/{folders[0]}")
    base_path = Path(base).expanduser()
    for folder in folders:
        if (base_path / folder).is_dir():
            return (base_path / folder).resolve()
    names = " or ".join(f"{f}/" for f in folders)
    raise DataRootError(f"{prefix}: {DATA_ENV}={base} has no {names} folder (ROOT = ${DATA_ENV}/{folders[0]} must "
                        f"hold {expected}); found: {listing(base_path)}")


def listing(path: Path, limit: int = 8) -> str:
    """What a folder holds, briefly: `a/, b/, c.txt` (folders marked), or why not."""
    try:
        entries = sorted(path.iterdir())
    except FileNotFoundError:
        return "no such folder"
    except OSError as err:
        return f"cannot list it ({err.strerror or err})"
    if not entries:
        return "nothing (empty folder)"
    names = [e.name + ("/" if e.is_dir() else "") for e in entries[:limit]]
    more = f", ... ({len(entries)} entries)" if len(entries) > limit else ""
    return ", ".join(names) + more


def canonical_name(prefix: str, options: dict[str, Any], defaults: dict[str, Any]) -> str:
    """`libritts`, `libritts:split=test-other`: the prefix plus the options that differ from the defaults."""
    from bench.registry import format_spec

    return format_spec(prefix, {k: v for k, v in sorted(options.items()) if v != defaults.get(k)})


def segment_seconds(prefix: str, value: Any) -> float | None:
    """`segment=10` -> 10.0; `segment=none` / `0` / `false` -> None (whole files)."""
    if value is None or value is False or (isinstance(value, str) and value.lower() in ("none", "off", "")):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{prefix}: segment={value!r}; give the window length in seconds (segment=10) or "
                         "segment=none for whole files") from None
    if seconds != seconds or seconds < 0:
        raise ValueError(f"{prefix}: segment={value!r}; the window length must be a positive number of seconds")
    return seconds or None


# -- windows ---------------------------------------------------------------------------------------------------


def windows(n_frames: int, rate: int, seconds: float | None) -> list[tuple[int, int]]:
    """Fixed windows `[start, stop)` in frames: full windows of `seconds`, then the rest if it is at least half a
    window. A file shorter than one window is one window (the whole file). `seconds=None`: the whole file."""
    if n_frames <= 0:
        return []
    if not seconds:
        return [(0, n_frames)]
    width = max(1, int(round(seconds * rate)))
    full = n_frames // width
    out = [(k * width, (k + 1) * width) for k in range(full)]
    rest = n_frames - full * width
    if rest and (2 * rest >= width or not out):
        out.append((full * width, n_frames))
    return out


def window_id(base: str, k: int) -> str:
    return f"{base}#{k:04d}"


@dataclass
class SegmentItem(Item):
    """An item that is a window `[start, stop)` (frames at the file's rate) of `path`, or of its audio stream
    number `stream` (an MP4 with several streams, e.g. MUSDB18 `.stem.mp4`). `stop=None`: to the end.
    `audio` reads only that window: float32 `[C, stop - start]`."""

    start: int = 0
    stop: int | None = None
    stream: int | None = None

    @property
    def audio(self) -> np.ndarray:
        if self._audio is None:
            from bench import audio as au

            if self.path is None:
                raise au.AudioError(f"item {self.id}: no audio and no path")
            try:
                data, sr = read_window(self.path, self.start, self.stop, self.stream)
            except au.AudioError as err:
                raise au.AudioError(f"item {self.id}: {err}") from None
            self._audio, self.sample_rate = data, sr
        return self._audio

    @property
    def window(self) -> tuple[int, int | None, int | None]:
        """(start, stop, stream): what part of the file this item is."""
        return self.start, self.stop, self.stream

    def signature(self) -> str:
        base = super().signature()
        stream = "" if self.stream is None else f":s{self.stream}"
        return f"{base}:{self.start}-{'' if self.stop is None else self.stop}{stream}"


def read_window(path: str | Path, start: int = 0, stop: int | None = None,
                stream: int | None = None) -> tuple[np.ndarray, int]:
    """Frames `[start, stop)` of a file -> (float32 `[C, n]`, rate). `stream=None`: soundfile reads just those
    frames (WAV, FLAC: sample-exact seeks). `stream=K`: audio stream K of a container (PyAV), decoded from its
    start and sliced, so a window holds exactly the samples of a whole-file decode (AAC decoders carry state
    from frame to frame, e.g. perceptual noise substitution, so a seek would not give the same samples)."""
    from bench import audio as au

    path = Path(path)
    if not path.is_file():
        raise au.AudioError(f"{path}: no such file")
    if stream is None:
        import soundfile as sf

        try:
            data, sr = sf.read(str(path), start=start, stop=stop, dtype="float32", always_2d=True)
        except Exception as err:  # noqa: BLE001 - libsndfile's reasons vary; the message names the file
            raise au.AudioError(f"{path}: cannot read frames {start}-{stop} ({err})") from None
        if data.shape[0] == 0:
            raise au.AudioError(f"{path}: no audio in frames {start}-{stop} (the file has fewer frames)")
        return np.ascontiguousarray(data.T), int(sr)
    full, sr = decode_stream(path, stream)
    part = full[:, start:stop]
    if part.shape[1] == 0:
        raise au.AudioError(f"{path}: stream {stream} has no audio in frames {start}-{stop} ({full.shape[1]} decoded)")
    return np.ascontiguousarray(part), sr


_DECODED: dict[tuple, tuple[np.ndarray, int]] = {}


def decode_stream(path: Path, stream: int) -> tuple[np.ndarray, int]:
    """Every sample of audio stream `stream` of a container, float32 `[C, T]`, in decode order (the same samples
    as `bench.audio.load` gives for stream 0). The last decoded stream is kept for the next window."""
    from bench import audio as au

    st = os.stat(path)
    key = (str(path), stream, st.st_size, st.st_mtime_ns)
    if key in _DECODED:
        return _DECODED[key]
    import av

    try:
        with av.open(str(path)) as container:
            streams = container.streams.audio
            if stream >= len(streams):
                raise au.AudioError(f"{path}: has {len(streams)} audio stream(s); stream {stream} does not exist")
            s = streams[stream]
            chunks = []
            for frame in container.decode(s):
                arr = frame.to_ndarray()
                if arr.ndim == 1 or arr.shape[0] != s.channels:  # packed layout: [1, T*C] interleaved
                    arr = arr.reshape(-1, s.channels).T
                chunks.append(arr)
            rate = int(s.rate)
    except au.AudioError:
        raise
    except Exception as err:  # noqa: BLE001 - PyAV/FFmpeg errors: one line naming the file
        raise au.AudioError(f"{path}: cannot decode audio stream {stream} ({err})") from None
    if not chunks:
        raise au.AudioError(f"{path}: audio stream {stream} holds no frames")
    data = au.as_float32(np.concatenate(chunks, axis=1), str(path))
    _DECODED.clear()
    if data.nbytes <= DECODE_CACHE_BYTES:
        _DECODED[key] = (data, rate)
    return data, rate


def stream_frames(path: Path, stream: int) -> tuple[int, int, int]:
    """(frames, rate, channels) of audio stream `stream` from the container's header (no decoding)."""
    import av

    with av.open(str(path)) as container:
        streams = container.streams.audio
        if stream >= len(streams):
            raise DataLayoutError(f"{path}: has {len(streams)} audio stream(s); stream {stream} is needed")
        s = streams[stream]
        rate = int(s.rate)
        if s.duration is not None and s.time_base is not None:
            frames = int(round(float(s.duration * s.time_base) * rate))
        elif container.duration is not None:
            frames = int(round(container.duration / 1_000_000 * rate))
        else:  # no duration in the header: count by decoding
            frames = sum(f.samples for f in container.decode(s))
        return frames, rate, int(s.channels)


def file_items(base_id: str, path: Path, domain: str, seconds: float | None, *, text: str | None = None,
               label: str | None = None, info: dict[str, Any] | None = None, stream: int | None = None) -> list[Item]:
    """The items of one file: one plain Item (whole file, soundfile) or SegmentItems, one per window.

    Segmenting reads the header for the length (soundfile, or the container's for a stream). A window's
    transcript is unknown, so segmented items carry no `text` (the file's transcript stays in
    info["file_text"]); labels stay.
    """
    info = dict(info or {})
    if seconds is None and stream is None:
        return [Item(id=base_id, domain=domain, path=path, text=text, label=label, info=info)]
    if stream is None:
        import soundfile as sf

        try:
            header = sf.info(str(path))
        except Exception as err:  # noqa: BLE001
            raise DataLayoutError(f"{path}: cannot read its header ({err}); is the file complete?") from None
        n_frames, rate = int(header.frames), int(header.samplerate)
    else:
        try:
            n_frames, rate, _ = stream_frames(path, stream)
        except DataLayoutError:
            raise
        except Exception as err:  # noqa: BLE001
            raise DataLayoutError(f"{path}: cannot read its header ({err}); is the file complete?") from None
    if seconds is None:
        return [SegmentItem(id=base_id, domain=domain, path=path, text=text, label=label, sample_rate=rate,
                            info={**info, "start_s": 0.0, "stop_s": n_frames / rate}, start=0, stop=None,
                            stream=stream)]
    out: list[Item] = []
    if text is not None:
        info["file_text"] = text
    for k, (a, b) in enumerate(windows(n_frames, rate, seconds)):
        out.append(SegmentItem(id=window_id(base_id, k), domain=domain, path=path, label=label, sample_rate=rate,
                               info={**info, "file": base_id, "window": k, "start_s": a / rate, "stop_s": b / rate},
                               start=a, stop=b, stream=stream))
    return out


# -- manifest digest -------------------------------------------------------------------------------------------


def _manifest_row(item: Item) -> list:
    size: int | str | None
    if item.path is not None:
        try:
            size = os.stat(item.path).st_size
        except OSError:
            size = "unreadable"
    else:  # in-memory audio: its samples are its content
        size = item.signature()
    window = list(item.window) if isinstance(item, SegmentItem) else None
    labels = item.info.get("labels")
    if labels is None and item.label is not None:
        labels = [str(item.label)]
    info = json.loads(json.dumps(item.info, sort_keys=True, default=str))  # stem, split, speaker, offsets, ...
    return [str(item.id), size, window, item.text, [str(x) for x in labels] if labels else None, item.domain, info]


def manifest_digest(items: Iterable[Item]) -> str:
    """sha256 (hex, 64 characters) over the sorted (id, file size, window, text, labels, domain, info) rows
    of `items`: the same on every machine that holds the same files, whatever their paths and mtimes."""
    rows = sorted((_manifest_row(i) for i in items), key=lambda r: json.dumps(r, sort_keys=True))
    payload = json.dumps({"manifest": MANIFEST_VERSION, "items": rows}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


# -- the base of the dataset tasks -----------------------------------------------------------------------------


class DatasetTask(Task):
    """A dataset in its usual layout. Subclasses set `prefix`, `folders` (conventional names under
    $BENCH_DATA), `defaults` (options and their defaults), `expected` (the layout, for error messages) and
    implement `_list()`; items are listed once, sorted by id."""

    prefix = ""
    folders: tuple[str, ...] = ()
    defaults: dict[str, Any] = {}
    expected = ""

    def __init__(self, spec: str | os.PathLike | None = None, **options: Any):
        root_text, parsed = parse_arg(self.prefix, spec, self.defaults)
        for key in options:
            if key not in self.defaults:
                raise ValueError(_unknown_option(self.prefix, key, self.defaults))
        self.options = {**self.defaults, **parsed, **options}
        self.root = resolve_root(self.prefix, root_text, self.folders, self.expected_layout())
        self._items: list[Item] | None = None

    @property
    def spec(self) -> str:
        """The canonical name: the prefix and the non-default options (no path)."""
        return canonical_name(self.prefix, self.options, self.defaults)

    def expected_layout(self) -> str:
        """What ROOT must hold, for error messages (may depend on the options, e.g. the split)."""
        return self.expected

    def where(self) -> str:
        """`libritts:/data/LibriTTS` (for messages)."""
        return f"{self.prefix}:{self.root}"

    def _list(self) -> list[Item]:
        raise NotImplementedError

    def items(self) -> list[Item]:
        if self._items is None:
            items = sorted(self._list(), key=lambda i: i.id)
            if not items:
                raise DataRootError(f"{self.where()}: no items found (expected {self.expected_layout()})")
            self._items = items
        return self._items

    def manifest_digest(self, items: Iterable[Item] | None = None) -> str:
        """sha256 of the task's item manifest (or of `items`, e.g. a --limit subset); see `manifest_digest`."""
        return manifest_digest(self.items() if items is None else items)
