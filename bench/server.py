"""The system under test: ``trailhouse serve`` as a subprocess, and the CLI commands the harness drives.

Every child process gets the same environment: the ``trailhouse`` package the harness imported (so
a source checkout works without installing), ``TRAILHOUSE_DATA_DIR`` in the run's work directory
(the master key lives there) and nothing else from ``TRAILHOUSE_*``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

import trailhouse

__all__ = ["CliError", "Server", "child_env", "free_port", "listens", "run_cli"]


class CliError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds the socket listening on 127.0.0.1:``port`` (Linux /proc;
    elsewhere assumed)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            return True
        for row in rows:
            fields = row.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(fd) in inodes:
                return True
        except OSError:  # closed meanwhile
            continue
    return False


def child_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAILHOUSE_")}
    package_root = str(Path(trailhouse.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    env["TRAILHOUSE_DATA_DIR"] = str(data_dir)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def tree_peaks(root: int) -> dict[str, int]:
    """VmHWM (bytes) of ``root`` and of every process under it, by "pid command", read now."""
    peaks: dict[str, int] = {}
    pending = [root]
    while pending:
        pid = pending.pop()
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            name = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:80]
            for task in Path(f"/proc/{pid}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue  # it ended meanwhile
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peaks[f"{pid} {name.strip()}"] = int(line.split()[1]) * 1024
    return peaks


def _watch_peaks(root: int, done: threading.Event, into: dict[str, int]) -> None:
    """Sample ``tree_peaks`` until ``done``: each process's last VmHWM seen before it ended."""
    while not done.wait(0.25):
        for name, peak in tree_peaks(root).items():
            into[name] = max(into.get(name, 0), peak)


def run_cli(
    args: list[str],
    data_dir: Path,
    *,
    timeout: float | None = None,
    wrapper: list[str] | None = None,
    usage: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], float]:
    """Run ``trailhouse <args> --json``; return its JSON output and the wall time in seconds.

    ``wrapper`` prefixes the command (a profiler). ``usage`` receives ``peak_rss_bytes``: the
    largest peak resident set (VmHWM) of the command's processes, sampled from /proc every 0.25 s,
    and ``peak_rss_by_process``. Not wait4's ru_maxrss: Linux carries the peak of the process
    that forked the command (this harness, with DuckDB's data in it) across the exec.
    """
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        popen = subprocess.Popen(
            [*(wrapper or []), sys.executable, "-m", "trailhouse.cli", *args, "--json"],
            env=child_env(data_dir),
            stdout=out,
            stderr=err,
        )
        timer = threading.Timer(timeout, popen.kill) if timeout else None
        if timer is not None:
            timer.start()
        peaks: dict[str, int] = {}
        done = threading.Event()
        watcher = threading.Thread(target=_watch_peaks, args=(popen.pid, done, peaks), daemon=True)
        watcher.start()
        popen.wait()
        done.set()
        watcher.join()
        if timer is not None:
            timer.cancel()
        out.seek(0)
        err.seek(0)
        proc = subprocess.CompletedProcess(popen.args, popen.returncode, out.read(), err.read())
    if usage is not None:
        usage["peak_rss_bytes"] = max(peaks.values(), default=0)
        usage["peak_rss_by_process"] = peaks
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise CliError(
            f"trailhouse {' '.join(args[:2])} exited with {proc.returncode}:\n"
            f"{proc.stderr.decode(errors='replace')[-3000:]}"
        )
    lines = [line for line in proc.stdout.decode().splitlines() if line.startswith(("{", "["))]
    if not lines:
        raise CliError(f"trailhouse {' '.join(args[:2])} printed no JSON: {proc.stdout[-500:]!r}")
    return json.loads(lines[-1]), elapsed


class Server:
    """``trailhouse serve`` on a free port; ``start()`` returns once /healthz answers."""

    def __init__(
        self,
        db_url: str,
        data_dir: Path,
        log_path: Path,
        *,
        log_level: str = "info",
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.db_url = db_url
        self.extra_args = extra_args
        self.data_dir = data_dir
        self.log_path = log_path
        self.log_level = log_level
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.peak_rss_at_stop: dict[str, int] = {}
        self._log: Any = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 60.0) -> None:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "trailhouse.cli",
                "serve",
                "--db",
                self.db_url,
                "--port",
                str(self.port),
                "--throttle-lookup",
                "0",
                "--throttle-usage",
                "0",
                "--log-level",
                self.log_level,
                *self.extra_args,
            ],
            env=child_env(self.data_dir),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"trailhouse serve exited with {self.proc.returncode}; see {self.log_path}"
                )
            try:
                # The port was free when chosen, not reserved: another server (a test suite run
                # beside this one) may have taken it, and answer in this one's place.
                if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200:
                    if listens(self.proc.pid, self.port):
                        return
                    self.stop()
                    raise RuntimeError(f"another process answers on port {self.port}; see {self.log_path}")
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"trailhouse serve did not answer within {timeout}s; see {self.log_path}")
            time.sleep(0.1)

    def peak_rss(self) -> dict[str, int]:
        """The peak resident set (VmHWM, bytes) of the server and of each process under it (the
        Insights worker, ``--workers`` processes) so far, by "pid command"; and their "total", an
        upper bound of the tree's peak (the peaks need not be at the same moment)."""
        if self.proc is None or self.proc.poll() is not None:
            return {}
        peaks = tree_peaks(self.proc.pid)
        peaks["total"] = sum(peaks.values())
        return peaks

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.peak_rss_at_stop = self.peak_rss()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not None:
            self._log.close()
        return self.proc.returncode

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
