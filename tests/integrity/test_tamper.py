"""The tamper suite: change the database behind a running server's back; `trailhouse verify` names it.

An auditor mirrors the log (`verify --watch --once`: checkpoints and entries kept in a folder),
then someone with database access edits, deletes, inserts or reorders event rows, truncates the
log or restores an old backup. The events a server then hands out are checked offline.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from tests.conftest import LiveServer
from tests.integrity.test_log_server import A, ingest, make_event, tokens
from trailhouse.cli import app
from trailhouse.service.integrity.keys import load_log_signer

runner = CliRunner()


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout


def wait_logged(server: LiveServer, size: int) -> None:
    deadline = time.monotonic() + 10
    while (head := server.store.log_head(account_id=A)) is None or head.size < size:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def sql(server: LiveServer, statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
    url = server.settings.db_url
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        with conn:
            rows = conn.execute(statement, params).fetchall()
        conn.close()
        return rows
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(statement.replace("?", "%s"), params)
        return cur.fetchall() if cur.description is not None else []


def drop_leaf(server: LiveServer, seq: int) -> None:
    """Take event ``seq`` out of the log's record of which event each leaf is: its tile row
    (``log_leaf_tiles``, storage/sql/leaf_tiles.py) rewritten without it, as a tamperer would."""
    from trailhouse.storage.sql.leaf_tiles import pack_gaps, unpack_seqs

    account = server.store._term_id(A)  # type: ignore[attr-defined]
    ((first, gaps),) = sql(
        server, "SELECT first_seq, gaps FROM log_leaf_tiles WHERE account = ? AND tile = 0", (account,)
    )
    seqs = unpack_seqs(first, bytes(gaps))
    seqs.remove(seq)
    sql(
        server,
        "UPDATE log_leaf_tiles SET first_seq = ?, gaps = ? WHERE account = ? AND tile = 0",
        (seqs[0], pack_gaps(seqs), account),
    )


@pytest.fixture
def audited(server_factory: Callable[..., LiveServer], backend_url: str, tmp_path: Path) -> dict[str, Any]:
    server = server_factory(db_url=backend_url)
    tok = tokens(server)
    ingest(server, tok["ingest"], [make_event(i) for i in range(40)])
    wait_logged(server, 40)
    key = load_log_signer(server.settings.log_key, server.settings.resolved_data_dir()).verifier.vkey
    state = tmp_path / "mirror"
    code, output = cli(
        "verify", "--key", key, "--watch", server.url, "--state", str(state),
        "--token", tok["a"]["authorization"].split()[1], "--once",
    )  # fmt: skip
    assert code == 0, output
    return {"server": server, "key": key, "state": state, "tok": tok, "tmp": tmp_path}


def export(a: dict[str, Any], name: str) -> Path:
    """What the server now says the log is (log order), as `trailhouse log export` writes it."""
    code, output = cli("log", "export", "--account", A, "--db", a["server"].settings.db_url)
    assert code == 0
    path = a["tmp"] / name
    path.write_text(output)
    return path


def verify(a: dict[str, Any], events: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    code, output = cli(
        "verify", "--key", a["key"], "--checkpoints", str(a["state"] / "checkpoints"),
        "--events", str(events), "--reference", str(a["state"] / "entries.ndjson"), "--json", *extra,
    )  # fmt: skip
    return code, json.loads(output)


def kinds(report: dict[str, Any]) -> set[str]:
    return set(report["problems"])


def body_of(a: dict[str, Any], event_id: str) -> bytes:
    for line in (a["state"] / "entries.ndjson").read_bytes().splitlines():
        if orjson.loads(line)["eventId"] == event_id:
            return line
    raise AssertionError(event_id)


def test_a_clean_store_verifies(audited: dict[str, Any]) -> None:
    code, report = verify(audited, export(audited, "clean.ndjson"))
    assert code == 0 and report["ok"] and report["verifiedSize"] == 40
    # Without a mirror, the events alone rebuild the signed root.
    code, output = cli(
        "verify", "--key", audited["key"], "--checkpoints", str(audited["state"] / "checkpoints"),
        "--events", str(audited["tmp"] / "clean.ndjson"),
    )  # fmt: skip
    assert code == 0 and output.startswith("OK: 40 events")


def _seq(a: dict[str, Any], event_id: str) -> int:
    from trailhouse.service.integrity.log import find_event_seq

    seq = find_event_seq(a["server"].store, A, event_id)
    assert seq is not None
    return seq


def test_an_edited_event_is_named(audited: dict[str, Any]) -> None:
    from trailhouse.storage import codec

    original = body_of(audited, f"log-{A}-7")
    forged = original.replace(b"DescribeInstances", b"DescribeRegions")
    sql(
        audited["server"],
        "UPDATE events SET body = ? WHERE seq = ?",
        (codec.pack(forged), _seq(audited, f"log-{A}-7")),
    )
    code, report = verify(audited, export(audited, "edited.ndjson"))
    assert code == 1 and kinds(report) == {"altered"}
    assert report["findings"][0]["eventId"] == f"log-{A}-7"
    # Without a mirror the signed root still catches it, and says where.
    code, output = cli(
        "verify", "--key", audited["key"], "--checkpoints", str(audited["state"] / "checkpoints"),
        "--events", str(audited["tmp"] / "edited.ndjson"), "--json",
    )  # fmt: skip
    assert code == 1 and set(json.loads(output)["problems"]) == {"mismatch"}


def test_a_deleted_event_is_named(audited: dict[str, Any]) -> None:
    sql(audited["server"], "DELETE FROM events WHERE seq = ?", (_seq(audited, f"log-{A}-3"),))
    code, report = verify(audited, export(audited, "deleted.ndjson"))
    assert code == 1 and kinds(report) == {"missing"}
    assert report["findings"][0]["eventId"] == f"log-{A}-3"


def test_an_inserted_event_is_named(audited: dict[str, Any]) -> None:
    """An event slipped into the store without passing through the log (a native export shows it)."""
    import httpx

    a = audited
    server = a["server"]
    # Copy a row under a new eventId and a seq the sequencer has long passed.
    forged = body_of(a, f"log-{A}-5").replace(f"log-{A}-5".encode(), b"forged-1")
    from trailhouse.storage import codec

    seq = _seq(a, f"log-{A}-5")
    sql(
        server,
        "UPDATE events SET body = ? WHERE seq = ?",  # the body is the eventId's one copy
        (codec.pack(forged), seq),
    )
    drop_leaf(server, seq)  # hide it from the log's own export too
    native = httpx.get(
        f"{server.url}/api/v1/events",
        params={"format": "ndjson", "start": "2026-10-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"},
        headers=a["tok"]["a"],
        timeout=30,
    ).content
    path = a["tmp"] / "native.ndjson"
    path.write_bytes(native)
    code, report = verify(a, path, "--any-order")
    assert code == 1 and "inserted" in kinds(report)
    assert any(f.get("eventId") == "forged-1" for f in report["findings"])


def test_reordered_events_are_named(audited: dict[str, Any]) -> None:
    """Two events swap places in the log order. The log's leaf rows hold only increasing seqs
    (storage/sql/leaf_tiles.py), so the tamperer swaps the two events' stored bodies instead."""
    from trailhouse.storage import codec

    a, server = audited, audited["server"]
    s1, s2 = _seq(a, f"log-{A}-10"), _seq(a, f"log-{A}-11")
    b1, b2 = body_of(a, f"log-{A}-10"), body_of(a, f"log-{A}-11")
    sql(server, "UPDATE events SET body = ? WHERE seq = ?", (codec.pack(b2), s1))
    sql(server, "UPDATE events SET body = ? WHERE seq = ?", (codec.pack(b1), s2))
    code, report = verify(a, export(a, "reordered.ndjson"))
    assert code == 1 and kinds(report) == {"reordered"}


def test_a_truncated_log_is_named(audited: dict[str, Any]) -> None:
    a, server = audited, audited["server"]
    sql(server, "DELETE FROM events WHERE seq >= ?", (_seq(a, f"log-{A}-30"),))
    code, report = verify(a, export(a, "truncated.ndjson"))
    assert code == 1 and "missing" in kinds(report)
    # Without a mirror: fewer leaves than the signed checkpoint commits to.
    code, output = cli(
        "verify", "--key", a["key"], "--checkpoints", str(a["state"] / "checkpoints"),
        "--events", str(a["tmp"] / "truncated.ndjson"), "--json",
    )  # fmt: skip
    assert code == 1 and "truncated" in json.loads(output)["problems"]


def test_an_old_backup_restored_is_a_rollback_then_a_fork(
    server_factory: Callable[..., LiveServer], tmp_path: Path
) -> None:
    """SQLite: copy the file, ingest more, mirror; restore the copy, ingest other events."""
    db = tmp_path / "restore.db"
    server = server_factory(db_url=f"sqlite:///{db}")
    tok = tokens(server)
    ingest(server, tok["ingest"], [make_event(i) for i in range(10)])
    wait_logged(server, 10)
    server.store.close()
    shutil.copy(db, tmp_path / "backup.db")
    server2 = server_factory(db_url=f"sqlite:///{db}")
    ingest(server2, tok["ingest"], [make_event(i) for i in range(10, 20)])
    wait_logged(server2, 20)
    key = load_log_signer(server2.settings.log_key, server2.settings.resolved_data_dir()).verifier.vkey
    state = tmp_path / "mirror"
    watch = ["verify", "--key", key, "--watch", server2.url, "--state", str(state), "--once", "--json",
             "--token", tok["a"]["authorization"].split()[1]]  # fmt: skip
    assert cli(*watch)[0] == 0
    server2.store.close()
    shutil.copy(tmp_path / "backup.db", db)
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    server3 = server_factory(db_url=f"sqlite:///{db}")
    watch[4] = server3.url
    code, output = cli(*watch)
    assert code == 1 and json.loads(output)["alarm"] == "rollback"
    ingest(server3, tok["ingest"], [make_event(i) for i in range(100, 110)])
    wait_logged(server3, 20)
    code, output = cli(*watch)
    assert code == 1 and json.loads(output)["alarm"] == "forked"
