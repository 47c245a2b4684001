"""Response bodies in the two wire formats, and the error envelope.

JSON is the source of truth: XML is rendered from the JSON round-trip of the same data, so both
formats always carry the same values (datetimes, enums, dataclasses and msgspec structs included).

Stored JSON documents (event bodies) travel as ``JsonDocuments``: a JSON reply splices each body in
as it is stored instead of parsing and re-writing it. Bodies are orjson's compact JSON or the
ingested text without insignificant whitespace, so the bytes are what ``orjson.dumps`` would write;
a body that shows signs of another spelling (escapes, whitespace between tokens) is parsed and
re-dumped instead (see ``_spliceable`` for what is not looked for).

XML conventions (what the SDKs' XML readers accept):

* prologue ``<?xml version="1.0" encoding="UTF-8"?>``, root element as given (``{Action}Response``
  or ``Error``);
* a list becomes repeated elements named after its key, with no wrapper; a list directly inside a
  list (no key of its own) becomes an element named after the outer key holding ``<item>`` children;
* a nested object becomes a nested element; ``None`` is omitted; booleans are ``true``/``false``;
  numbers are written exactly as in the JSON body;
* keys that are not XML names (event payloads carry keys such as ``ACS::RAM::User``) are encoded
  reversibly the way .NET's ``XmlConvert.EncodeLocalName`` does: each offending character becomes
  ``_xHHHH_`` (``_xHHHHHHHH_`` beyond the BMP), and a literal ``_`` that would read as such an escape
  becomes ``_x005F_``. Only ASCII ``[A-Za-z_][A-Za-z0-9_.-]*`` counts as a name here, so the colon
  (namespace-aware parsers) and non-ASCII letters (parsers disagree) are encoded too. Empty keys are
  skipped, since no element name could stand for them unambiguously;
* text characters that XML 1.0 forbids outright (most C0 controls, lone surrogates, U+FFFE/U+FFFF)
  are replaced with U+FFFD; ``\\r`` is written as ``&#13;`` so parsers do not fold it into ``\\n``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any, Literal
from urllib.parse import quote

import msgspec
import orjson

from ...model.event_text import parse_body
from .errors import ApiError

__all__ = [
    "JSON_CONTENT_TYPE",
    "XML_CONTENT_TYPE",
    "Fmt",
    "JsonDocuments",
    "content_type",
    "encode_xml_name",
    "error_body",
    "recommend_url",
    "render",
    "render_json",
    "render_xml",
]

JSON_CONTENT_TYPE = "application/json;charset=utf-8"
# The tea SDK only parses an XML error body when the content-type is exactly this string.
XML_CONTENT_TYPE = "text/xml;charset=utf-8"
XML_PROLOGUE = '<?xml version="1.0" encoding="UTF-8"?>'

#: The two reply formats of the RPC wire.
Fmt = Literal["JSON", "XML"]

# Element names are kept to ASCII: XML 1.0 editions disagree on which other characters are name
# characters (expat, for one, rejects many that the 5th edition allows), ASCII they all accept.
_NAME_START_RE = re.compile("[A-Za-z_]")
_NAME_CHAR_RE = re.compile("[A-Za-z0-9_.-]")
_VALID_NAME_RE = re.compile("[A-Za-z_][A-Za-z0-9_.-]*")
_ESCAPE_LOOKALIKE_RE = re.compile(r"_x([0-9A-Fa-f]{4}|[0-9A-Fa-f]{8})_")
_INVALID_TEXT_RE = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def content_type(fmt: Fmt) -> str:
    return XML_CONTENT_TYPE if fmt == "XML" else JSON_CONTENT_TYPE


# ---------------------------------------------------------------------------------------------- JSON


def _spliceable(body: bytes) -> bool:
    """Whether ``body``, a stored JSON object, is spelled as orjson writes it, as far as is cheap to tell.

    orjson writes no whitespace outside strings, escapes only what JSON requires and separates
    with bare ``,`` and ``:``. A raw tab, CR or LF cannot occur inside a JSON string, so one means
    whitespace between tokens; ``": `` is the separator of ``json.dumps`` and pretty-printers. Any
    backslash sends the body the slow way, since ``\\u00e9`` or ``\\/`` would be re-spelled.
    Not looked for, because finding them costs as much as the parse this saves: numbers that
    orjson spells otherwise (``1.50``, ``1E3``, ``-0``, integers beyond 64 bits) and repeated
    keys. An event ingested with those goes out as it was ingested (the same values to any JSON
    parser) where a re-dump would have normalised it, or failed on the integer.
    """
    return (
        body[:1] == b"{"
        and body[-1:] == b"}"
        and b"\\" not in body
        and b"\n" not in body
        and b"\r" not in body
        and b"\t" not in body
        and b'": ' not in body
    )


class JsonDocuments(Sequence[Any]):
    """A reply list of stored JSON documents: spliced into JSON replies, parsed only when read.

    Reading it (``len``, indexing, iterating, ``==`` with a list) gives the parsed documents, so a
    handler's reply can be inspected like any other; rendering does not parse what it can splice.
    """

    __slots__ = ("_bodies", "_parsed")

    def __init__(self, bodies: Sequence[bytes]) -> None:
        self._bodies = tuple(bodies)
        self._parsed: list[Any] | None = None

    def _documents(self) -> list[Any]:
        if self._parsed is None:
            self._parsed = [parse_body(body) for body in self._bodies]
        return self._parsed

    def __len__(self) -> int:
        return len(self._bodies)

    def __getitem__(self, index: Any) -> Any:
        return self._documents()[index]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._documents())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, JsonDocuments):
            other = other._documents()
        return self._documents() == other if isinstance(other, list) else NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"JsonDocuments({self._documents()!r})"

    def for_json(self) -> list[Any]:
        """What orjson writes for this list: each body as stored, or re-dumped when it must be."""
        return [orjson.Fragment(b) if _spliceable(b) else parse_body(b) for b in self._bodies]


def _json_default(obj: Any) -> Any:
    if isinstance(obj, JsonDocuments):
        return obj.for_json()
    if isinstance(obj, msgspec.Struct):
        return msgspec.to_builtins(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def render_json(data: dict[str, Any]) -> bytes:
    # OPT_UTC_Z: UTC datetimes end in "Z", the API's own timestamp spelling.
    return orjson.dumps(data, default=_json_default, option=orjson.OPT_UTC_Z)


# ----------------------------------------------------------------------------------------------- XML


def encode_xml_name(key: str) -> str:
    """Map any non-empty string to a valid, colon-free XML element name, reversibly (see module doc)."""
    if _VALID_NAME_RE.fullmatch(key) and ":" not in key and not _ESCAPE_LOOKALIKE_RE.search(key):
        return key
    out: list[str] = []
    for i, ch in enumerate(key):
        valid = (_NAME_START_RE if i == 0 else _NAME_CHAR_RE).fullmatch(ch) is not None
        if ch == "_" and _ESCAPE_LOOKALIKE_RE.match(key, i):
            out.append("_x005F_")
        elif valid:
            out.append(ch)
        else:
            cp = ord(ch)
            out.append(f"_x{cp:04X}_" if cp <= 0xFFFF else f"_x{cp:08X}_")
    return "".join(out)


def _escape_text(text: str) -> str:
    text = _INVALID_TEXT_RE.sub("\ufffd", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _escape_text(value)
    # Numbers: reuse the JSON spelling so both formats print the same digits.
    return orjson.dumps(value).decode()


def _emit(out: list[str], name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, list):
        for item in value:
            if isinstance(item, list):
                out.append(f"<{name}>")
                _emit(out, "item", item)
                out.append(f"</{name}>")
            else:
                _emit(out, name, item)
        return
    out.append(f"<{name}>")
    if isinstance(value, dict):
        _emit_members(out, value)
    else:
        out.append(_scalar_text(value))
    out.append(f"</{name}>")


def _emit_members(out: list[str], obj: dict[str, Any]) -> None:
    for key, value in obj.items():
        if key == "":
            continue
        _emit(out, encode_xml_name(key), value)


def render_xml(root: str, data: dict[str, Any]) -> bytes:
    """Render ``data`` under the element ``root`` (e.g. ``"LookupEventsResponse"``, ``"Error"``)."""
    plain = parse_body(render_json(data))  # numbers no double holds come back as spelled
    root_name = encode_xml_name(root or "Response")
    out = [XML_PROLOGUE, f"<{root_name}>"]
    _emit_members(out, plain)
    out.append(f"</{root_name}>")
    return "".join(out).encode()


def render(action: str, data: dict[str, Any], fmt: Fmt) -> tuple[bytes, str]:
    """A success body and its content type; the XML root is ``{action}Response``."""
    if fmt == "XML":
        return render_xml(f"{action}Response", data), XML_CONTENT_TYPE
    return render_json(data), JSON_CONTENT_TYPE


# -------------------------------------------------------------------------------------------- errors


def recommend_url(code: str) -> str:
    return f"https://next.api.aliyun.com/troubleshoot?q={quote(code, safe='')}&product=Actiontrail"


def error_body(err: ApiError, request_id: str, host_id: str, fmt: Fmt) -> tuple[bytes, str]:
    """The error envelope: RequestId, HostId, Code, Message, Recommend [, AccessDeniedDetail, extra…]."""
    body: dict[str, Any] = {
        "RequestId": request_id,
        "HostId": host_id,
        "Code": err.code,
        "Message": err.message,
        "Recommend": err.recommend or recommend_url(err.code),
    }
    if err.access_denied_detail:
        body["AccessDeniedDetail"] = err.access_denied_detail
    for key, value in err.extra.items():
        body.setdefault(key, value)
    if fmt == "XML":
        return render_xml("Error", body), XML_CONTENT_TYPE
    return render_json(body), JSON_CONTENT_TYPE
