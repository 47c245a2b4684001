"""C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 keys.

A note is UTF-8 text ending in a newline, a blank line, then one line per signature:
``— <key name> base64(key id (4 bytes, big-endian) ‖ signature)``. A key id is the first four
bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key) for an Ed25519 key (type 0x01). Keys are
written as C2SP strings: the verifier key ``<name>+<hex key id>+<base64(0x01 ‖ public key)>`` and
the signer key ``PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 ‖ seed)>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

__all__ = [
    "NoteError",
    "Signer",
    "Verifier",
    "generate_signer",
    "open_note",
    "sign_note",
    "strict_b64decode",
]

ED25519 = 0x01
#: C2SP: verifiers must accept at least 16 signatures; more than this is refused as abuse.
MAX_SIGNATURES = 100
_DASH = "\u2014 "


def strict_b64decode(text: str) -> bytes:
    """Standard base64 in its one canonical spelling, or ``binascii.Error``.

    A decoder that ignores the unused low bits of the last character accepts several spellings of
    the same bytes: a signed note whose signature line was changed would still verify.
    """
    raw = base64.b64decode(text, validate=True)
    if base64.b64encode(raw).decode() != text:
        raise binascii.Error("not canonical base64")
    return raw


class NoteError(ValueError):
    """A note, key or signature that is malformed or does not verify."""


def key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes((ED25519,)) + public).digest()[:4]


def _check_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name) or not name.isprintable():
        raise NoteError(f"a key name must be non-empty, without spaces or '+': {name!r}")


@dataclass(frozen=True, slots=True)
class Verifier:
    name: str
    key_id: bytes
    public: bytes

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3:
            raise NoteError("a verifier key reads <name>+<hex key id>+<base64 key>")
        name, hex_id, encoded = parts
        _check_name(name)
        try:
            raw = strict_b64decode(encoded)
            wanted = bytes.fromhex(hex_id)
        except (binascii.Error, ValueError):
            raise NoteError("the verifier key's id or key is not hex / base64") from None
        if len(raw) != 33 or raw[0] != ED25519:
            raise NoteError("only Ed25519 verifier keys (type 0x01, 32 bytes) are supported")
        public = raw[1:]
        if len(wanted) != 4 or key_id(name, public) != wanted:
            raise NoteError("the verifier key's id does not match its name and key")
        return cls(name, wanted, public)

    @property
    def vkey(self) -> str:
        encoded = base64.b64encode(bytes((ED25519,)) + self.public).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, message)
        except InvalidSignature:
            return False
        return True


class Signer:
    """An Ed25519 signing key with its name; ``repr`` never shows the key."""

    __slots__ = ("_key", "name", "verifier")

    def __init__(self, name: str, seed: bytes) -> None:
        _check_name(name)
        if len(seed) != 32:
            raise NoteError("an Ed25519 seed is 32 bytes")
        self.name = name
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        public = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.verifier = Verifier(name, key_id(name, public), public)

    @classmethod
    def parse(cls, skey: str) -> Signer:
        parts = skey.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError("a signer key reads PRIVATE+KEY+<name>+<hex key id>+<base64 key>")
        try:
            raw = strict_b64decode(parts[4])
        except binascii.Error:
            raise NoteError("the signer key is not base64") from None
        if len(raw) != 33 or raw[0] != ED25519:
            raise NoteError("only Ed25519 signer keys (type 0x01, 32 bytes) are supported")
        signer = cls(parts[2], raw[1:])
        if signer.verifier.key_id.hex() != parts[3].lower():
            raise NoteError("the signer key's id does not match its key")
        return signer

    @property
    def skey(self) -> str:
        from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

        seed = self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        encoded = base64.b64encode(bytes((ED25519,)) + seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_id.hex()}+{encoded}"

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def __repr__(self) -> str:
        return f"Signer({self.verifier.vkey})"


def generate_signer(name: str) -> Signer:
    import secrets

    return Signer(name, secrets.token_bytes(32))


def sign_note(text: str, *signers: Signer) -> str:
    """The signed note of ``text`` (which must end with a newline and hold no blank line)."""
    _check_text(text)
    message = text.encode()
    lines = [
        f"{_DASH}{s.name} {base64.b64encode(s.verifier.key_id + s.sign(message)).decode()}\n" for s in signers
    ]
    return text + "\n" + "".join(lines)


def _check_text(text: str) -> None:
    if not text.endswith("\n") or "\n\n" in text or "\r" in text:
        raise NoteError("a note's text ends with one newline and has no blank line")


def open_note(note: str | bytes, verifiers: list[Verifier]) -> tuple[str, list[Verifier]]:
    """The text of a note signed by at least one of ``verifiers``, and which of them signed it.

    Signatures by unknown keys are ignored (C2SP); a known key's bad signature is an error.
    """
    if isinstance(note, bytes):
        try:
            note = note.decode()
        except UnicodeDecodeError:
            raise NoteError("a note is UTF-8 text") from None
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("a note has text, a blank line, then its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    _check_text(text)
    if not block.endswith("\n"):
        raise NoteError("a note's signature lines end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"a note with more than {MAX_SIGNATURES} signatures is refused")
    by_id = {(v.name, v.key_id): v for v in verifiers}
    good: list[Verifier] = []
    message = text.encode()
    for line in lines:
        if not line.startswith(_DASH):
            raise NoteError(f"a signature line starts with '— ': {line[:40]!r}")
        name, _, encoded = line[len(_DASH) :].partition(" ")
        try:
            raw = strict_b64decode(encoded)
        except binascii.Error:
            raise NoteError("a signature is not base64") from None
        if len(raw) < 5:
            raise NoteError("a signature is shorter than its key id")
        verifier = by_id.get((name, raw[:4]))
        if verifier is None:
            continue
        if not verifier.verify(message, raw[4:]):
            raise NoteError(f"the signature of {name} does not verify")
        good.append(verifier)
    if not good:
        raise NoteError("the note carries no signature by a known key")
    return text, good
