"""A stable colour per source IP: the same address has the same colour in every report."""

from __future__ import annotations

import hashlib

__all__ = ["OTHER_COLOUR", "ip_colour"]

OTHER_COLOUR = "#8c959f"


def ip_colour(ip: str) -> str:
    """A colour from a hash of the address, not from its rank, which changes between reports.

    Any of 360 hues at one of three lightnesses: two IPs rarely look alike, and every colour reads
    on white. (A palette of a dozen colours would give two IPs of one report the same colour often.)
    """
    if not ip:
        return OTHER_COLOUR
    digest = hashlib.sha256(ip.encode()).digest()
    hue = int.from_bytes(digest[:2], "big") % 360
    lightness = (32, 42, 52)[digest[2] % 3]
    return f"hsl({hue} 70% {lightness}%)"
