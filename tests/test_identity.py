"""What a stored number is keyed by (issue 11): metric fingerprints (code version + backend), device and
precision in codec fingerprints, weights digests over file contents, and the one input check of every codec."""

from __future__ import annotations

import builtins
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import bench
from bench.audio import AudioError
from bench.codecs import digests
from bench.codecs.base import CodecError, CodecInputError
from bench.metrics import METRICS, load_metric


@pytest.fixture()
def home(tmp_path, monkeypatch):
    """A fresh bench home (digest cache) and an empty in-process digest memory."""
    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(digests, "_MEMORY", {})
    return tmp_path / "home"


def tone(n: int, amp: float = 0.5, sr: int = 16000) -> torch.Tensor:
    t = np.arange(n) / sr
    return torch.from_numpy((amp * np.sin(2 * np.pi * 440 * t)).astype(np.float32))[None, None]


# -- metric identity: fingerprint = identity @ digest(name, options, code_version, backend) -------------------


def test_metric_fingerprint_carries_code_version_and_backend(monkeypatch):
    from bench.metrics import signal, spectral

    mel = load_metric("mel")
    assert mel.identity() == "mel:sample_rate=16000"  # the display form is unchanged
    fp = mel.fingerprint()
    assert re.fullmatch(r"mel:sample_rate=16000@[0-9a-f]{10}", fp)
    assert load_metric("mel").fingerprint() == fp  # deterministic
    assert load_metric("mel:sample_rate=44100").fingerprint() != fp
    monkeypatch.setattr(spectral.MelDistance, "code_version", "2")
    assert load_metric("mel").fingerprint() != fp and load_metric("mel").identity() == mel.identity()

    pesq = load_metric("pesq")
    assert pesq.backend() == {"pesq": signal.package_version("pesq")} and pesq.backend()["pesq"] != "absent"
    before = pesq.fingerprint()
    monkeypatch.setattr(signal, "package_version", lambda dist: "0.0.99")
    assert pesq.fingerprint() != before  # another pesq package, another key
    info = pesq.version_info()
    assert info["code_version"] == "1" and info["backend"] == {"pesq": "0.0.99"}
    assert info["identity"] == "pesq" and info["fingerprint"].startswith("pesq@")


def test_every_metric_has_a_fingerprint_and_version_info():
    for name in METRICS.names():
        m = load_metric(name)
        fp = m.fingerprint()
        assert fp.startswith(m.identity() + "@") and len(fp) == len(m.identity()) + 11, name
        json.dumps(m.version_info())  # JSON-able, for the report's "how measured" block
    assert load_metric("visqol").backend()["visqol-python"] != "absent"
    assert load_metric("stoi").backend()["pystoi"] != "absent"
    probe = load_metric("probe")
    assert probe.backend()["grid_points"] and probe.backend()["torch"] != "absent"
    assert load_metric("probe:grid=reduced").fingerprint() != probe.fingerprint()


def test_wer_fingerprint_has_device_and_compute_type():
    from bench.metrics.wer import BUNDLED_SHA256, WER

    cpu = WER()
    assert cpu.backend()["compute_type"] == "int8" and cpu.backend()["device"] == "cpu"
    assert cpu.backend()["ctranslate2"] != "absent" and cpu.backend()["faster-whisper"] != "absent"
    assert BUNDLED_SHA256 in cpu.backend()["model_files"]
    gpu = WER(device="cuda:0")
    assert gpu.backend()["compute_type"] == "float16" and gpu.backend()["device"] == "cuda"
    assert gpu.identity() == cpu.identity() == "wer:backend=faster-whisper,model=tiny.en"  # display unchanged
    assert gpu.fingerprint() != cpu.fingerprint()
    int8, fp16 = WER(compute_type="int8"), WER(compute_type="float16")
    assert int8.fingerprint() == cpu.fingerprint()  # int8 is the CPU default
    assert fp16.fingerprint() != int8.fingerprint() and fp16.identity() == int8.identity()
    assert WER(device="cuda:1").fingerprint() == gpu.fingerprint()  # the device class, not the index
    assert WER(threads=1).fingerprint() == cpu.fingerprint()  # threads change speed only
    assert load_metric("wer:compute_type=float16").fingerprint() == fp16.fingerprint()


def test_wer_local_model_is_keyed_by_its_files(tmp_path, home):
    from bench.metrics.wer import WER

    model = tmp_path / "ct2"
    model.mkdir()
    (model / "model.bin").write_bytes(b"a" * 64)
    (model / "config.json").write_text("{}")
    a = WER(model=str(model)).fingerprint()
    (model / "model.bin").write_bytes(b"b" * 64)  # same name and size, other weights
    b = WER(model=str(model))
    assert a.split("@")[0] == b.identity() and b.fingerprint() != a


# -- codec identity: device class and precision ---------------------------------------------------------------


def test_codec_fingerprint_has_device_class_and_tf32(monkeypatch):
    from bench.codecs.dac import DAC

    codec = DAC(tiny=True)
    cpu = codec.fingerprint()
    assert codec.runtime() == {"device": "cpu", "precision": "float32"}
    assert codec.to("cpu").fingerprint() == cpu
    monkeypatch.setattr(codec, "device", "cuda")  # a faked GPU: only the recorded device class matters here
    assert codec.runtime()["device"] == "cuda" and codec.fingerprint() != cpu
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    strict = codec.fingerprint()
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)  # TF32 convolutions: other numbers
    assert codec.runtime()["tf32_cudnn"] is True and codec.fingerprint() != strict
    monkeypatch.setattr(codec, "device", "cuda:3")
    assert codec.runtime()["device"] == "cuda"
    monkeypatch.setattr(codec, "device", torch.device("mps"))
    assert codec.runtime() == {"device": "mps", "precision": "float32"} and codec.fingerprint() not in (cpu, strict)


def test_semanticodec_precision_and_device_in_fingerprint(monkeypatch):
    from bench.codecs.semanticodec.codec import SemantiCodec

    fp32, none = SemantiCodec(tiny=True, precision="fp32"), SemantiCodec(tiny=True)
    bf16 = SemantiCodec(tiny=True, precision="bf16")
    assert fp32.runtime() == none.runtime() == {"device": "cpu", "precision": "float32"}
    assert bf16.runtime() == {"device": "cpu", "precision": "bf16"}
    assert fp32.fingerprint() == none.fingerprint() != bf16.fingerprint()
    cpu = none.fingerprint()
    monkeypatch.setattr(none, "device", torch.device("cuda"))
    assert none.fingerprint() != cpu
    assert SemantiCodec(tiny=True, precision="bfloat16").runtime()["precision"] == "bf16"


def test_weight_free_codecs_compute_on_the_cpu_wherever_sent():
    opus = bench.load_codec("opus")
    fp = opus.fingerprint()
    assert opus.to("cuda").fingerprint() == fp and opus.runtime() == {"device": "cpu", "precision": "float32"}


# -- weights digests: file contents, hashed once per file version ---------------------------------------------


def _twin_folders(tmp_path: Path):
    """Two SemantiCodec weight folders, same names, sizes and mtimes; one byte of the codebook differs."""
    from bench.codecs.semanticodec import weights as SW
    from bench.codecs.semanticodec.codec import SemantiCodec

    codec = SemantiCodec(tiny=True, token_rate=50, vocab=8192)
    a = SW.save_official(codec.encoder, codec.decoder, codec.cfg, tmp_path / "a")
    b = SW.save_official(codec.encoder, codec.decoder, codec.cfg, tmp_path / "b")
    table = np.load(b.codebook)
    table[0, 0] += 1.0
    np.save(b.codebook, table)
    for fa, fb in zip((a.encoder, a.decoder, a.codebook), (b.encoder, b.decoder, b.codebook)):
        st = fa.stat()
        os.utime(fb, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert fb.stat().st_size == st.st_size and fb.stat().st_mtime_ns == st.st_mtime_ns
    return a, b


def test_semanticodec_digest_is_over_contents_and_cached(tmp_path, home, monkeypatch):
    from bench.codecs.semanticodec.codec import SemantiCodec

    a, b = _twin_folders(tmp_path)
    opened: list[str] = []
    real_open = builtins.open

    def counting_open(file, *args, **kwargs):
        if str(file).startswith(str(tmp_path)) and "home" not in str(file):
            opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    load = dict(tiny=True, token_rate=50, vocab=8192)
    da = SemantiCodec(weights=str(a.encoder.parent.parent), **load).weights_digest()
    db = SemantiCodec(weights=str(b.encoder.parent.parent), **load).weights_digest()
    assert da != db  # same names, sizes and mtimes: only the bytes tell them apart
    assert len(da) == 16 and da == digests.files_digest([a.encoder, a.decoder, a.codebook])[:16]
    hashed = len(opened)
    assert hashed >= 6  # each of the six files read once for its digest
    monkeypatch.setattr(digests, "_MEMORY", {})  # a new process: only the on-disk cache is left
    again = SemantiCodec(weights=str(a.encoder.parent.parent), **load)
    opened.clear()
    assert again.weights_digest() == da and opened == []  # from the cache: no file opened to hash
    assert (home / "digests" / "sha256.json").is_file()


def test_digest_follows_a_changed_file_and_survives_a_bad_cache(tmp_path, home, monkeypatch):
    f = tmp_path / "w.bin"
    f.write_bytes(b"x" * 1000)
    first = digests.file_sha256(f)
    reads = []
    real = digests.sha256_of
    monkeypatch.setattr(digests, "sha256_of", lambda p, *a: reads.append(p) or real(p, *a))
    assert digests.file_sha256(f) == first and reads == []
    f.write_bytes(b"y" * 1000)  # same size, new contents
    assert digests.file_sha256(f) != first and len(reads) == 1
    (home / "digests" / "sha256.json").write_text("{not json")
    monkeypatch.setattr(digests, "_MEMORY", {})
    assert digests.file_sha256(f) == real(f)  # an unreadable cache costs a re-hash, nothing else


def test_neural_codecs_use_the_shared_content_digest(tmp_path, home):
    from bench.codecs.encodec import Encodec

    tiny = Encodec(bandwidth=6, tiny=True)
    tiny.model.save_pretrained(tmp_path / "hf")
    loaded = Encodec(bandwidth=6, weights=str(tmp_path / "hf"))
    files = [tmp_path / "hf" / "config.json", tmp_path / "hf" / "model.safetensors"]
    assert loaded.weights_digest() == digests.files_digest(files)
    assert (home / "digests" / "sha256.json").is_file()  # hashed through the on-disk cache


# -- codec input checks ---------------------------------------------------------------------------------------


CHEAP = ["identity", "opus", "mp3", "codec2"]


@pytest.fixture(scope="module")
def neural():
    from bench.codecs.dac import DAC
    from bench.codecs.semanticodec.codec import SemantiCodec

    return {"dac": DAC(tiny=True), "semanticodec": SemantiCodec(tiny=True, ddim_steps=2)}


def _codec(name, neural):
    return neural[name] if name in neural else bench.load_codec(name)


@pytest.mark.parametrize("name", CHEAP + ["dac", "semanticodec"])
def test_integer_audio_is_refused_with_the_scaling(name, neural):
    codec = _codec(name, neural)
    pcm = (tone(16000) * 32767).to(torch.int16)
    with pytest.raises(CodecError, match=r"int16.*wav\.float\(\) / 32768"):
        codec.encode(pcm)
    with pytest.raises(CodecError, match=r"wav\.float\(\) / 32768"):
        codec.encode(pcm.numpy())


@pytest.mark.parametrize("name", CHEAP + ["dac", "semanticodec"])
def test_channels_last_audio_is_refused_with_the_transpose(name, neural):
    codec = _codec(name, neural)
    with pytest.raises(CodecError, match=r"looks like \[B, T, C\].*transpose\(1, 2\)"):
        codec.encode(torch.zeros(1, 16000, 2) + 0.1)
    with pytest.raises(CodecError, match=r"\[B, C, T\]"):
        codec.encode(torch.zeros(16000))


@pytest.mark.parametrize("name", ["identity", "opus", "codec2", "dac", "semanticodec"])
def test_nan_and_absurd_peaks_are_refused(name, neural):
    codec = _codec(name, neural)
    x = tone(16000)
    x[0, 0, 100] = float("nan")
    with pytest.raises(CodecInputError, match="item 0 contains NaN"):
        codec.encode(x)
    with pytest.raises(CodecInputError, match=r"item 0 peaks at 1e\+06.*\[-1, 1\]"):
        codec.encode(tone(16000) * 2e6)


_MP3_SCRIPT = """
import sys, torch, bench
from bench.codecs.base import CodecError
x = 0.3 * torch.randn(1, 1, 16000, generator=torch.Generator().manual_seed(0))
x[0, 0, 100] = float(sys.argv[1])
try:
    bench.load_codec("mp3").encode(x)
except CodecError as err:
    print("refused:", err)
"""


@pytest.mark.parametrize("sample", ["1e6", "nan"])
def test_mp3_refuses_input_that_made_lame_abort(sample):
    """LAME aborted the whole process (SIGABRT) on these; run in a subprocess so a regression cannot kill pytest."""
    out = subprocess.run([sys.executable, "-c", _MP3_SCRIPT, sample], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"the process died ({out.returncode}): {out.stderr[-500:]}"
    assert "refused:" in out.stdout and ("NaN" in out.stdout or "peaks at 1e+06" in out.stdout)


def test_classic_codecs_clip_loud_input_and_say_so(caplog):
    x = tone(16000, amp=2.0)
    for name in ("mp3", "opus", "codec2"):
        codec = bench.load_codec(name)
        with caplog.at_level(logging.WARNING, logger="bench.codecs.base"):
            caplog.clear()
            loud = codec.encode(x)
        assert any("clipped" in r.message and "peak 2" in r.message for r in caplog.records), name
        assert loud.payload == codec.encode(x.clamp(-1, 1)).payload, name  # exactly the clipped signal
    ident = bench.load_codec("identity")
    assert torch.equal(ident.decode(ident.encode(x * 10)), x * 10)  # identity passes loud audio through


def test_check_input_mixing_policy_and_lengths(neural):
    from bench.codecs.encodec import Encodec

    mono = Encodec(bandwidth=6, tiny=True)
    with pytest.raises(CodecError, match="1-channel"):
        mono.encode(torch.zeros(1, 2, 2400))  # Encodec 24 kHz takes mono only
    opus = bench.load_codec("opus")
    assert opus.check_input(torch.zeros(2, 2, 480)).shape == (2, 2, 480)  # opus mixes stereo itself
    x = torch.zeros(2, 1, 1000, dtype=torch.float64)
    x[1, 0, 900:] = float("nan")  # in the padding past item 1's own end: not its audio
    out = opus.check_input(x, lengths=[1000, 800])
    assert out.dtype == torch.float32
    with pytest.raises(CodecInputError, match="item 1 contains NaN"):
        opus.check_input(x)
    assert isinstance(CodecInputError("x"), AudioError)  # the runner's per-item failure class too
