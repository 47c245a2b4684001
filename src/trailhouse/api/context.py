"""The long-lived services every request of one app may use, on either wire."""

from __future__ import annotations

from dataclasses import dataclass

from ..service.ingest_pool import BatchDecoder
from ..service.integrity.note import Signer
from ..service.pagetoken import PageTokens
from ..service.trails import BucketProbe
from ..settings import Settings
from ..storage.base import EventStore

__all__ = ["Services"]


@dataclass(frozen=True, slots=True)
class Services:
    """Long-lived parts shared by every request of one app (no module-level state anywhere)."""

    settings: Settings
    store: EventStore
    page_tokens: PageTokens
    #: Signs the Merkle log's checkpoints (service/integrity); None where no log is kept.
    log_signer: Signer | None = None
    #: Where trails' OSS buckets are (the delivery layer's object storage); None: not configured.
    buckets: BucketProbe | None = None
    #: Decodes ``POST /api/v1/events`` batches in worker processes; None: in this process.
    decoder: BatchDecoder | None = None
