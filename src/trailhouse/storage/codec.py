"""How an event's JSON body is packed in the store.

Events are ~1 KB of JSON whose keys and many values repeat from event to event; zlib primed with
a dictionary of that common text packs them to well under half without any cross-row state, so
each row still decodes on its own. The first byte names the scheme so the layout can evolve
without rewriting old rows.
"""

from __future__ import annotations

import zlib

__all__ = ["pack", "unpack"]

_RAW = 0
_ZLIB_V1 = 1

# Text that recurs in ActionTrail events; zlib looks back into it as if it preceded every body.
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


def pack(body: bytes) -> bytes:
    compressor = zlib.compressobj(level=1, zdict=_ZDICT_V1)
    packed = compressor.compress(body) + compressor.flush()
    if len(packed) + 1 >= len(body) + 1:
        return bytes((_RAW,)) + body
    return bytes((_ZLIB_V1,)) + packed


def unpack(stored: bytes) -> bytes:
    scheme = stored[0]
    if scheme == _ZLIB_V1:
        decompressor = zlib.decompressobj(zdict=_ZDICT_V1)
        return decompressor.decompress(stored[1:]) + decompressor.flush()
    if scheme == _RAW:
        return bytes(stored[1:])
    raise ValueError(f"unknown body packing scheme {scheme}")
