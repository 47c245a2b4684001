"""The Merkle log's sequencer as a background task of ``serve`` (the hashing is service/integrity).

It polls often enough that a signed checkpoint covers every acknowledged event within a second,
and runs the store work in a thread. Every node runs it; the store lets one sequence at a time,
so a second node only waits its turn (and takes over when the first stops).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.concurrency import run_in_threadpool

from ..model.times import now_ms
from ..service.integrity.log import sequence
from ..service.integrity.note import Signer
from ..storage.base import EventStore, StoreError

__all__ = ["POLL_S", "sequence_forever"]

error_log = logging.getLogger("trailhouse.error")

#: Between two looks at the log when it was up to date: well inside the one-second promise.
POLL_S = 0.1
#: After a store failure (busy, unreachable): the next round tries again.
RETRY_S = 1.0


async def sequence_forever(store: EventStore, signer: Signer) -> None:
    while True:
        step = asyncio.ensure_future(run_in_threadpool(sequence, store, signer, now_ms))
        try:
            done = await asyncio.shield(step)
        except asyncio.CancelledError:
            # Shutting down: let the store call in its thread finish (one short transaction)
            # before the app closes the store under it.
            with contextlib.suppress(Exception):
                await step
            raise
        except StoreError as exc:
            error_log.warning("log sequencer: %s", exc)
            await asyncio.sleep(RETRY_S)
            continue
        except Exception:  # never let the task die silently: the log would stop growing
            error_log.exception("log sequencer failed")
            await asyncio.sleep(RETRY_S)
            continue
        if not done:
            await asyncio.sleep(POLL_S)
