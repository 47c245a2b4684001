"""The log's Ed25519 signing key: given in configuration, or generated once into the data directory.

Like the master key (service/secrets.py): ``TRAILHOUSE_LOG_KEY`` holds a C2SP signer key
(``PRIVATE+KEY+<name>+<id>+<key>``); without it, ``<data dir>/log.key`` is created (0600) on first
use. Several nodes must share one key, or each would sign with its own. Commands that only read
the log load it with ``create=False``: a key made there would be one nothing was signed with.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import tempfile
from pathlib import Path

from .note import NoteError, Signer, generate_signer

__all__ = ["LogKeyError", "LogKeyMissing", "has_log_key", "load_log_signer", "log_key_source"]

_KEY_FILE = "log.key"


class LogKeyError(Exception):
    pass


class LogKeyMissing(LogKeyError):
    """No key configured and none in the data directory, where one may not be made."""


def _default_name() -> str:
    host = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname()) or "localhost"
    return f"trailhouse.{host}"


def has_log_key(configured: str | None, data_dir: Path) -> bool:
    return bool(configured) or (data_dir / _KEY_FILE).exists()


def load_log_signer(configured: str | None, data_dir: Path, *, create: bool = True) -> Signer:
    if configured:
        try:
            return Signer.parse(configured)
        except NoteError as exc:
            raise LogKeyError(f"TRAILHOUSE_LOG_KEY: {exc}") from None
    path = data_dir / _KEY_FILE
    if not path.exists() and not create:
        raise LogKeyMissing(f"no log key at {path} and TRAILHOUSE_LOG_KEY is unset")
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Written whole under a private name, then linked into place: two processes starting at
        # once (serve --workers) never each keep a different key, nor read a half-written one.
        fd, temp = tempfile.mkstemp(dir=data_dir, prefix=".log.key.")
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(generate_signer(_default_name()).skey + "\n")
            with contextlib.suppress(FileExistsError):
                os.link(temp, path)
        finally:
            os.unlink(temp)
    try:
        return Signer.parse(path.read_text())
    except (OSError, NoteError) as exc:
        raise LogKeyError(f"cannot read the log key in {path}: {exc}") from None


def log_key_source(configured: str | None, data_dir: Path) -> str:
    """Where the log key in use comes from, for messages (never the key itself)."""
    return "TRAILHOUSE_LOG_KEY" if configured else str(data_dir / _KEY_FILE)
