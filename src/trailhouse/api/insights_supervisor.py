"""``serve``'s Insights worker process: started with the server, restarted when it dies, stopped with it.

The worker (``api/insights_worker.py``) is ``python -m trailhouse insights worker`` with the
server's settings in its environment. It runs in a process group of its own, so a Ctrl-C in the
terminal reaches the server, whose shutdown stops the worker (SIGTERM, then SIGKILL after
``STOP_TIMEOUT_S``: the detector's commit is one transaction, so even that loses nothing). If the
server itself is killed, the worker sees its parent gone and stops within a second.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..settings import Settings

__all__ = ["InsightsWorkerProcess"]

log = logging.getLogger("trailhouse.insights")

#: A worker that dies is started again after this pause, doubled on each death in a row (to the
#: maximum), and back to the first once a worker has lived ``STEADY_S``.
FIRST_RESTART_PAUSE_S = 1.0
MAX_RESTART_PAUSE_S = 30.0
STEADY_S = 60.0
#: How long a stopping worker has to finish its step before it is killed.
STOP_TIMEOUT_S = 15.0


class InsightsWorkerProcess:
    """The supervisor: a thread that keeps one worker process running until ``stop``."""

    def __init__(self, settings: Settings, *, status_file: Path) -> None:
        self._env = {**os.environ, **settings.to_env()}
        self.status_file = status_file
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name="insights-supervisor", daemon=True)
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        #: Workers started again after one died (not counting the first).
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        """The running worker's process id, or None between a death and the restart."""
        with self._lock:
            process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "trailhouse",
            "insights",
            "worker",
            "--parent-pid",
            str(os.getpid()),
            "--status-file",
            str(self.status_file),
            # One lease name for this server's workers: one started after a death (only then is
            # another started) resumes at once, rather than when the dead one's lease expires.
            "--lease-owner",
            f"serve@{socket.gethostname()}:{os.getpid()}",
        ]

    def start(self) -> None:
        self._thread.start()

    def _spawn(self) -> subprocess.Popen[bytes]:
        # Its own process group: the terminal's Ctrl-C goes to the server alone, which then stops
        # it. The same session, though: Linux's autogroup scheduling shares the CPU between
        # sessions, and the worker's niceness only ranks it below the server within one.
        return subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            self.command(), env=self._env, stdin=subprocess.DEVNULL, process_group=0
        )

    def _supervise(self) -> None:
        pause = FIRST_RESTART_PAUSE_S
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                process = self._spawn()
            except OSError as exc:
                log.error("insights: cannot start the worker (%s); trying again in %.0f s", exc, pause)
                self._stop.wait(pause)
                pause = min(pause * 2, MAX_RESTART_PAUSE_S)
                continue
            with self._lock:
                self._process = process
            while process.poll() is None and not self._stop.wait(0.5):
                pass
            if self._stop.is_set():
                return
            if time.monotonic() - started >= STEADY_S:
                pause = FIRST_RESTART_PAUSE_S
            log.error(
                "insights: the worker (pid %d) exited with status %s; starting another in %.0f s",
                process.pid,
                process.returncode,
                pause,
            )
            self._stop.wait(pause)
            pause = min(pause * 2, MAX_RESTART_PAUSE_S)
            if not self._stop.is_set():
                self.restarts += 1

    def stop(self) -> None:
        """Stop supervising, then stop the worker (SIGTERM; SIGKILL if it outlives the timeout)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        with self._lock:
            process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log.warning(
                "insights: the worker (pid %d) did not stop in %.0f s; killing it",
                process.pid,
                STOP_TIMEOUT_S,
            )
            process.kill()
            process.wait()
