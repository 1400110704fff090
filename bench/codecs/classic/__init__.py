"""Weight-free codecs: identity, Opus and MP3 (through PyAV) and Codec 2 (through pycodec2).

All take float32 `[B, C, T]` at `codec.meta.sample_rate` (or at `sample_rate=` given to `encode`,
resampled here), mix to the codec's channels (mono for Opus, MP3, Codec 2) and return `Encoded`
whose codes are the bitstream's bytes, int64 `[B, 1, N]` padded with -1 (identity: see its class).
`Encoded.bitrate` is measured from the bytes actually produced over the batch: 8 x bytes / seconds
of input. Opus and MP3 count packet payload bytes only (no Ogg/ID3/Xing container overhead); Codec 2
counts its frames' bits packed end to end (no per-frame byte padding).

Input goes through `Codec.check_input`: float audio only (int16 PCM: `wav.float() / 32768`), no NaN/Inf,
peaks above 100 refused; samples beyond [-1, 1] are clipped with a warning (identity passes them through),
because LAME aborts the whole process on extreme or NaN samples and libopus/Codec 2 cannot represent them.

Decoded audio is time-aligned with the input: each codec's delay (Opus pre-skip, LAME's encoder +
decoder delay, Codec 2's analysis/synthesis delay) is removed, then trimmed/padded to the input length.
"""

from bench.codecs.classic.codec2 import Codec2
from bench.codecs.classic.identity import Identity
from bench.codecs.classic.mp3 import MP3
from bench.codecs.classic.opus import Opus

__all__ = ["Codec2", "Identity", "MP3", "Opus"]
