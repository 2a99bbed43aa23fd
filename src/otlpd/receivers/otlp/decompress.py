"""Request bodies in gzip, deflate (zlib or raw) and zstd, bounded *while* inflating.

Output never exceeds ``limit + 1`` bytes (zstd: the limit plus at most ~2 MiB)
in memory, whatever the compression ratio, so a bomb costs about the limit,
not its inflated size. A truncated body is an error, never a silent prefix.
"""

from __future__ import annotations

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
    # A zstd block inflates to at most 128 KiB and takes at least 4 bytes, so feeding
    # the input in steps of ``remaining / 32 KiB`` bytes keeps each step's output
    # near the remaining budget. Unlike a stream reader, a decompression object
    # says whether the frame ended, so a truncated body is an error, not a prefix.
    out = bytearray()
    view = memoryview(body)
    pos = 0
    dctx = zstandard.ZstdDecompressor()
    try:
        while pos < len(view):
            frame = dctx.decompressobj()
            while not frame.eof:
                if pos >= len(view):
                    raise InvalidDataError("truncated zstd body")
                step = max(64, min(_CHUNK, (limit + 1 - len(out)) >> 15))
                chunk = view[pos : pos + step]
                pos += len(chunk)
                out += frame.decompress(chunk)
                if len(out) > limit:
                    return bytes(out)
            pos -= len(frame.unused_data)  # several frames may follow each other
    except zstandard.ZstdError as exc:
        raise InvalidDataError(f"invalid zstd body: {exc}") from None
    return bytes(out)
