"""Real, valid PNG files without Pillow: the fake upstreams answer image requests with them and tests
upload them, so whatever inspects an image on the way (the gateway, a client) sees a genuine PNG.

An image is one solid colour, 8-bit RGB, no interlace; its size is what was asked for, because a test may
check that a size survived the trip. Solid rows compress to almost nothing (1024x1024 is about 4.5 kB)
and each (width, height, colour) is built once and cached, so large sizes stay cheap.
"""

from __future__ import annotations

import functools
import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_SIDE = 8192  # far beyond any image API's sizes; keeps a typo from allocating gigabytes


def make_png(width: int, height: int, rgb: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    """A ``width`` x ``height`` PNG filled with ``rgb``. Raises ValueError on an impossible size or colour."""
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise ValueError(f"a PNG side must be 1..{MAX_SIDE}, got {width}x{height}")
    if len(rgb) != 3 or not all(isinstance(c, int) and 0 <= c <= 255 for c in rgb):
        raise ValueError(f"rgb must be three ints 0..255, got {rgb!r}")
    return _png(width, height, (rgb[0], rgb[1], rgb[2]))


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the IHDR chunk, which the format requires to come first. Raises ValueError
    when ``data`` is not a PNG."""
    if len(data) < 24 or not data.startswith(SIGNATURE) or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


@functools.lru_cache(maxsize=64)
def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    # IHDR: size, bit depth 8, colour type 2 (RGB), compression 0, filter 0, no interlace.
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    row = b"\x00" + bytes(rgb) * width  # filter type 0 (None) before each scanline
    pixels = zlib.compress(row * height, 9)
    return SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", pixels) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, data: bytes) -> bytes:
    """Length, type, data, and the CRC-32 of type + data, as the format lays a chunk out."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
