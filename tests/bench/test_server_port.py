"""The harness talks to the server it started: a free port is not a reserved one, and another
process that took it in between would otherwise answer in its place (CI, 2026-12-07: the bench's
log wait then hung, the ingest having gone to another test suite's server)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from bench.server import listens


def test_the_listener_is_told_apart_from_other_processes() -> None:
    me = os.getpid()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        assert not listens(me, port)  # bound, not yet listening
        s.listen()
        assert listens(me, port)
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            assert not listens(child.pid, port)
        finally:
            child.kill()
            child.wait()
    assert not listens(me, port)  # closed: nobody listens
