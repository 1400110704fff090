"""Kaldi-compatible log-mel filterbank in batched torch, and SemantiCodec's AudioMAE input.

`kaldi_fbank` reproduces `compute-fbank-feats` with the options SemantiCodec uses (25 ms Hann frames
every 10 ms, snip_edges, per-frame DC removal, pre-emphasis 0.97, 512-point power spectrum, HTK-style
mel triangles from 20 Hz to Nyquist, log floored at float32 epsilon, no dither, no energy column),
for a batch of equally long signals at once. torchaudio's `compliance.kaldi.fbank` is the reference
it matches to ~1e-5 (it runs one signal at a time; we never import torchaudio).

`semanticodec_fbank` adds what the official `load_audio` does around it: zero-pad each item to whole
10.24 s segments (always adding at least one sample, so exact multiples gain a silent segment - an
official quirk we keep so token counts match), subtract the item's global mean, pad the two missing
frames per file with zero rows, normalise with AudioMAE's constants.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

EPS = torch.finfo(torch.float32).eps  # Kaldi floors mel energies at float epsilon before the log

AUDIOMAE_MEAN = -4.2677393  # AudioSet fbank statistics used to train AudioMAE
AUDIOMAE_STD = 4.5689974


def _mel(freq):
    return 1127.0 * torch.log(1.0 + freq / 700.0)


@lru_cache(maxsize=8)
def mel_banks(num_bins: int = 128, n_fft: int = 512, sample_rate: float = 16000.0, low_freq: float = 20.0,
              high_freq: float = 0.0) -> torch.Tensor:
    """Kaldi triangular mel filters `[num_bins, n_fft // 2 + 1]` (last column zero, like Kaldi).

    Computed in float32 in the same order of operations as the Kaldi port so the filters agree to
    the last bit; `high_freq <= 0` is an offset from Nyquist.
    """
    nyquist = 0.5 * sample_rate
    if high_freq <= 0.0:
        high_freq += nyquist
    mel_low = 1127.0 * math.log(1.0 + low_freq / 700.0)
    mel_high = 1127.0 * math.log(1.0 + high_freq / 700.0)
    delta = (mel_high - mel_low) / (num_bins + 1)
    b = torch.arange(num_bins).unsqueeze(1)
    left = mel_low + b * delta
    center = mel_low + (b + 1.0) * delta
    right = mel_low + (b + 2.0) * delta
    fft_mel = _mel((sample_rate / n_fft) * torch.arange(float(n_fft // 2))).unsqueeze(0)
    up = (fft_mel - left) / (center - left)
    down = (right - fft_mel) / (right - center)
    banks = torch.clamp(torch.minimum(up, down), min=0.0)
    return torch.nn.functional.pad(banks, (0, 1))


def kaldi_fbank(wave: torch.Tensor, num_mel_bins: int = 128, sample_rate: int = 16000, frame_length_ms: float = 25.0,
                frame_shift_ms: float = 10.0, preemphasis: float = 0.97, low_freq: float = 20.0) -> torch.Tensor:
    """Log-mel filterbank of `wave` `[B, T]` (float32, at `sample_rate`) -> `[B, M, num_mel_bins]`.

    M = 1 + (T - frame_length) // frame_shift (Kaldi's snip_edges); Hann window (symmetric),
    per-frame DC removal, pre-emphasis, zero-pad to the next power of two, power spectrum.
    """
    if wave.dim() != 2:
        raise ValueError(f"kaldi_fbank expects [B, T], got shape {tuple(wave.shape)}")
    win = int(sample_rate * frame_length_ms * 0.001)
    hop = int(sample_rate * frame_shift_ms * 0.001)
    if wave.shape[-1] < win:
        raise ValueError(f"signal of {wave.shape[-1]} samples is shorter than one {win}-sample frame")
    n_fft = 1 << (win - 1).bit_length()
    frames = wave.unfold(-1, win, hop)  # [B, M, win]
    frames = frames - frames.mean(dim=-1, keepdim=True)
    # x[j] -= c * x[j-1], with x[-1] := x[0] (Kaldi replicates the first sample)
    prev = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
    frames = frames - preemphasis * prev
    window = torch.hann_window(win, periodic=False, dtype=wave.dtype, device=wave.device)
    frames = torch.nn.functional.pad(frames * window, (0, n_fft - win))
    power = torch.fft.rfft(frames).abs().pow(2.0)  # [B, M, n_fft/2 + 1]
    banks = mel_banks(num_mel_bins, n_fft, float(sample_rate), low_freq).to(device=wave.device, dtype=wave.dtype)
    b, m, k = power.shape
    energies = torch.mm(power.reshape(b * m, k), banks.T).reshape(b, m, num_mel_bins)
    return torch.clamp(energies, min=EPS).log()


def n_segments(length: int, segment: int = 163840) -> int:
    """Number of 10.24 s segments the official code pads a `length`-sample signal to (always > length)."""
    return length // segment + 1


def semanticodec_fbank(wave: torch.Tensor, lengths: list[int], segment: int = 163840,
                       frames_per_segment: int = 1024) -> tuple[torch.Tensor, list[int]]:
    """AudioMAE input for a batch of 16 kHz mono signals.

    wave: `[B, T]` at 16 kHz (item i valid in `[:lengths[i]]`, anything after is ignored).
    Returns (`[B, S * 1024, 128]` normalised fbank with S = max segments, zero-padded per item
    after its own segments; segments per item). Each item is padded, mean-centred and framed
    exactly as if it were alone.
    """
    segs = [n_segments(int(n), segment) for n in lengths]
    s_max = max(segs)
    padded = wave.new_zeros(len(lengths), s_max * segment)
    for i, n in enumerate(lengths):
        item = wave.new_zeros(segs[i] * segment)
        item[:n] = wave[i, :n]
        # the official code centres the whole padded file (its zeros included) before framing
        padded[i, : segs[i] * segment] = item - item.mean()
    fb = kaldi_fbank(padded)  # [B, s_max*1024 - 2, 128]
    out = fb.new_zeros(len(lengths), s_max * frames_per_segment, fb.shape[-1])
    for i, s in enumerate(segs):
        keep = min(fb.shape[1], s * frames_per_segment - 2)  # Kaldi gives 1024*s - 2 frames
        out[i, :keep] = fb[i, :keep]
    out = (out - AUDIOMAE_MEAN) / (AUDIOMAE_STD * 2)
    return out, segs
