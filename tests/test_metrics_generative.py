"""Metrics for generative codecs: DNSMOS (vs speechmos), WARP-Q (vs the warpq package's own numbers), speaker
similarity (vs a direct transformers computation, planted embeddings, weights handling)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import speechmos.dnsmos  # noqa: F401  (required dependencies: a missing one is an error, never a skip)
import webrtcvad  # noqa: F401

import bench
from bench import audio as au
from bench.metrics import METRICS, load_metric
from bench.metrics import dnsmos as dn
from bench.metrics import speaker as sp
from bench.metrics import warpq as wq
from bench.metrics.base import MetricError
from bench.tasks.base import Item

DEMO = Path(bench.__file__).parent / "data" / "demo" / "speech"
REFERENCE = Path(__file__).parent / "data" / "reference" / "warpq"
SPEECH = Item(id="s", domain="speech")


def demo(name: str) -> np.ndarray:
    x, sr = au.load(DEMO / f"{name}.flac")
    assert sr == 16000 and x.shape[0] == 1
    return x[0]


def white_noise_at(x: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(x.size)
    noise *= np.sqrt(np.mean(x.astype(np.float64) ** 2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return np.clip(x + noise, -1, 1).astype(np.float32)


# -- DNSMOS ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clips() -> dict[str, np.ndarray]:
    short = demo("harvard-01-01-flite-slt")  # 2.4 s: speechmos repeats it to 9.01 s, one window
    long = np.concatenate([demo(n) for n in ("asterisk-agent-alreadyon", "asterisk-agent-pass",
                                              "asterisk-conf-getconfno")])  # 12.2 s: four 9.01 s windows
    return {"short": short, "long": long, "noisy": white_noise_at(short, 0.0)}


@pytest.mark.parametrize("threads", [0, 1])
def test_dnsmos_equals_speechmos(clips, threads):
    from speechmos import dnsmos as package

    for name, x in clips.items():
        theirs = package.run(x, 16000)
        ours = dn.dnsmos_score(x, threads=threads)
        pairs = [(ours["dnsmos"], theirs["ovrl_mos"]), (ours["dnsmos_sig"], theirs["sig_mos"]),
                 (ours["dnsmos_bak"], theirs["bak_mos"]), (ours["dnsmos_p808"], theirs["p808_mos"])]
        for mine, package_value in pairs:
            if threads == 0:  # onnxruntime's default sessions, as speechmos builds them: the same numbers
                assert mine == float(package_value), name
            else:  # one thread: the order of a reduction can move the 7th digit
                assert mine == pytest.approx(float(package_value), abs=1e-6), name


def test_dnsmos_metric_scores_the_reconstruction_alone(clips):
    metric = load_metric("dnsmos")
    clean, noisy = clips["short"][None], clips["noisy"][None]
    a = metric.score(clean, noisy, 16000, SPEECH)
    b = metric.score(noisy, noisy, 16000, SPEECH)
    assert a == b  # non-intrusive: the reference does not enter
    assert a == dn.dnsmos_score(clips["noisy"])
    assert metric.meta.floor and metric.key == "dnsmos" and set(a) == {"dnsmos", "dnsmos_sig", "dnsmos_bak",
                                                                        "dnsmos_p808"}


def test_dnsmos_known_answer_noise_lowers_quality(clips):
    clean = dn.dnsmos_score(clips["short"])
    noisy = dn.dnsmos_score(clips["noisy"])  # white noise at 0 dB SNR
    assert clean["dnsmos"] > noisy["dnsmos"] + 0.5 and clean["dnsmos_bak"] > noisy["dnsmos_bak"] + 1.0
    assert clean["dnsmos_p808"] > noisy["dnsmos_p808"]


def test_dnsmos_rates_channels_range_and_silence(clips):
    metric = load_metric("dnsmos")
    x = clips["short"]
    x48 = au.resample(x[None], 16000, 48000)
    stereo = np.concatenate([x48, au.resample(clips["noisy"][None], 16000, 48000)])  # two different channels
    via48 = metric.score(stereo, stereo, 48000, SPEECH)
    mono16 = au.resample(stereo.mean(axis=0, keepdims=True), 48000, 16000)[0]
    assert via48 == dn.dnsmos_score(mono16)  # mixed to mono, resampled here
    assert via48 != dn.dnsmos_score(au.resample(x48, 48000, 16000)[0])  # not the first channel alone
    loud = (x * 1.5)[None]  # beyond full scale: scored as a 16-bit file would hold it (speechmos refuses it)
    assert metric.score(loud, loud, 16000) == dn.dnsmos_score(np.clip(loud[0], -1, 1))
    with pytest.raises(MetricError, match="silent"):
        metric.score(x[None], np.zeros((1, x.size), np.float32), 16000)
    with pytest.raises(MetricError, match="threads"):
        load_metric("dnsmos:threads=-1")
    assert load_metric("dnsmos:threads=2").identity() == "dnsmos"
    assert load_metric("dnsmos:threads=2").fingerprint() == metric.fingerprint()


def test_dnsmos_backend_names_the_models():
    backend = load_metric("dnsmos").backend()
    assert backend["speechmos"] == "0.0.1.1" and backend["onnxruntime"] not in ("", "absent")
    assert all(len(backend["models"][k]) == 64 for k in ("p835", "p808"))


# -- WARP-Q ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def warpq_reference():
    data = json.loads((REFERENCE / "warpq_package.json").read_text())
    arrays = np.load(REFERENCE / "warpq_inputs.npz")
    cases = {}
    for name, case in data["cases"].items():
        ref = arrays[f"ref_{case['ref']}"].astype(np.float64) / 32768
        deg = arrays[case["deg"]].astype(np.float64) / 32768
        cases[name] = (ref, deg, case)
    return cases


def test_warpq_matches_the_package(warpq_reference):
    scored = 0
    for name, (ref, deg, case) in warpq_reference.items():
        assert [int(wq.vad_mask(ref).sum()), int(wq.vad_mask(deg).sum())] == case["vad_kept"], name
        exact = case["unrounded"]
        if exact["raw"] is None:  # the package returns NaN for too little speech; we refuse to score
            with pytest.raises(MetricError, match="less than one 0.4 s patch"):
                wq.warpq_score(ref, deg)
            continue
        ours = wq.warpq_score(ref, deg)
        assert ours["warpq_patches"] == exact["patches"], name
        assert ours["warpq"] == pytest.approx(exact["raw"], abs=1e-6), name
        assert abs(ours["warpq"] - case["rounded"]["raw"]) <= 5e-4 + 1e-9, name  # the package prints 3 decimals
        assert abs(ours["warpq_norm"] - case["rounded"]["normalized"]) <= 1e-3, name
        scored += 1
    assert scored >= 8


def test_warpq_patch_costs_match_the_package(warpq_reference):
    ref, deg, case = warpq_reference["speech_faster_4pct"]
    speech = [x[wq.vad_mask(x)] for x in (ref, deg)]
    window = wq._frames(wq.CMVN_S)
    window += 1 - window % 2
    feats = [wq.local_cmvn(wq.mfcc(x).T, window).T for x in speech]
    costs = wq.patch_costs(*feats)
    assert np.allclose(costs, case["unrounded"]["costs"], rtol=0, atol=1e-6)
    assert max(costs) - min(costs) > 0.1  # the costs differ patch by patch: the median is not a constant


def test_warpq_metric_direction_and_resampling(warpq_reference):
    metric = load_metric("warpq")
    assert not metric.meta.higher_is_better and metric.meta.sample_rate == 16000
    ref, _deg, _ = warpq_reference["speech_identity"]
    noisy = warpq_reference["speech_noise_15db"][1]
    r, n = ref.astype(np.float32)[None], noisy.astype(np.float32)[None]
    same = metric.score(r, r, 16000, SPEECH)
    worse = metric.score(r, n, 16000, SPEECH)
    assert worse["warpq"] > same["warpq"] + 1.0 and worse["warpq_norm"] < same["warpq_norm"]
    assert worse == wq.warpq_score(ref.astype(np.float32), noisy.astype(np.float32))
    up = metric.score(au.resample(r, 16000, 32000), au.resample(n, 16000, 32000), 32000, SPEECH)
    assert up["warpq"] == pytest.approx(worse["warpq"], abs=0.05)  # scored at 16 kHz after the round trip
    # channels are mixed to mono (float64 mean) first: two different channels score as their mean
    stereo_r, stereo_n = np.concatenate([r, 0.5 * r]), np.concatenate([n, r])
    mixed = [x.astype(np.float64).mean(axis=0) for x in (stereo_r, stereo_n)]
    assert metric.score(stereo_r, stereo_n, 16000, SPEECH) == wq.warpq_score(*mixed) != worse


# -- speaker similarity ---------------------------------------------------------------------------------


def write_tiny_wavlm(folder: Path, layout: str = "safetensors", seed: int = 0) -> Path:
    """A random-init tiny WavLMForXVector + feature extractor in the hub layout (no network)."""
    import torch
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMForXVector

    config = WavLMConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
                         conv_dim=(16, 16), conv_stride=(5, 5), conv_kernel=(10, 5), num_conv_pos_embeddings=16,
                         num_conv_pos_embedding_groups=2, tdnn_dim=(16, 16), tdnn_kernel=(3, 1),
                         tdnn_dilation=(1, 1), xvector_output_dim=8, num_buckets=32, max_bucket_distance=64)
    torch.manual_seed(seed)
    model = WavLMForXVector(config).eval()
    folder.mkdir(parents=True, exist_ok=True)
    if layout == "safetensors":
        model.save_pretrained(folder)
    else:  # what the hub repository holds: pytorch_model.bin
        config.save_pretrained(folder)
        torch.save(model.state_dict(), folder / "pytorch_model.bin")
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                             return_attention_mask=True).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_wavlm(tmp_path_factory) -> Path:
    return write_tiny_wavlm(tmp_path_factory.mktemp("wavlm") / "model")


@pytest.fixture(scope="module")
def voices() -> tuple[np.ndarray, np.ndarray]:
    a = demo("harvard-01-01-flite-slt")
    b = demo("asterisk-agent-pass")[: a.size]
    return a, b


def direct_cosine(folder: Path, ref: np.ndarray, rec: np.ndarray) -> float:
    """The model card's recipe, straight through transformers."""
    import torch
    from transformers import Wav2Vec2FeatureExtractor, WavLMForXVector

    extractor = Wav2Vec2FeatureExtractor.from_pretrained(str(folder))
    model = WavLMForXVector.from_pretrained(str(folder)).eval()
    inputs = extractor([ref, rec], sampling_rate=16000, padding=True, return_tensors="pt")
    with torch.no_grad():
        emb = model(**inputs).embeddings
    emb = torch.nn.functional.normalize(emb, dim=-1)
    return float(torch.nn.CosineSimilarity(dim=-1)(emb[0], emb[1]))


@pytest.mark.parametrize("layout", ["safetensors", "bin"])
def test_spk_sim_matches_transformers_directly(tmp_path, voices, layout):
    folder = write_tiny_wavlm(tmp_path / layout, layout)
    metric = load_metric(f"spk-sim:weights={folder}")
    assert metric.weights_available() and metric.identity() == "spk-sim"
    a, b = voices
    noisy = white_noise_at(a, 5.0)
    expected = [direct_cosine(folder, a, b), direct_cosine(folder, a, noisy)]
    got = [metric.score(a[None], b[None], 16000, SPEECH)["spk-sim"],
           metric.score(a[None], noisy[None], 16000, SPEECH)["spk-sim"]]
    assert got == pytest.approx(expected, abs=1e-6)
    assert abs(expected[0] - expected[1]) > 1e-4 and max(expected) < 0.9999  # the pairs are told apart


def test_spk_sim_identical_audio_is_one(tiny_wavlm, voices):
    metric = load_metric("spk-sim", weights=str(tiny_wavlm))
    a, _ = voices
    assert metric.score(a[None], a[None], 16000, SPEECH)["spk-sim"] == pytest.approx(1.0, abs=1e-6)


def test_spk_sim_known_answer_on_planted_embeddings(tiny_wavlm, voices, monkeypatch):
    assert sp.cosine([1.0, 0.0, 0.0], [1.0, 1.0, 0.0]) == pytest.approx(1 / np.sqrt(2), abs=1e-15)
    assert sp.cosine([1.0, 2.0], [-2.0, 1.0]) == 0.0
    assert sp.cosine([3.0, -1.0], [-6.0, 2.0]) == pytest.approx(-1.0, abs=1e-15)
    assert sp.cosine([0.5, 0.5, 0.5, 0.5], [10.0, 10.0, 10.0, 10.0]) == pytest.approx(1.0, abs=1e-15)
    with pytest.raises(MetricError, match="zero"):
        sp.cosine([0.0, 0.0], [1.0, 0.0])
    planted = np.array([[0.6, 0.8, 0.0], [0.8, 0.0, 0.6]], dtype=np.float32)
    seen = []

    def fake_embeddings(extractor, model, signals):
        seen.append([s.copy() for s in signals])
        return planted

    monkeypatch.setattr(sp, "embeddings", fake_embeddings)
    metric = load_metric("spk-sim", weights=str(tiny_wavlm))
    a, b = voices
    stereo_a, stereo_b = np.stack([a, 0.5 * a]), np.stack([b, 0.2 * a - b])  # means 0.75 a, 0.1 a
    out = metric.score(stereo_a, stereo_b, 16000, SPEECH)
    assert out == {"spk-sim": pytest.approx(0.48, abs=1e-7)}
    # reference first, then reconstruction, each the mean of its channels
    np.testing.assert_allclose(seen[0][0], 0.75 * a, rtol=0, atol=1e-7)
    np.testing.assert_allclose(seen[0][1], 0.1 * a, rtol=0, atol=1e-7)


def test_spk_sim_without_weights_says_how_to_fetch(tmp_path, voices, monkeypatch):
    from bench.codecs.base import WeightsMissingError

    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "home"))
    metric = load_metric("spk-sim")  # builds without weights (the registry and `bench list` need that)
    assert not metric.weights_available()
    assert metric.backend()["model_files"] == "missing"
    a, b = voices
    with pytest.raises(WeightsMissingError, match=r"bench weights fetch spk-sim.*spk-sim:weights=DIR"):
        metric.score(a[None], b[None], 16000, SPEECH)
    assert str(tmp_path / "home" / "weights" / "spk-sim") in str(metric.folder)
    empty = load_metric(f"spk-sim:weights={tmp_path / 'nothing'}")
    with pytest.raises(WeightsMissingError, match="nothing"):
        empty.require_weights()


def test_spk_sim_fingerprint_follows_the_weights(tmp_path):
    one = write_tiny_wavlm(tmp_path / "one", seed=0)
    two = write_tiny_wavlm(tmp_path / "two", seed=1)
    copy = write_tiny_wavlm(tmp_path / "copy", seed=0)
    fp = {k: load_metric("spk-sim", weights=str(v)).fingerprint() for k, v in
          {"one": one, "two": two, "copy": copy}.items()}
    assert fp["one"] == fp["copy"] != fp["two"]  # content, never the folder's name
    assert all(f.startswith("spk-sim@") for f in fp.values())
    info = load_metric("spk-sim", weights=str(one)).version_info()
    assert info["backend"]["model"] == "microsoft/wavlm-base-plus-sv" and info["code_version"] == "1"


def test_spk_sim_fetch_refuses_unpinned_files_before_any_download(tmp_path, monkeypatch):
    from bench.codecs import weights

    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "home"))
    with pytest.raises(weights.UnpinnedError, match="--trust-unpinned"):
        weights.fetch("spk-sim", dest=tmp_path / "dest")  # `bench weights fetch spk-sim`
    assert not (tmp_path / "dest").exists() or not any((tmp_path / "dest").iterdir())
    with pytest.raises(ValueError, match="one variant"):
        sp.fetch_weights(dest=tmp_path / "dest", variant="large")


# -- registry, listing, runner and report ---------------------------------------------------------------


def test_new_metrics_are_listed_with_rate_direction_and_domain():
    out = subprocess.run([sys.executable, "-m", "bench.cli", "list", "metrics"], capture_output=True, text=True,
                         check=True).stdout
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()}
    for name, better in (("dnsmos", "higher"), ("warpq", "lower"), ("spk-sim", "higher")):
        assert rows[name][1:4] == ["16000", better, "speech"], rows[name]
        entry = METRICS.entry(name)
        assert entry.meta["higher_is_better"] == (better == "higher")
        assert METRICS.get(name).code_version == "1"


def test_runner_scores_dnsmos_with_its_floor_and_the_report_names_the_backends(tmp_path):
    from bench.reports.build import measurement_notes
    from bench.reports.frame import summary_frame
    from bench.store import REFERENCE, ResultStore

    res = bench.run(codecs=["opus:bitrate=6"], tasks=["demo-speech"], metrics=["dnsmos", "warpq"],
                    out=tmp_path / "ws", limit=2, jobs=1)
    frame = res.to_frame()
    assert set(frame.metric) == {"dnsmos", "warpq"}
    assert (frame.n_failed == 0).all()
    floor = frame[(frame.metric == "dnsmos") & (frame.fingerprint == REFERENCE)]
    coded = frame[(frame.metric == "dnsmos") & (frame.fingerprint != REFERENCE)]
    assert len(floor) == 1 and len(coded) == 1 and int(floor.n.iloc[0]) == 2
    scored = {item for item, _n in res.store.item_counts("demo-speech")}
    items = [i for i in bench.load_task("demo-speech").items() if i.id in scored]
    assert len(items) == 2
    own = np.mean([dn.dnsmos_score(au.to_channels(i.load()[0], 1)[0])["dnsmos"] for i in items])
    assert float(floor.value.iloc[0]) == pytest.approx(own, abs=1e-9)  # the floor: the uncoded audio's own score
    store = ResultStore(tmp_path / "ws", readonly=True)
    notes = "\n".join(measurement_notes(store, summary_frame(store)))
    assert "speechmos 0.0.1.1" in notes and "onnxruntime" in notes
    assert "webrtcvad-wheels" in notes and "librosa" in notes
