"""The catalog of Alibaba Cloud service codes and their Chinese and English display names.

GetAccessKeyLastUsedProducts and GetAccessKeyLastUsedInfo report ``ServiceNameCn`` and
``ServiceNameEn`` beside the code an event carries in ``serviceName``. The names live in package
data (``trailhouse/data/services.json``) so they can be extended without touching code.
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import orjson

__all__ = ["CatalogError", "ServiceCatalog", "ServiceNames", "default_catalog"]


class CatalogError(ValueError):
    """The catalog data does not have the expected shape."""


@dataclass(frozen=True, slots=True)
class ServiceNames:
    """A service code as the caller spelled it, with its display names."""

    code: str
    name_cn: str
    name_en: str


@dataclass(frozen=True, slots=True)
class _Names:
    cn: str
    en: str


@dataclass(frozen=True, slots=True)
class ServiceCatalog:
    """Code → names, matched case-insensitively (events spell ``Actiontrail`` and ``ActionTrail``)."""

    by_code: Mapping[str, _Names]

    @classmethod
    def from_json(cls, data: bytes | str) -> ServiceCatalog:
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise CatalogError(f"service catalog is not JSON: {exc}") from None
        entries = doc.get("services") if isinstance(doc, dict) else None
        if not isinstance(entries, list):
            raise CatalogError("service catalog must be an object with a 'services' array")
        table: dict[str, _Names] = {}
        for index, entry in enumerate(entries):
            codes = entry.get("codes") if isinstance(entry, dict) else None
            if (
                not isinstance(codes, list)
                or not codes
                or not all(isinstance(c, str) and c for c in codes)
                or not isinstance(entry.get("cn"), str)
                or not isinstance(entry.get("en"), str)
            ):
                raise CatalogError(f"service catalog entry {index} needs codes (non-empty strings), cn, en")
            names = _Names(entry["cn"], entry["en"])
            for code in codes:
                key = code.casefold()
                if key in table:
                    raise CatalogError(f"service code {code!r} appears twice in the catalog")
                table[key] = names
        return cls(MappingProxyType(table))

    def names(self, code: str) -> ServiceNames:
        """The display names of ``code``; an unknown code stands for itself in both languages.

        Falling back to the code keeps ServiceNameCn/En meaningful (and non-empty) for services
        newer than the catalog, which is what a client rendering a table needs.
        """
        found = self.by_code.get(code.casefold())
        if found is None:
            return ServiceNames(code, code, code)
        return ServiceNames(code, found.cn, found.en)

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and code.casefold() in self.by_code

    def __len__(self) -> int:
        return len(self.by_code)


# Cached because the catalog is immutable package data (a read-only mapping): every caller shares
# one parsed copy instead of re-reading the file per request. Nothing can mutate it.
@functools.cache
def default_catalog() -> ServiceCatalog:
    """The catalog shipped with the package."""
    data = importlib.resources.files("trailhouse").joinpath("data", "services.json").read_bytes()
    return ServiceCatalog.from_json(data)
