"""Strict query parameters for the native API: a name an endpoint does not know is a 400.

Ignoring it would be worse than failing: ``?AccessKeyId=X`` on a search (the wire spelling of
another API) would answer with every event of the account, as if the filter had matched.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable

from ..wire import has_nul
from .errors import InvalidParameter, UnknownParameter

__all__ = ["check_params"]

#: Spellings from the ActionTrail OpenAPI and other tools, and what the native API calls them.
ALIASES = {
    "accesskeyid": "EventAccessKeyId",
    "accesskey": "EventAccessKeyId",
    "username": "User",
    "sourceip": "SourceIpAddress",
    "ip": "SourceIpAddress",
    "starttime": "start",
    "endtime": "end",
    "maxresults": "limit",
    "pagesize": "limit",
    "nexttoken": "cursor",
    "accountid": "account",
}


def _suggestion(name: str, allowed: Collection[str]) -> str | None:
    folded = {a.casefold(): a for a in allowed}
    key = name.casefold()
    if key in folded:
        return folded[key]
    alias = ALIASES.get(key.replace("_", "").replace("-", ""))
    if alias in allowed:
        return alias
    close = difflib.get_close_matches(key, list(folded), n=1, cutoff=0.6)
    return folded[close[0]] if close else None


def check_params(
    pairs: Iterable[tuple[str, str]],
    allowed: Collection[str],
    *,
    families: Collection[str] = (),
    listed: Collection[str] | None = None,
) -> None:
    """Raise UnknownParameter for the first name not in ``allowed``.

    A name whose part before the first dot is in ``families`` passes (``EventName.fuzzy``): the
    search explains a bad modifier better than "unknown". ``listed`` is what the message offers as
    the valid names, when ``allowed`` is too long to read.
    """
    for name, value in pairs:
        if has_nul(name) or has_nul(value):
            raise InvalidParameter(f"{name!r}: parameters may not contain NUL characters")
        if name in allowed or name.partition(".")[0] in families:
            continue
        valid = sorted(listed if listed is not None else allowed)
        hint = _suggestion(name, allowed)
        message = f"{name} is not a parameter of this endpoint"
        if hint:
            message += f"; did you mean {hint}?"
        message += f" Valid parameters: {', '.join(valid)}"
        raise UnknownParameter(message, parameter=name, validParameters=valid)
