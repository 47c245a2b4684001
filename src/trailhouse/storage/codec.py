"""How an event's JSON body is packed in the store.

Events are ~1 KB of JSON whose keys and many values repeat from event to event. zstd with a
dictionary trained on ActionTrail events (``data/zstd_dict_v1.bin``, see
scripts/train_zstd_dict.py) packs one to ~15–25 % of its size in a few microseconds, and each row
still decodes on its own. The first byte names the scheme, so the layout can evolve without
rewriting old rows: 0 raw, 1 zlib with a preset dictionary (the first layout, still read), 2 zstd
with dictionary v1.
"""

from __future__ import annotations

import logging
import threading
import zlib
from functools import cache
from importlib import resources

import zstandard

__all__ = ["pack", "try_unpack", "unpack"]

log = logging.getLogger("trailhouse.storage")

_RAW = 0
_ZLIB_V1 = 1
_ZSTD_V1 = 2
_LEVEL = 3

# The zlib scheme's preset dictionary: kept so rows written with it still decode.
_ZDICT_V1 = (
    b'"userIdentity":{"type":"ram-user","accountId":"","principalId":"","userName":"",'
    b'"accessKeyId":"LTAI","sessionContext":{"attributes":{"mfaAuthenticated":"false","creationDate":""}}},'
    b'"type":"assumed-role","type":"root-account","STS.'
    b'"eventId":"","eventVersion":1,"eventTime":"T:00Z","eventName":"Describe","eventSource":".aliyuncs.com",'
    b'"eventType":"ApiCall","eventType":"ConsoleSignin","eventRW":"Read","eventRW":"Write",'
    b'"eventCategory":"Management","serviceName":"Ecs","apiVersion":"","acsRegion":"cn-hangzhou",'
    b'"isGlobal":false,"requestId":"","requestParameters":{"AcsHost":"","AcsProduct":"","HostId":"",'
    b'"RequestId":"","RegionId":"cn-hangzhou"},"responseElements":{"RequestId":""},'
    b'"referencedResources":{"ACS::ECS::Instance":["i-"]},"resourceType":"","resourceName":"",'
    b'"errorCode":"","errorMessage":"","sourceIpAddress":"","userAgent":"AlibabaCloud (Linux; x86_64) '
    b'Python/3 Core/ TeaDSL/2","additionalEventData":{"Scheme":"https","CallerBid":""},'
    b'"vpcId":"vpc-","recipientAccountId":""}'
)


@cache
def _dictionary() -> zstandard.ZstdCompressionDict:
    data = resources.files("trailhouse").joinpath("data/zstd_dict_v1.bin").read_bytes()
    dictionary = zstandard.ZstdCompressionDict(data)
    dictionary.precompute_compress(level=_LEVEL)
    return dictionary


class _Contexts(threading.local):
    """zstd contexts are not thread-safe and cost ~15 µs to build: one pair per thread, reused.

    The only process-wide state here is this cache of immutable configuration, like ``re``'s.
    """

    def __init__(self) -> None:
        self.compressor = zstandard.ZstdCompressor(
            dict_data=_dictionary(), write_checksum=False, write_dict_id=False, write_content_size=True
        )
        self.decompressor = zstandard.ZstdDecompressor(dict_data=_dictionary())


_contexts = _Contexts()


def pack(body: bytes) -> bytes:
    packed = _contexts.compressor.compress(body)
    if len(packed) >= len(body):
        return bytes((_RAW,)) + body
    return bytes((_ZSTD_V1,)) + packed


def try_unpack(stored: bytes) -> bytes | None:
    """The body, or None when it cannot be unpacked (damaged, or packed by a scheme this version
    does not know), which is logged: for the checks that must not fail on one row."""
    try:
        return unpack(stored)
    except (ValueError, IndexError, zstandard.ZstdError, zlib.error) as exc:
        log.warning("a stored event body cannot be read (%s): it matches no eventId or requestId", exc)
        return None


def unpack(stored: bytes) -> bytes:
    scheme = stored[0]
    if scheme == _ZSTD_V1:
        return _contexts.decompressor.decompress(bytes(stored[1:]))
    if scheme == _RAW:
        return bytes(stored[1:])
    if scheme == _ZLIB_V1:
        decompressor = zlib.decompressobj(zdict=_ZDICT_V1)
        return decompressor.decompress(stored[1:]) + decompressor.flush()
    raise ValueError(f"unknown body packing scheme {scheme}")
