"""A loopback TCP proxy the test controls, to cut a process off from a server without touching either.

Modes (`TcpProxy.set_mode`):
- `pass`: bytes flow both ways.
- `drop`: open connections are reset (TCP RST) and new ones are reset as soon as they are accepted,
  as when a host or a firewall rejects traffic.
- `blackhole`: connections are accepted but nothing is forwarded; bytes in flight are held and
  delivered once the mode changes, as TCP retransmits them after a partition heals.
- `delay`: each chunk waits `delay_ms` in each direction.

The proxy runs its own event loop in a thread: the test's loop may block, the proxy goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from types import TracebackType
from typing import Literal, Self

Mode = Literal["pass", "drop", "blackhole", "delay"]
_CHUNK = 64 * 1024


def _reset(writer: asyncio.StreamWriter) -> None:
    """Closes with a TCP RST (SO_LINGER 0), so the peer sees ECONNRESET, not a clean end."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class TcpProxy:
    """Listens on 127.0.0.1 (a free port) and forwards to `target` (`host:port`); a context manager."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self._target = (host, int(port))
        self.mode: Mode = "pass"
        self.delay_ms = 0.0
        self.connections_accepted = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._flowing: asyncio.Event | None = None
        self._open: set[asyncio.StreamWriter] = set()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=10)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def set_mode(self, mode: Mode, delay_ms: float = 0.0) -> None:
        """Switches mode; returns once open connections are reset (`drop`) or held (`blackhole`)."""
        asyncio.run_coroutine_threadsafe(self._switch(mode, delay_ms), self._loop).result(timeout=10)

    async def _switch(self, mode: Mode, delay_ms: float) -> None:
        assert self._flowing is not None
        self.mode, self.delay_ms = mode, delay_ms
        if mode == "blackhole":
            self._flowing.clear()
        else:
            self._flowing.set()
        if mode == "drop":
            for writer in list(self._open):
                _reset(writer)
            self._open.clear()

    async def _listen(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()
        tasks = [t for t in asyncio.all_tasks(self._loop) if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        # Cancelled only when the proxy closes: asyncio would log a cancelled connection handler.
        with contextlib.suppress(asyncio.CancelledError):
            await self._connect(client_reader, client_writer)

    async def _connect(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        assert self._flowing is not None
        self.connections_accepted += 1
        if self.mode == "drop":
            _reset(client_writer)
            return
        self._open.add(client_writer)
        await self._flowing.wait()  # a blackholed connection is accepted, never connected through
        try:
            server_reader, server_writer = await asyncio.open_connection(*self._target)
        except OSError:
            self._open.discard(client_writer)
            _reset(client_writer)
            return
        if client_writer not in self._open:  # dropped while connecting
            _reset(server_writer)
            return
        self._open.add(server_writer)
        await asyncio.gather(
            self._pump(client_reader, server_writer, client_writer),
            self._pump(server_reader, client_writer, server_writer),
        )
        for end in (client_writer, server_writer):
            self._open.discard(end)
            end.transport.abort()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, other: asyncio.StreamWriter
    ) -> None:
        """One direction: an end is passed on (half-close), a reset ends both directions."""
        assert self._flowing is not None
        try:
            while data := await reader.read(_CHUNK):
                if self.mode == "delay" and self.delay_ms:
                    await asyncio.sleep(self.delay_ms / 1000)
                await self._flowing.wait()  # held, not lost, while blackholed
                if writer not in self._open:
                    return
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            writer.transport.abort()
            other.transport.abort()
