"""The h2 client when a server answers before it has read the whole request.

A gRPC server may finish a call before the request body is in (a size limit,
an error found in the headers, an auth failure). The client must then stop
sending that body and reset its half of the stream (RST_STREAM NO_ERROR after
a complete response, RFC 9113 section 8.1): otherwise the stream keeps one
of the server's ``max_concurrent_streams`` slots for the life of the
connection and the next call waits for a slot forever.

The peer is a real HTTP/2 server on a socket (``h2``, server side) that
allows one stream at a time, never grants flow-control credit (so the client
is stuck mid-body when the answer comes), and records the frames it gets.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import pytest

from otlpd.errors import RetryableError
from otlpd.exporters.otlp import h2client

BODY = b"x" * (1 << 20)  # far more than the 64 KiB default window: the client is mid-body when answered


@dataclass
class Seen:
    requests: int = 0
    data_bytes: int = 0
    client_ended: int = 0  # requests whose END_STREAM arrived (the whole body was sent)
    resets: list[h2.errors.ErrorCodes | int] = field(default_factory=list)


class EarlyAnswer(asyncio.Protocol):
    """Answers every request as soon as its headers arrive, with ``grpc-status: <status>``."""

    def __init__(self, seen: Seen, status: int | None) -> None:
        self.seen, self.status = seen, status
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.h2.initiate_connection()
        self.h2.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 1})
        transport.write(self.h2.data_to_send())

    def data_received(self, data: bytes) -> None:
        for event in self.h2.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                self.seen.requests += 1
                self.answer(event.stream_id)
            elif isinstance(event, h2.events.DataReceived):
                self.seen.data_bytes += len(event.data)  # never acknowledged: no credit for more
            elif isinstance(event, h2.events.StreamEnded):
                self.seen.client_ended += 1
            elif isinstance(event, h2.events.StreamReset):
                self.seen.resets.append(event.error_code)
        assert self.transport is not None
        self.transport.write(self.h2.data_to_send())

    def answer(self, stream_id: int) -> None:
        head = [(":status", "200"), ("content-type", "application/grpc")]
        if self.status is None:  # the server refuses the stream outright
            self.h2.reset_stream(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
        elif self.status == 0:  # a full response: headers, one empty message, trailers
            self.h2.send_headers(stream_id, head)
            self.h2.send_data(stream_id, h2client.frame(b"", compressed=False))
            self.h2.send_headers(stream_id, [("grpc-status", "0")], end_stream=True)
        else:  # trailers-only
            trailers = [("grpc-status", str(self.status)), ("grpc-message", "no")]
            self.h2.send_headers(stream_id, head + trailers, end_stream=True)


@contextlib.asynccontextmanager
async def early_peer(status: int | None) -> AsyncIterator[tuple[h2client.H2Channel, Seen]]:
    seen = Seen()
    server = await asyncio.get_running_loop().create_server(lambda: EarlyAnswer(seen, status), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    channel = h2client.H2Channel(
        "127.0.0.1",
        port,
        ssl_context=None,
        server_hostname=None,
        authority=f"127.0.0.1:{port}",
        max_recv=4 << 20,
        wait_for_ready=False,
        metadata=[],
        timeout=10.0,
    )
    try:
        yield channel, seen
    finally:
        await channel.close()
        server.close()
        await server.wait_closed()


async def settle(seen: Seen, resets: int) -> None:
    for _ in range(100):
        if len(seen.resets) >= resets:
            return
        await asyncio.sleep(0.01)


async def test_an_early_ok_resets_the_stream_and_the_next_call_gets_the_slot() -> None:
    async with early_peer(0) as (channel, seen):
        for _ in range(3):  # one stream at a time: each call needs the previous one's slot
            assert await asyncio.wait_for(channel.unary("/svc/Export", BODY), 5) == b""
        await settle(seen, 3)
    assert seen.requests == 3
    assert seen.resets == [h2.errors.ErrorCodes.NO_ERROR] * 3
    assert seen.client_ended == 0
    assert seen.data_bytes <= 65_535  # the first window only: nothing pushed after the answer


async def test_an_early_error_resets_the_stream_and_the_next_call_gets_the_slot() -> None:
    async with early_peer(8) as (channel, seen):
        for _ in range(3):
            with pytest.raises(h2client.CallError) as info:
                await asyncio.wait_for(channel.unary("/svc/Export", BODY), 5)
            assert info.value.code.name == "RESOURCE_EXHAUSTED"
        await settle(seen, 3)
    assert seen.requests == 3
    assert seen.resets == [h2.errors.ErrorCodes.NO_ERROR] * 3
    assert seen.client_ended == 0


async def test_a_stream_the_server_reset_is_not_reset_again() -> None:
    async with early_peer(None) as (channel, seen):
        for _ in range(2):
            with pytest.raises(RetryableError, match="reset the stream"):
                await asyncio.wait_for(channel.unary("/svc/Export", BODY), 5)
        await asyncio.sleep(0.1)
    assert seen.requests == 2
    assert seen.resets == []
    assert seen.client_ended == 0
