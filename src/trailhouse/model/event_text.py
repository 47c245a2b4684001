"""An event as JSON text: made ready to store, read with every number kept exactly, validated.

Text comes in with lone surrogate escapes, whitespace and numbers no double holds; what is stored is
compact JSON that every reader accepts, and what is read back is that text's values, numbers as
spelled. Validation of the decoded structure is ``model.event``'s.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import msgspec
import orjson

from .event import MAX_DEPTH, EventInvalid, EventRecord, event_from_mapping, fast_record

__all__ = [
    "ODD_NUMBER_HINT",
    "compact_json",
    "depth_reason",
    "event_from_json",
    "malformed_json_reason",
    "may_hold_odd_number",
    "parse_body",
    "prepare_event_text",
    "replace_lone_surrogates",
    "too_deep",
]


def malformed_json_reason(data: bytes) -> str:
    """Why ``data`` (which msgspec refused) is not JSON, in orjson's words as in every other
    malformed-JSON message here."""
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return f"malformed JSON: {exc}"
    except RecursionError:
        return depth_reason()
    return "malformed JSON"


def depth_reason() -> str:
    return f"nested deeper than the limit of {MAX_DEPTH} levels"


# JSON text that may hold a number outside what a double or a 64-bit integer holds: 19+ digits in
# a row, or a three-digit exponent (what the regex ``ODD_NUMBER_HINT`` says). Strings can match too:
# they only take the exact, slower parse. The check runs on every event ingested and every body
# parsed, and the regex costs ~27 µs on a 1.1 KB event (digits are everywhere, so it tries at each);
# mapping the bytes onto four classes and looking for three substrings gives the same answer in ~8.
ODD_NUMBER_HINT = re.compile(rb"\d{19}|[eE][+-]?\d{3}")
_CLASSES = bytes(
    ord("0") if b in b"0123456789" else ord("e") if b in b"eE" else ord("+") if b in b"+-" else ord(" ")
    for b in range(256)
)
_DIGITS_19 = b"0" * 19


def may_hold_odd_number(data: bytes) -> bool:
    """True when ``data`` matches ``ODD_NUMBER_HINT``, found without the regex engine."""
    classes = data.translate(_CLASSES)
    return _DIGITS_19 in classes or b"e000" in classes or b"e+000" in classes


_SURROGATE_HINT = re.compile(rb"\\u[dD][89a-fA-F]")
# An escaped backslash (consumed first, so "\\\\ud800" is not an escape), a valid surrogate pair,
# or a lone surrogate escape.
_ESCAPES = re.compile(
    rb"\\\\|\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|\\u[dD][89a-fA-F][0-9a-fA-F]{2}"
)
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def replace_lone_surrogates(data: bytes) -> tuple[bytes, int]:
    """``data`` with each lone surrogate escape (``\\ud800``) replaced by ``\\ufffd``, and how many.

    No UTF-8 text can hold a lone surrogate, so no JSON reader agrees on one; U+FFFD is what
    decoders put where a character cannot be.
    """
    if _SURROGATE_HINT.search(data) is None:
        return data, 0
    count = 0

    def one(match: re.Match[bytes]) -> bytes:
        nonlocal count
        text = match.group()
        if len(text) != 6:
            return text
        count += 1
        return b"\\ufffd"

    return _ESCAPES.sub(one, data), count


def too_deep(data: bytes) -> bool:
    """Whether the arrays and objects of a JSON text nest deeper than MAX_DEPTH (brackets inside
    strings not counted). Counting brackets settles almost every event without a scan."""
    if data.count(b"[") + data.count(b"{") <= MAX_DEPTH:
        return False
    depth = 0
    for match in _TOKENS.finditer(data):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif token in (b"]", b"}"):
            depth -= 1
    return False


def compact_json(data: bytes) -> bytes:
    """The input with insignificant whitespace removed, or EventInvalid when it is not JSON."""
    try:
        return msgspec.json.format(data, indent=-1)
    except msgspec.DecodeError:
        raise EventInvalid(malformed_json_reason(data)) from None
    except RecursionError:
        raise EventInvalid(depth_reason()) from None


def prepare_event_text(data: bytes) -> tuple[bytes, tuple[str, ...]]:
    """One event's JSON text made ready to store: lone surrogate escapes replaced, compacted, depth
    checked; and the warnings that the replacing calls for. EventInvalid when it is not JSON."""
    text, replaced = replace_lone_surrogates(data)
    body = compact_json(text)
    if too_deep(body):
        raise EventInvalid(depth_reason())
    if replaced:
        return body, (f"{replaced} lone surrogate escape(s) (such as \\ud800) replaced with \\ufffd",)
    return body, ()


def _exact(body: bytes) -> tuple[Any, list[str]]:
    """``body`` parsed with every number kept exactly: those no double or 64-bit integer holds
    become ``orjson.Fragment`` (written back as they were spelled); their spellings are returned."""
    odd: list[str] = []

    def integer(text: str) -> Any:
        value = int(text)
        if -(2**63) <= value < 2**64:
            return value
        odd.append(text)
        return orjson.Fragment(text.encode())

    def number(text: str) -> Any:
        value = float(text)
        if math.isfinite(value):
            return value
        odd.append(text)
        return orjson.Fragment(text.encode())

    def constant(text: str) -> Any:
        raise ValueError(f"{text} is not JSON")

    try:
        return json.loads(body, parse_int=integer, parse_float=number, parse_constant=constant), odd
    except (ValueError, RecursionError) as exc:
        raise EventInvalid(f"malformed JSON: {exc}") from None


def event_from_json(
    data: bytes | str, *, compact: bool = False, warnings: tuple[str, ...] = ()
) -> EventRecord:
    """Parse and validate one event given as JSON text; the stored body is that text, compacted.

    ``compact`` says the caller already prepared it (``prepare_event_text``), whose ``warnings``
    come along.
    """
    if isinstance(data, str):
        data = data.encode()
    if compact:
        body = data
    else:
        body, warnings = prepare_event_text(data)
    if not may_hold_odd_number(body):
        if not warnings:
            record = fast_record(body)
            if record is not None:
                return record
        try:
            event = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise EventInvalid(f"malformed JSON: {exc}") from None
        return event_from_mapping(event, body=body, warnings=warnings)
    event, odd = _exact(body)
    if odd:
        shown = ", ".join(t if len(t) <= 40 else t[:37] + "..." for t in odd[:3])
        more = f" and {len(odd) - 3} more" if len(odd) > 3 else ""
        warnings = (
            *warnings,
            f"number(s) {shown}{more} beyond what a double or a 64-bit integer holds: kept as sent",
        )
    return event_from_mapping(event, body=body, warnings=warnings)


def parse_body(body: bytes) -> Any:
    """A stored body as Python values.

    Bodies are kept as they were ingested, so a number no double or 64-bit integer holds
    (``1e400``) comes back as an ``orjson.Fragment`` of its spelling: orjson writes it back as it
    was, and renderers print its text.
    """
    if not may_hold_odd_number(body):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    try:
        return _exact(body)[0]
    except EventInvalid:
        return orjson.loads(body)  # raises with orjson's words
