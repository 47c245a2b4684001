"""Trailhouse: a self-hosted audit trail that speaks Alibaba Cloud ActionTrail's OpenAPI."""

from __future__ import annotations

__all__ = ["__version__", "package_version"]


def package_version() -> str:
    """The installed distribution's version: what ``pip`` installed is what ``--version`` reports."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("trailhouse")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0.1.0+unknown"


__version__ = package_version()
