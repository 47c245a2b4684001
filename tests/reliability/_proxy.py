"""A TCP proxy on 127.0.0.1 between a server and its database, switched on command between
forwarding, refusing and blackholing, for outages that a test controls."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

from tests.conftest import free_port

__all__ = ["TcpProxy"]


class TcpProxy:
    """A TCP proxy on 127.0.0.1 in front of a database, for outages on command.

    * ``forward()``: pass bytes both ways (stalled connections resume where they stopped);
    * ``refuse()``: close every open connection, and close new ones as soon as they arrive;
    * ``stall()`` (``blackhole()``): accept and keep every connection open but pass nothing, like a
      network that drops packets.
    """

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.mode = "forward"
        self._loop = asyncio.new_event_loop()
        self._resume: asyncio.Event | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.AbstractServer | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            # An unclosed loop leaks its self-pipe socket; its ResourceWarning then fails whichever
            # later test the garbage collector happens to run in.
            self._loop.close()

    async def _listen(self) -> None:
        self._resume = asyncio.Event()
        self._resume.set()
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port)

    async def _shutdown(self) -> None:
        assert self._server is not None and self._resume is not None
        self._server.close()
        self._resume.set()
        self._close_all()

    def _close_all(self) -> None:
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self._writers.clear()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._resume is not None
        if self.mode == "refuse":
            writer.transport.abort()
            return
        self._writers.add(writer)
        try:
            await self._resume.wait()
            if self.mode == "refuse":
                return
            up_reader, up_writer = await asyncio.open_connection(*self.target)
            self._writers.add(up_writer)
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for w in (writer,):
                with contextlib.suppress(Exception):
                    w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._resume is not None
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                await self._resume.wait()  # a stall holds the bytes here
                writer.write(data)
                await writer.drain()
        except (OSError, ConnectionError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.transport.abort()

    def _set(self, mode: str) -> None:
        def apply() -> None:
            assert self._resume is not None
            self.mode = mode
            if mode == "forward":
                self._resume.set()
            else:
                self._resume.clear()
            if mode == "refuse":
                self._close_all()

        self._loop.call_soon_threadsafe(apply)
        time.sleep(0.05)

    def forward(self) -> None:
        self._set("forward")

    def refuse(self) -> None:
        self._set("refuse")

    def stall(self) -> None:
        self._set("stall")

    #: Accept, and never forward a byte: what a host that drops packets looks like.
    blackhole = stall
