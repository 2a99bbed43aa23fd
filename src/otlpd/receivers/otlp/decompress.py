"""Request bodies in gzip, deflate (zlib or raw) and zstd, bounded *while* inflating.

Output never exceeds ``limit + 1`` bytes in memory, whatever the compression
ratio, so a gzip bomb costs at most the limit, not its inflated size.
"""

from __future__ import annotations

import io
import zlib

import zstandard

from otlpd.errors import InvalidDataError, TooLargeError

_CHUNK = 256 * 1024


def decompress(encoding: str, body: bytes, limit: int) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        data = body
    elif encoding in ("gzip", "x-gzip"):
        data = _zlib(body, zlib.MAX_WBITS | 16, limit)
    elif encoding in ("deflate", "zlib"):
        try:
            data = _zlib(body, zlib.MAX_WBITS, limit)
        except InvalidDataError:  # some clients send raw deflate without the zlib header
            data = _zlib(body, -zlib.MAX_WBITS, limit)
    elif encoding == "zstd":
        data = _zstd(body, limit)
    else:
        raise UnsupportedEncoding(encoding)
    if len(data) > limit:
        raise TooLargeError(f"request body exceeds the limit of {limit} bytes after decompression")
    return data


class UnsupportedEncoding(Exception):
    def __init__(self, encoding: str) -> None:
        super().__init__(encoding)
        self.encoding = encoding


def _zlib(body: bytes, wbits: int, limit: int) -> bytes:
    out = bytearray()
    pending = body
    try:
        while pending:
            inflater = zlib.decompressobj(wbits)
            data = pending
            while data:
                out += inflater.decompress(data, limit + 1 - len(out))
                if len(out) > limit:
                    return bytes(out)
                data = inflater.unconsumed_tail
            while not inflater.eof:  # input consumed, but zlib may still hold output
                chunk = inflater.decompress(b"", limit + 1 - len(out))
                if not chunk:
                    break
                out += chunk
                if len(out) > limit:
                    return bytes(out)
            if not inflater.eof:
                raise InvalidDataError("truncated compressed body")
            pending = inflater.unused_data  # gzip allows several members back to back
    except zlib.error as exc:
        raise InvalidDataError(f"invalid compressed body: {exc}") from None
    return bytes(out)


def _zstd(body: bytes, limit: int) -> bytes:
    try:
        reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(body), read_across_frames=True)
        out = bytearray()
        while len(out) <= limit:
            chunk = reader.read(min(_CHUNK, limit + 1 - len(out)))
            if not chunk:
                break
            out += chunk
        return bytes(out)
    except zstandard.ZstdError as exc:
        raise InvalidDataError(f"invalid zstd body: {exc}") from None
