"""The SLS destination in a self-hosted world: NATS JetStream.

A trail's ``SlsProjectArn`` (``acs:log:<region>:<uid>:project/<name>``) names a project; each
project is one JetStream stream named after it (SLS project names are unique, and their letters,
digits and hyphens are valid stream names), and the trail's logstore ``actiontrail_<trail>`` is
the last token of the subject ``<project>.actiontrail_<trail>``. A record is shaped like the log
ActionTrail writes to SLS: ``__topic__`` ``actiontrail_audit_event``, ``__source__``,
``__time__`` (the event's time in seconds) and ``event``, the event's JSON text as ingested.

Every record carries ``Nats-Msg-Id`` = ``<account>:<trail>:<seq>``, so a record published twice
within the stream's duplicate window is stored once; beyond the window, the engine asks the stream
for the subject's last record before it resumes (``last_delivered_seq``), so a crash between a
publish and the checkpoint never publishes a record twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["StreamError", "StreamPublisher", "StreamTarget", "parse_project_arn", "record_bytes"]

TOPIC = "actiontrail_audit_event"
_PROJECT_ARN = re.compile(r"^acs:log:[a-z0-9-]*:\d*:project/([a-z0-9][a-z0-9-]{1,61}[a-z0-9])$")
#: How long the stream remembers a Nats-Msg-Id (JetStream's default is 2 minutes).
DUPLICATE_WINDOW_S = 600.0


class StreamError(Exception):
    """The stream server could not be reached or refused a record; the message says which."""


def parse_project_arn(arn: str) -> str | None:
    """The project name of ``acs:log:<region>:<uid>:project/<name>``, else None."""
    m = _PROJECT_ARN.match(arn.strip())
    return m.group(1) if m else None


@dataclass(frozen=True, slots=True)
class StreamTarget:
    """Where one trail's records go."""

    stream: str
    subject: str

    @classmethod
    def for_trail(cls, project_arn: str, trail_name: str) -> StreamTarget | None:
        project = parse_project_arn(project_arn)
        if project is None:
            return None
        return cls(project, f"{project}.actiontrail_{trail_name}")


def message_id(account_id: str, trail_name: str, seq: int) -> str:
    return f"{account_id}:{trail_name}:{seq}"


def seq_of_message_id(msg_id: str) -> int | None:
    _, _, seq = msg_id.rpartition(":")
    return int(seq) if seq.isdigit() else None


def record_bytes(body: bytes, event_time_ms: int) -> bytes:
    """The SLS-shaped record of one event (``event`` holds the stored text exactly)."""
    return orjson.dumps(
        {
            "__topic__": TOPIC,
            "__source__": "actiontrail",
            "__time__": event_time_ms // 1000,
            "event": body.decode(),
        }
    )


class StreamPublisher:
    """One connection to the NATS servers, opened on first use and re-opened after a failure."""

    def __init__(self, servers: str, *, timeout_s: float = 5.0) -> None:
        self.servers = [s.strip() for s in servers.split(",") if s.strip()]
        self.timeout_s = timeout_s
        self._nc: Any = None
        self._js: Any = None
        self._streams: set[str] = set()

    async def _context(self) -> Any:
        if self._nc is not None and self._nc.is_connected:
            return self._js
        await self.close()
        import nats

        try:
            self._nc = await nats.connect(
                servers=self.servers,
                connect_timeout=self.timeout_s,
                allow_reconnect=False,
                max_reconnect_attempts=0,
            )
        except Exception as exc:  # noqa: BLE001 - nats raises OSError, TimeoutError, NoServersError…
            self._nc = None
            raise StreamError(f"NATS at {', '.join(self.servers)}: {type(exc).__name__}: {exc}") from None
        self._js = self._nc.jetstream(timeout=self.timeout_s)
        self._streams.clear()
        return self._js

    async def _ensure_stream(self, js: Any, target: StreamTarget) -> None:
        if target.stream in self._streams:
            return
        from nats.js.api import StreamConfig
        from nats.js.errors import NotFoundError

        try:
            await js.stream_info(target.stream)
        except NotFoundError:
            await js.add_stream(
                StreamConfig(
                    name=target.stream,
                    subjects=[f"{target.stream}.>"],
                    duplicate_window=DUPLICATE_WINDOW_S,
                    description="Trailhouse trail delivery (an SLS project)",
                )
            )
        self._streams.add(target.stream)

    async def last_delivered_seq(self, target: StreamTarget) -> int | None:
        """The log seq of the subject's last record, from its Nats-Msg-Id (None: no record)."""
        from nats.js.errors import NotFoundError

        js = await self._guarded_context()
        try:
            await self._ensure_stream(js, target)
            msg = await js.get_last_msg(target.stream, target.subject)
        except NotFoundError:
            return None
        except Exception as exc:  # noqa: BLE001
            await self.close()
            raise StreamError(f"stream {target.stream}: {type(exc).__name__}: {exc}") from None
        headers = msg.headers or {}
        msg_id = headers.get("Nats-Msg-Id", "")
        return seq_of_message_id(str(msg_id))

    async def _guarded_context(self) -> Any:
        return await self._context()

    async def publish(self, target: StreamTarget, records: list[tuple[str, bytes]]) -> int:
        """Publish ``(msg_id, payload)`` records in order and wait for every acknowledgement;
        how many the stream stored as new (the others were duplicates it dropped)."""
        js = await self._guarded_context()
        try:
            await self._ensure_stream(js, target)
            futures = [
                await js.publish_async(target.subject, payload, headers={"Nats-Msg-Id": msg_id})
                for msg_id, payload in records
            ]
            acks = await asyncio.wait_for(asyncio.gather(*futures), self.timeout_s * 2)
        except Exception as exc:  # noqa: BLE001
            await self.close()
            raise StreamError(f"stream {target.stream}: {type(exc).__name__}: {exc}") from None
        return sum(1 for ack in acks if not ack.duplicate)

    async def check(self, target: StreamTarget) -> bool:
        """Whether the stream can be reached and exists or can be created (SlsLogStoreStatus)."""
        try:
            js = await self._guarded_context()
            await self._ensure_stream(js, target)
        except Exception:  # noqa: BLE001
            await self.close()
            return False
        return True

    async def close(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None:
            with contextlib.suppress(Exception):  # already broken: nothing to close cleanly
                await nc.close()
