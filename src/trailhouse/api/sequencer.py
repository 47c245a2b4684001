"""The Merkle log's sequencer as a background task of ``serve`` (the hashing is service/integrity).

It polls often enough that a signed checkpoint covers every acknowledged event within a second,
and runs the store work in a thread. Every process runs it; a lease in the store lets one of them
do the work (another takes over within LEASE_MS when it stops), and the store's watermark check
keeps the log right even if two ever sequence at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid

from ..model.times import now_ms
from ..service.integrity.log import FILL_BATCH, SEQUENCE_BATCH, SEQUENCE_PAUSE_S, fill_interiors, sequence
from ..service.integrity.note import Signer
from ..storage.base import EventStore, StoreError
from .bounded import run_in_background

__all__ = ["POLL_S", "sequence_forever"]

error_log = logging.getLogger("trailhouse.error")

#: Between two looks at the log when a step found it up to date or caught up (took less than a
#: full batch): well inside the one-second promise (see SEQUENCE_PAUSE_S).
POLL_S = SEQUENCE_PAUSE_S
#: After a store failure (busy, unreachable): the next round tries again.
RETRY_S = 1.0


#: How long a sequencer's lease lasts without renewal: another node takes over after it.
LEASE_MS = 5000


def _sequence_if_leased(store: EventStore, signer: Signer, owner: str) -> int:
    if not store.log_claim(owner=owner, now_ms=now_ms(), lease_ms=LEASE_MS):
        return 0  # another process or node sequences: it holds the lease
    return sequence(store, signer, now_ms)


async def sequence_forever(store: EventStore, signer: Signer) -> None:
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    # A store from before tile interiors were kept gets them while the log is idle, a few at a time.
    interiors_done = False
    while True:
        try:
            done = await run_in_background(_sequence_if_leased, store, signer, owner, stop_on_cancel=False)
        except StoreError as exc:
            error_log.warning("log sequencer: %s", exc)
            await asyncio.sleep(RETRY_S)
            continue
        except Exception:  # never let the task die silently: the log would stop growing
            error_log.exception("log sequencer failed")
            await asyncio.sleep(RETRY_S)
            continue
        if done < SEQUENCE_BATCH:
            if not interiors_done:
                try:
                    interiors_done = (
                        await run_in_background(fill_interiors, store, stop_on_cancel=False) < FILL_BATCH
                    )
                except StoreError as exc:
                    error_log.warning("log sequencer: filling tile interiors: %s", exc)
            await asyncio.sleep(POLL_S)
