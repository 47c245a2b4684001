"""A V1-signed LookupEvents query string, as aliyun-python-sdk-core would send it, for gateway tests."""

from __future__ import annotations

import time
import uuid

from trailhouse.api.rpc.signature import percent_encode, v1_signature, v1_string_to_sign
from trailhouse.service.credentials import NewAccessKey


def signed_query(key: NewAccessKey, **extra: str) -> bytes:
    params = {
        "Action": "LookupEvents",
        "Version": "2020-07-06",
        "Format": "JSON",
        "AccessKeyId": key.key.access_key_id,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": uuid.uuid4().hex,
        "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **extra,
    }
    params["Signature"] = v1_signature(key.secret, v1_string_to_sign("GET", params))
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in params.items()).encode()
