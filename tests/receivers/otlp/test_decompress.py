"""decompress(): every accepted encoding, bounded output, and clean errors."""

from __future__ import annotations

import gzip
import os
import tracemalloc
import zlib

import pytest
import zstandard

from otlpd.errors import InvalidDataError, TooLargeError
from otlpd.receivers.otlp.decompress import UnsupportedEncoding, decompress
from tests.receivers.otlp.helpers import gzip_bomb, zstd_bomb

DATA = b"".join(b"span %d " % i + os.urandom(8) for i in range(5000))  # ~70 KB, compressible


def _raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


ENCODERS = {
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,
    "zlib": zlib.compress,
    "zstd": lambda d: zstandard.ZstdCompressor().compress(d),
}


@pytest.mark.parametrize("encoding", list(ENCODERS))
def test_round_trip(encoding: str) -> None:
    assert decompress(encoding, ENCODERS[encoding](DATA), len(DATA)) == DATA


@pytest.mark.parametrize("encoding", ["", "identity", " Identity "])
def test_identity_passes_bytes_through(encoding: str) -> None:
    assert decompress(encoding, DATA, len(DATA)) == DATA


def test_encoding_name_is_case_and_space_insensitive() -> None:
    assert decompress(" GZip ", gzip.compress(DATA), len(DATA)) == DATA


def test_raw_deflate_without_zlib_header() -> None:
    assert decompress("deflate", _raw_deflate(DATA), len(DATA)) == DATA


def test_multi_member_gzip_is_concatenated() -> None:
    body = gzip.compress(b"first ") + gzip.compress(b"second ") + gzip.compress(b"third")
    assert decompress("gzip", body, 100) == b"first second third"


def test_multi_frame_zstd_is_concatenated() -> None:
    c = zstandard.ZstdCompressor()
    assert decompress("zstd", c.compress(b"ab") + c.compress(b"cd"), 100) == b"abcd"


def test_zstd_without_content_size_in_header() -> None:
    obj = zstandard.ZstdCompressor().compressobj()
    body = obj.compress(DATA) + obj.flush()
    assert decompress("zstd", body, len(DATA)) == DATA


def test_zstd_skippable_frames_are_skipped() -> None:
    skippable = b"\x50\x2a\x4d\x18" + (4).to_bytes(4, "little") + b"meta"
    body = skippable + zstandard.ZstdCompressor().compress(DATA) + skippable
    assert decompress("zstd", body, len(DATA)) == DATA


@pytest.mark.parametrize("encoding", list(ENCODERS))
def test_exactly_at_limit_is_fine_one_over_is_too_large(encoding: str) -> None:
    body = ENCODERS[encoding](DATA)
    assert decompress(encoding, body, len(DATA)) == DATA
    with pytest.raises(TooLargeError, match=f"limit of {len(DATA) - 1} bytes"):
        decompress(encoding, body, len(DATA) - 1)


def test_identity_over_limit_is_too_large() -> None:
    with pytest.raises(TooLargeError):
        decompress("", b"x" * 11, 10)


@pytest.mark.parametrize(
    ("encoding", "bomb"),
    [("gzip", lambda: gzip_bomb(256 << 20)), ("zstd", lambda: zstd_bomb(256 << 20))],
)
def test_bomb_is_refused_with_bounded_memory(encoding: str, bomb: object) -> None:
    body = bomb()  # type: ignore[operator]
    limit = 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(TooLargeError):
            decompress(encoding, body, limit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * limit  # 256 MiB inflated would be far beyond


def test_deflate_bomb_is_refused() -> None:
    body = zlib.compress(bytes(64 << 20), 9)
    with pytest.raises(TooLargeError):
        decompress("deflate", body, 1 << 20)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "zstd"])
@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.9])
def test_truncated_input_is_invalid(encoding: str, fraction: float) -> None:
    body = ENCODERS[encoding](DATA)
    cut = max(1, int(len(body) * fraction))
    with pytest.raises(InvalidDataError):
        decompress(encoding, body[:cut], 10 * len(DATA))


@pytest.mark.parametrize("encoding", ["gzip", "zstd"])
def test_truncated_by_one_byte_is_invalid(encoding: str) -> None:
    body = ENCODERS[encoding](DATA)
    with pytest.raises(InvalidDataError):
        decompress(encoding, body[:-1], 10 * len(DATA))


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "zstd"])
def test_garbage_is_invalid(encoding: str) -> None:
    with pytest.raises(InvalidDataError):
        decompress(encoding, b"this is not compressed at all", 1000)


@pytest.mark.parametrize("encoding", ["gzip", "zstd"])
def test_trailing_garbage_is_invalid(encoding: str) -> None:
    with pytest.raises(InvalidDataError):
        decompress(encoding, ENCODERS[encoding](DATA) + b"junk", 10 * len(DATA))


def test_corrupt_gzip_checksum_is_invalid() -> None:
    body = bytearray(gzip.compress(DATA))
    body[-8] ^= 0xFF  # CRC32
    with pytest.raises(InvalidDataError):
        decompress("gzip", bytes(body), 10 * len(DATA))


@pytest.mark.parametrize("encoding", ["br", "lz4", "snappy", "gzip, br"])
def test_unknown_encoding_is_unsupported(encoding: str) -> None:
    with pytest.raises(UnsupportedEncoding) as err:
        decompress(encoding, b"", 10)
    assert err.value.encoding == encoding.strip().lower()
