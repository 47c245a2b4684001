"""Trailhouse: a self-hosted audit trail that speaks Alibaba Cloud ActionTrail's OpenAPI."""

__version__ = "0.1.0"
