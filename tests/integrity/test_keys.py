"""The log key: generated once into the data directory (0600), or given in configuration."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest

from trailhouse.service.integrity.keys import LogKeyError, load_log_signer
from trailhouse.service.integrity.note import generate_signer
from trailhouse.settings import Settings, SettingsError


def test_generated_once_private_and_shared_by_concurrent_starts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    found: list[str] = []
    threads = [
        threading.Thread(target=lambda: found.append(load_log_signer(None, data).verifier.vkey))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(found)) == 1
    assert stat.S_IMODE((data / "log.key").stat().st_mode) == 0o600
    assert [p.name for p in data.iterdir()] == ["log.key"]  # no temporary file left behind
    assert load_log_signer(None, data).verifier.vkey == found[0]


def test_a_configured_key_wins_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    signer = generate_signer("configured.example")
    assert load_log_signer(signer.skey, tmp_path).verifier == signer.verifier
    assert not (tmp_path / "log.key").exists()
    with pytest.raises(LogKeyError):
        load_log_signer("PRIVATE+KEY+x+00000000+AAAA", tmp_path)
    with pytest.raises(SettingsError) as err:
        Settings(log_key="not a key").validate()
    assert "not a key" not in str(err.value)  # a secret is never echoed
    with pytest.raises(SettingsError):
        Settings(log_sequencer="maybe").validate()
