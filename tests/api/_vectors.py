"""Captured SDK requests (tests/data/captures), loaded as plain values for the wire-layer tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

CAPTURES = Path(__file__).resolve().parent.parent / "data" / "captures"
SECRET = "testsecret"


@dataclass(frozen=True)
class Captured:
    index: int
    method: str
    raw_query: str
    headers: dict[str, str]  # lower-case names, repeats joined with ","
    body: bytes

    @property
    def authorization(self) -> str:
        return self.headers.get("authorization", "")


def _headers(pairs: list[list[str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in pairs:
        n = name.lower()
        out[n] = f"{out[n]},{value}" if n in out else value
    return out


@cache
def captured() -> tuple[Captured, ...]:
    rows = []
    with (CAPTURES / "requests.jsonl").open(encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            d = json.loads(line)
            rows.append(Captured(i, d["method"], d["raw_query"], _headers(d["headers"]), d["body"].encode()))
    return tuple(rows)


def rsa_test_key() -> str:
    return (CAPTURES / "rsa1024_test_key.pem").read_text()


def rsa_test_public_key() -> str:
    from cryptography.hazmat.primitives import serialization

    private = serialization.load_pem_private_key(rsa_test_key().encode(), password=None)
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
