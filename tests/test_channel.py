"""Packet-loss channels: the Gilbert-Elliott model's statistics, seeding, concealment per codec kind, identity,
and the loss-vs-quality report of a run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import bench
from bench.channel import (
    ChannelCodec, ChannelError, ChannelSpec, apply_channel, conceal_codes, conceal_sequence, frames_per_packet,
    gilbert_elliott, lost_frames,
)
from bench.codecs.base import Codec, CodecMeta, Encoded


def _runs(lost: np.ndarray) -> np.ndarray:
    """Lengths of the runs of True in a bool sequence."""
    padded = np.concatenate([[False], lost, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return edges[1::2] - edges[::2]


# -- the loss model ------------------------------------------------------------------------------------


def test_transition_probabilities():
    p, r = ChannelSpec(loss=0.1, burst=2).transitions()
    assert r == 0.5 and p == pytest.approx(0.1 * 0.5 / 0.9)
    assert p / (p + r) == pytest.approx(0.1)  # the bad state's stationary share is the loss rate
    assert ChannelSpec(loss=0.2).transitions() == (0.2, 0.8)  # no burst: independent losses
    assert ChannelSpec(loss=0.2).mean_burst() == pytest.approx(1.25)


@pytest.mark.parametrize("loss,burst", [(0.1, 3.0), (0.3, 1.5), (0.05, 1.0)])
def test_long_run_loss_rate_and_burst_length(loss, burst):
    n = 100_000
    lost = gilbert_elliott(n, loss, burst, np.random.default_rng(1))
    p, r = ChannelSpec(loss=loss, burst=burst).transitions()
    # Tolerances: 5 standard deviations. The state sequence is a Markov chain whose lag-1 correlation is
    # rho = 1 - p - r, so the mean of n packets has variance P (1 - P) / n x (1 + rho) / (1 - rho); runs are
    # Geometric(r), variance (1 - r) / r^2, and there are about n P r of them.
    rho = 1 - p - r
    sd_rate = math.sqrt(loss * (1 - loss) / n * (1 + rho) / (1 - rho))
    assert abs(lost.mean() - loss) < 5 * sd_rate
    runs = _runs(lost)
    sd_burst = math.sqrt((1 - r) / r ** 2 / (n * loss * r))
    assert abs(runs.mean() - burst) < 5 * sd_burst + 1e-9
    if burst == 1.0:
        assert runs.max() == 1  # r = 1: a lost packet is always followed by a delivered one


def test_independent_losses_have_no_memory():
    lost = gilbert_elliott(100_000, 0.2, None, np.random.default_rng(2))
    after_loss = lost[1:][lost[:-1]].mean()
    assert abs(lost.mean() - 0.2) < 0.007 and abs(after_loss - 0.2) < 0.015  # 5 sd of each estimate
    assert abs(_runs(lost).mean() - 1.25) < 0.03


def test_same_seed_same_frames_other_seed_or_item_other_frames():
    spec = ChannelSpec(loss=0.3, burst=2, seed=7)
    a = lost_frames(spec, 500, 1, b"item one")
    assert np.array_equal(a, lost_frames(spec, 500, 1, b"item one"))
    assert not np.array_equal(a, lost_frames(ChannelSpec(loss=0.3, burst=2, seed=8), 500, 1, b"item one"))
    assert not np.array_equal(a, lost_frames(spec, 500, 1, b"item two"))
    grouped = lost_frames(spec, 501, 3, b"item one")  # 3 frames per packet: lost together
    assert grouped.shape == (501,) and (grouped[:501 - 501 % 3].reshape(-1, 3).sum(axis=1) % 3 == 0).all()


def test_spec_parsing_and_errors():
    spec = ChannelSpec.parse("loss=0.1, burst=2,seed=3,packet_ms=40,conceal=zero")
    assert spec == ChannelSpec(0.1, 2.0, 3, 40.0, "zero")
    assert str(spec) == "loss=0.1,burst=2,seed=3,packet_ms=40,conceal=zero"
    assert ChannelSpec.parse(str(spec)) == spec and spec.label() == "loss=0.1,burst=2,seed=3,packet_ms=40,conceal=zero"
    assert ChannelSpec.parse("loss=0.1").label() == "loss=0.1"
    for bad, message in [("loss=1", r"\[0, 1\)"), ("loss=-0.1", r"\[0, 1\)"), ("burst=2", "give the loss rate"),
                         ("loss=0.1,bursts=2", "unknown option 'bursts'"), ("loss=0.8,burst=2", "burst >= 4"),
                         ("loss=0.1,burst=0.5", ">= 1"), ("loss=0.1,seed=1.5", "not a number"),
                         ("loss=0.1,conceal=magic", "not one of"), ("loss", "not key=value"),
                         ("loss=0.1,packet_ms=0", "positive")]:
        with pytest.raises(ChannelError, match=message):
            ChannelSpec.parse(bad)


def test_frames_per_packet():
    assert frames_per_packet(20, 1 / 50) == 1 and frames_per_packet(20, 1 / 75) == 2  # Encodec: 26.7 ms packets
    assert frames_per_packet(20, 0.08) == 1 and frames_per_packet(60, 0.02) == 3


# -- concealment ------------------------------------------------------------------------------------------


def test_repeat_and_zero_concealment_on_planted_codes():
    codes = np.array([[1, 2, 3, 4, 5, 6], [10, 20, 30, 40, 50, 60]])
    lost = np.array([True, False, True, True, False, True])
    assert conceal_codes(codes, lost, "repeat").tolist() == [[0, 2, 2, 2, 5, 5], [0, 20, 20, 20, 50, 50]]
    assert conceal_codes(codes, lost, "zero").tolist() == [[0, 2, 0, 0, 5, 0], [0, 20, 0, 0, 50, 0]]
    assert conceal_codes(codes, np.zeros(6, bool), "repeat").tolist() == codes.tolist()
    assert conceal_sequence(["a", "b", "c", "d"], np.array([True, False, True, False]), "repeat", "s") == [
        "s", "b", "b", "d"]
    assert conceal_sequence(["a", "b", "c"], np.array([False, True, True]), "plc") == ["a", None, None]


class _Tokens(Codec):
    """A token codec for tests: 2 streams at 50 frames/s; decode records the codes it was given."""

    name = "tokens-test"
    code_version = "1"

    def __init__(self):
        self.options = {}
        self.meta = CodecMeta("tokens-test", 16000, 1, (1.0,), 50.0, False, "-", codebook_sizes=(64, 64))
        self.seen = []

    def encode(self, wav, sample_rate=None, lengths=None):
        b, _, t = wav.shape
        n = t // 320
        codes = torch.stack([torch.arange(n) % 64, (torch.arange(n) * 7) % 64])[None].repeat(b, 1, 1)
        return Encoded(codes=codes, bitrate=12 * 50.0, lengths=[t] * b, sample_rate=16000)

    def decode(self, enc):
        self.seen.append(enc.codes.clone())
        return enc.codes[:, :1].float().repeat_interleave(320, dim=-1) / 64


def test_token_codec_receives_the_concealed_codes():
    inner = _Tokens()
    codec = ChannelCodec(inner, "loss=0.3,burst=2,seed=1")
    enc = codec.encode(torch.zeros(1, 1, 16000))
    rec = codec.decode(enc)
    lost = codec.lost(enc)[0]
    assert 0 < lost.sum() < lost.size and rec.shape == (1, 1, 16000)
    assert torch.equal(inner.seen[-1][0], torch.from_numpy(conceal_codes(enc.codes[0].numpy(), lost, "repeat")))
    assert torch.equal(enc.codes, inner.encode(torch.zeros(1, 1, 16000)).codes)  # what was sent is untouched
    silent = ChannelCodec(inner, "loss=0.3,burst=2,seed=1,conceal=silence").decode(enc)
    j = int(np.flatnonzero(lost)[0])
    assert silent[0, 0, j * 320:(j + 1) * 320].abs().max() == 0  # the lost frame's output is muted
    assert torch.equal(ChannelCodec(inner, "loss=0").decode(enc), inner.decode(enc))
    with pytest.raises(ChannelError, match="does not apply to a token codec"):
        ChannelCodec(inner, "loss=0.1,conceal=plc")


def test_batched_items_lose_the_frames_they_lose_alone():
    inner = _Tokens()
    codec = ChannelCodec(inner, "loss=0.4")
    wav = torch.zeros(2, 1, 16000)
    enc = codec.encode(wav)
    enc.codes[1] = (enc.codes[1] + 3) % 64  # another item, other codes
    alone = Encoded(codes=enc.codes[1:2].clone(), bitrate=enc.bitrate, lengths=[16000], sample_rate=16000)
    assert np.array_equal(codec.lost(enc)[1], codec.lost(alone)[0])
    assert not np.array_equal(codec.lost(enc)[0], codec.lost(enc)[1])


# -- identity ---------------------------------------------------------------------------------------------


def test_fingerprint_label_and_meta():
    opus = bench.load_codec("opus", bitrate=6)
    fps = {ChannelCodec(opus, s).fingerprint() for s in (
        "loss=0.1", "loss=0.2", "loss=0.1,burst=2", "loss=0.1,seed=1", "loss=0.1,conceal=repeat",
        "loss=0.1,packet_ms=40")}
    assert len(fps) == 6 and opus.fingerprint() not in fps
    assert ChannelCodec(opus, "loss=0.1").fingerprint() == ChannelCodec(opus, "loss=0.1,conceal=plc").fingerprint()
    codec = ChannelCodec(opus, "loss=0.1,burst=2")
    assert codec.label == "opus:kbps=6 [loss=0.1,burst=2]" and codec.name == "opus"
    meta = codec.meta.to_dict()
    assert meta["sample_rate"] == 48000 and meta["channel"]["conceal"] == "plc"
    assert meta["channel"]["inner_fingerprint"] == opus.fingerprint() and meta["channel"]["inner_label"] == opus.label
    assert codec.code_version == opus.code_version and codec.nominal_kbps == 6.0
    assert apply_channel(opus, "loss=0") is opus and apply_channel(opus, None) is opus
    with pytest.raises(ChannelError, match="no packets or token frames"):
        ChannelCodec(bench.load_codec("identity"), "loss=0.1")


# -- classic codecs -------------------------------------------------------------------------------------


def _voice(seconds: float, sr: int) -> torch.Tensor:
    from conftest import tone

    return torch.from_numpy(tone(seconds, sr, 180.0, amp=0.3))[None, None]


def test_lossless_channel_equals_the_plain_codec_bit_exactly():
    for name, kbps, sr in (("opus", 6, 48000), ("mp3", 16, 16000)):
        codec = bench.load_codec(name, bitrate=kbps)
        enc = codec.encode(_voice(1.0, sr))
        assert torch.equal(ChannelCodec(codec, "loss=0").decode(enc), codec.decode(enc))


def test_opus_plc_conceals_lost_packets():
    opus = bench.load_codec("opus", bitrate=6)
    wav = _voice(2.0, 48000)
    enc = opus.encode(wav)
    clean = opus.decode(enc)
    plc = ChannelCodec(opus, "loss=0.2,seed=3")
    lost = plc.lost(enc)[0]
    rec = plc.decode(enc)
    silence = ChannelCodec(opus, "loss=0.2,seed=3,conceal=silence").decode(enc)
    assert rec.shape == clean.shape == silence.shape == wav.shape and 0.1 < lost.mean() < 0.35
    # packet j is output samples [960 j - 312, 960 (j + 1) - 312) at 48 kHz (pre-skip 312)
    first = int(np.flatnonzero(lost)[0])
    span = lambda j: slice(max(0, 960 * j - 312), 960 * (j + 1) - 312)  # noqa: E731
    assert torch.equal(rec[..., : span(first).start], clean[..., : span(first).start])  # nothing lost before
    spans = [span(int(j)) for j in np.flatnonzero(lost) if 0 < j < lost.size - 1]
    assert all(silence[..., s].abs().max() == 0 for s in spans)
    # PLC extrapolates the voice: about the clean level in the gaps, and its spectrum (not its phase: a
    # waveform distance would favour silence) closer to the clean decode's than silence is
    energy = sum(float((rec[..., s] ** 2).sum()) for s in spans)
    ratio = energy / sum(float((clean[..., s] ** 2).sum()) for s in spans)
    assert 0.25 < ratio < 4, ratio

    def spectral_distance(x):
        log = lambda y: torch.log10(torch.fft.rfft(y[0, 0]).abs() + 1e-4)  # noqa: E731
        return sum(float((log(x[..., s]) - log(clean[..., s])).abs().mean()) for s in spans)

    assert spectral_distance(rec) < 0.5 * spectral_distance(silence)
    assert not torch.equal(rec, ChannelCodec(opus, "loss=0.2,seed=3,conceal=repeat").decode(enc))


def test_opus_leading_losses_keep_time_alignment():
    opus = bench.load_codec("opus", bitrate=6)
    enc = opus.encode(_voice(1.0, 48000))
    packets = opus.packets(enc, 0)
    clean = opus.decode_packets([packets], enc.lengths)
    late = opus.decode_packets([[None, None] + packets[2:]], enc.lengths)
    assert late.shape == clean.shape and late[..., : 2 * 960 - 312].abs().max() == 0
    # after the lost start the decoder has re-converged: the end matches the clean decode closely
    tail = slice(24000, 48000)
    assert float(((late - clean)[..., tail] ** 2).mean()) < 0.01 * float((clean[..., tail] ** 2).mean())


@pytest.mark.parametrize("name,kbps,sr", [("mp3", 16, 16000), ("codec2", 1.2, 8000)])
def test_mp3_and_codec2_lose_frames(name, kbps, sr):
    codec = bench.load_codec(name, bitrate=kbps)
    wav = _voice(2.0, sr)
    enc = codec.encode(wav)
    repeat = ChannelCodec(codec, "loss=0.2,seed=4")
    assert repeat.spec.conceal == "repeat"
    lost = repeat.lost(enc)[0]
    rec = repeat.decode(enc)
    assert rec.shape == wav.shape and torch.isfinite(rec).all() and lost.any()
    assert not torch.equal(rec, codec.decode(enc)) or name == "codec2"
    silence = ChannelCodec(codec, "loss=0.2,seed=4,conceal=silence")
    muted = silence.decode(enc)
    frame = round(silence.frame_seconds * sr)
    delay = round(silence.frame_seconds * 0 + (enc.extra.get("delay", 0) if name == "mp3" else codec.delay))
    j = int(np.flatnonzero(lost[2:])[0]) + 2
    assert muted[0, 0, j * frame - delay:(j + 1) * frame - delay].abs().max() == 0
    assert repeat.frames_per_packet == 1


# -- a run and its report ----------------------------------------------------------------------------------


def test_loss_vs_quality_report(tmp_path):
    from bench.reports.build import write_report

    # every codec plain (loss 0) and behind each channel; the lossless and repeated channels add nothing
    res = bench.run(codecs=["opus:bitrate=6", "codec2:bitrate=1.2"], tasks=["demo-speech"], metrics=["mel"],
                    out=tmp_path / "ws", limit=2, jobs=1,
                    channel=["loss=0.1", "loss=0.3,burst=2", "loss=0", "loss=0.1,seed=0"])
    frame = res.to_frame()
    assert len(set(frame.fingerprint)) == 6 and len(frame) == 6
    paths = write_report(res.store, html=False)
    md = paths["markdown"].read_text()
    assert "## Packet loss" in md and "opus:kbps=6 (independent, conceal plc)" in md
    assert "codec2:mode=1200 (burst 2, conceal repeat)" in md
    table = md[md.index("## Packet loss"):]
    assert "| codec and channel | loss % | mel ↓ | items |" in table  # the metric's short name
    width = None  # every markdown table row has its header's number of cells: no "|" inside a label
    for line in md.splitlines():
        if not line.startswith("|"):
            width = None
        elif width is None:
            width = line.count("|")
        else:
            assert line.count("|") == width, line
    plots = [p.name for p in paths.values() if str(p).endswith(".png")]
    assert "mel_vs_loss.png" in plots and "mel_vs_bitrate.png" in plots
    import pandas as pd

    loss = pd.read_csv(paths["loss_csv"])
    opus = loss[loss.series == "opus:kbps=6 (independent, conceal plc)"].sort_values("loss")
    assert list(opus.loss) == [0.0, 0.1] and opus.value.iloc[1] > opus.value.iloc[0]  # mel distance grows
    headline = pd.read_csv(paths["headline_csv"])
    assert not headline.astype(str).apply(lambda c: c.str.contains("loss=")).any().any()  # not ranked there


def test_opus_in_band_fec_recovers_lost_packets():
    from bench.codecs.classic import libopus
    from bench.codecs.classic.opus import Opus

    assert libopus.version().startswith("libopus")
    wav = _voice(2.0, 48000)
    codec = bench.load_codec("opus:bitrate=24,fec=1,fec_loss=20")
    assert codec.fec and codec.options["fec"] is True and bench.load_codec("opus", bitrate=24).options == {"kbps": 24}
    enc = codec.encode(wav)
    packets = codec.packets(enc, 0)
    # libopus called directly decodes exactly as PyAV's FFmpeg does
    direct = torch.from_numpy(codec._decode_fec(packets)[: wav.shape[-1]].copy())
    assert torch.equal(direct, codec.decode(enc)[0, 0, : direct.shape[-1]])
    lost = [None if j % 5 == 2 else p for j, p in enumerate(packets)]
    clean = codec.decode(enc)
    with_fec = codec.decode_packets([lost], enc.lengths)
    plc_only = Opus.decode_packets(bench.load_codec("opus", bitrate=24), [lost], enc.lengths)  # same packets
    spans = [slice(960 * j - 312, 960 * (j + 1) - 312) for j in range(2, len(packets) - 1, 5)]
    error = lambda rec: sum(float(((rec - clean)[..., s] ** 2).sum()) for s in spans)  # noqa: E731
    assert error(with_fec) < 0.9 * error(plc_only)
    channel = ChannelCodec(codec, "loss=0.2,seed=1")
    assert channel.decode(enc).shape == wav.shape and channel.fingerprint() != ChannelCodec(
        bench.load_codec("opus", bitrate=24), "loss=0.2,seed=1").fingerprint()


def test_a_random_weight_neural_codec_behind_the_channel():
    dac = bench.load_codec("dac", tiny=True, n_codebooks=2)
    wav = _voice(1.0, 16000)
    enc = dac.encode(wav)
    assert torch.equal(ChannelCodec(dac, "loss=0").decode(enc), dac.decode(enc))
    lossy = ChannelCodec(dac, "loss=0.3,burst=2,conceal=zero")
    assert lossy.frames_per_packet == 1 and lossy.label.endswith(" [loss=0.3,burst=2,conceal=zero]")
    rec = lossy.decode(enc)
    assert rec.shape == wav.shape and torch.isfinite(rec).all() and not torch.equal(rec, dac.decode(enc))
    assert lossy.meta.codebook_sizes == (1024, 1024) and lossy.meta.to_dict()["channel"]["conceal"] == "zero"


def test_cli_channel_runs_each_codec_plain_and_lossy_and_plots_quality_against_loss(tmp_path, capsys):
    from bench.cli import main
    from bench.store import ResultStore

    out = tmp_path / "ws"
    assert main(["run", "--codec", "opus", "--bitrate", "6", "--codec", "codec2", "--bitrate", "1.2",
                 "--channel", "loss=0.1", "--task", "demo-speech", "--limit", "1", "--metric", "mel",
                 "--out", str(out), "--jobs", "1"]) == 0
    labels = sorted(label for _, label, _ in ResultStore(out, readonly=True).codec_rows())
    assert labels == ["codec2:mode=1200", "codec2:mode=1200 [loss=0.1]", "opus:kbps=6", "opus:kbps=6 [loss=0.1]"]
    assert (out / "report" / "plots" / "mel_vs_loss.png").stat().st_size > 0
    assert "## Packet loss" in (out / "report" / "report.md").read_text()


def test_cli_bad_channel_is_one_line(tmp_path, capsys):
    from bench.cli import main

    assert main(["run", "--codec", "opus", "--channel", "loss=1.5", "--task", "demo-speech",
                 "--out", str(tmp_path / "ws")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "loss must be a rate in [0, 1)" in err[0]
