"""The master key, and sealing of secrets at rest with it (AES-256-GCM)."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..storage.base import CredentialStore

__all__ = [
    "MasterKeyError",
    "MasterKeyMissing",
    "Sealer",
    "check_master_key",
    "has_master_key",
    "key_source",
    "load_master_key",
]

_KEY_FILE = "master.key"


class MasterKeyError(Exception):
    pass


class MasterKeyMissing(MasterKeyError):
    """No key is configured and none is kept in the data directory, where none may be made."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"no master key at {path}")
        self.path = path


def has_master_key(configured: str | None, data_dir: Path) -> bool:
    """Whether a key is configured or kept in data_dir (valid or not: loading says)."""
    return bool(configured) or (data_dir / _KEY_FILE).exists()


def load_master_key(configured: str | None, data_dir: Path, *, create: bool = True) -> bytes:
    """The configured key (base64 of 32 bytes), else the one in data_dir, generated there once (0600).

    ``create=False`` raises MasterKeyMissing instead of generating: the CLI makes a key only with
    a new store (cli/common.py, ``open_or_fail``), never beside one that exists, whose secrets were
    sealed with a key kept elsewhere."""
    if configured:
        try:
            key = base64.b64decode(configured, validate=True)
        except ValueError:
            raise MasterKeyError("TRAILHOUSE_MASTER_KEY is not valid base64") from None
        if len(key) != 32:
            raise MasterKeyError("TRAILHOUSE_MASTER_KEY must be 32 bytes, base64-encoded")
        return key
    path = data_dir / _KEY_FILE
    if not path.exists() and not create:
        raise MasterKeyMissing(path)
    if not path.exists():
        _make_private_dir(data_dir)
        encoded = base64.b64encode(secrets.token_bytes(32))
        try:
            # O_EXCL: two processes starting at once must not each write a different key.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(encoded + b"\n")
    try:
        key = base64.b64decode(path.read_bytes().strip(), validate=True)
    except (OSError, ValueError) as exc:
        raise MasterKeyError(f"cannot read the master key in {path}: {exc}") from None
    if len(key) != 32:
        raise MasterKeyError(f"the master key in {path} is not 32 bytes")
    return key


def _make_private_dir(data_dir: Path) -> None:
    """Create the data directory (and missing parents) readable by its owner only.

    An existing directory keeps its mode: it may be the folder of the SQLite file, chosen by the
    operator."""
    missing = [d for d in (data_dir, *data_dir.parents) if not d.exists()]
    data_dir.mkdir(parents=True, exist_ok=True)
    for made in missing:
        os.chmod(made, 0o700)  # mkdir's mode is filtered by the umask


def key_source(configured: str | None, data_dir: Path) -> str:
    """Where the master key in use comes from, for messages (never the key itself)."""
    return "TRAILHOUSE_MASTER_KEY" if configured else str(data_dir / _KEY_FILE)


def check_master_key(sealer: Sealer, store: CredentialStore, *, sample: int = 3) -> None:
    """Raise MasterKeyError when the key cannot open the secrets already stored.

    A server started with another key (another data directory, a lost key file) would otherwise
    answer every signed call with an error; refusing to start says so once, where it is fixed."""
    for key in store.list_all_access_keys()[:sample]:
        sealer.open(key.secret_sealed, key.access_key_id)


class Sealer:
    """Encrypts secrets bound to a label (the AccessKey id): a sealed value cannot move to another key."""

    def __init__(self, master_key: bytes) -> None:
        self._aead = AESGCM(master_key)

    def seal(self, plaintext: str, label: str) -> bytes:
        nonce = secrets.token_bytes(12)
        return nonce + self._aead.encrypt(nonce, plaintext.encode(), label.encode())

    def open(self, sealed: bytes, label: str) -> str:
        try:
            return self._aead.decrypt(sealed[:12], sealed[12:], label.encode()).decode()
        except InvalidTag:
            raise MasterKeyError(
                "a stored secret cannot be decrypted: the master key differs from the one it was sealed with"
            ) from None

    def __repr__(self) -> str:  # never show key material
        return "Sealer(<hidden>)"
