"""Functions for a decode worker to run in place of its own, sent by reference (a test
monkeypatches ``ingest_pool._in_worker`` or ``_body_in_worker`` with one; the worker process
imports this small module to run it)."""

from __future__ import annotations

import os
import signal
import struct
import sys
from typing import Any


def half_a_result(*args: Any) -> bytes:
    """Die halfway through sending the result back: the header of a message and a part of it,
    then SIGKILL, as a worker killed while it writes a result larger than the pipe. The pool's
    thread is left reading the rest, which never comes."""
    frame = sys._getframe(1)
    while "result_queue" not in frame.f_locals:  # concurrent.futures' _process_worker
        assert frame.f_back is not None
        frame = frame.f_back
    writer = frame.f_locals["result_queue"]._writer
    writer._send(struct.pack("!i", 1 << 20) + b"\x80" * 1000)
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")
