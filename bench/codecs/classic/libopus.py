"""Direct calls into libopus (ctypes) for the one thing FFmpeg's libopus decoder does not expose: decoding a
lost packet from the in-band FEC (LBRR) data that the next packet carries (`opus_decode(..., decode_fec=1)`).

The library is the libopus PyAV ships inside its wheel (the same one its FFmpeg uses), else the system's
(`ctypes.util.find_library("opus")`, e.g. Debian's libopus0). Only used when an Opus stream was encoded with
`fec=True` and the channel lost packets; everything else goes through PyAV.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import glob
import os

import numpy as np

from bench.codecs.base import CodecError


@functools.lru_cache(maxsize=1)
def library() -> ctypes.CDLL:
    """libopus, loaded once; CodecError saying what to install when there is none."""
    candidates = []
    try:
        import av

        here = os.path.dirname(av.__file__)
        for pattern in ("../av.libs/libopus*.so*", ".dylibs/libopus*.dylib", "../av.libs/opus*.dll",
                        "../av.libs/libopus*.dll"):
            candidates += sorted(glob.glob(os.path.join(here, pattern)))
    except ImportError:
        pass
    system = ctypes.util.find_library("opus")
    if system:
        candidates.append(system)
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        lib.opus_decoder_create.restype = ctypes.c_void_p
        lib.opus_decoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
        lib.opus_decode.restype = ctypes.c_int
        lib.opus_decode.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32, ctypes.POINTER(ctypes.c_int16),
                                    ctypes.c_int, ctypes.c_int]
        lib.opus_get_version_string.restype = ctypes.c_char_p
        return lib
    raise CodecError("Opus in-band FEC decoding needs libopus itself (FFmpeg does not expose it): install PyAV's "
                     "wheel (pip install 'av>=12') or the system library (apt-get install libopus0)")


def version() -> str:
    return library().opus_get_version_string().decode()


class Decoder:
    """A libopus mono decoder at 48 kHz. `decode(packet, samples, fec=False)` -> int16 `[samples]`:
    packet None = lost (libopus PLC); fec=True decodes the packet BEFORE `packet` from its FEC data."""

    RATE = 48000

    def __init__(self):
        self._lib = library()
        err = ctypes.c_int()
        self._dec = self._lib.opus_decoder_create(self.RATE, 1, ctypes.byref(err))
        if err.value != 0 or not self._dec:
            raise CodecError(f"libopus could not create a decoder (error {err.value})")

    def decode(self, packet: bytes | None, samples: int, fec: bool = False) -> np.ndarray:
        buf = (ctypes.c_int16 * samples)()
        n = self._lib.opus_decode(self._dec, packet, len(packet) if packet else 0, buf, samples, int(fec))
        if n < 0:
            raise CodecError(f"libopus could not decode a packet (error {n})")
        return np.frombuffer(buf, dtype=np.int16, count=n).copy()

    def close(self) -> None:
        if self._dec:
            self._lib.opus_decoder_destroy(self._dec)
            self._dec = None

    def __del__(self):
        self.close()
