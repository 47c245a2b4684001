"""Run the real ``trailhouse`` command as a process, as an operator would."""

from __future__ import annotations

import contextlib
import os
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from tests.conftest import free_port

#: Variables of ours that must not leak from the developer's shell into a test's process.
_OURS = tuple(k for k in os.environ if k.startswith("TRAILHOUSE_") and not k.startswith("TRAILHOUSE_TEST_"))


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment without our settings, HOME and XDG_DATA_HOME pointed into the test's folder."""
    env = {k: v for k, v in os.environ.items() if k not in _OURS}
    env.pop("XDG_DATA_HOME", None)
    env["HOME"] = str(home)
    env.update(extra)
    return env


def run(
    *args: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trailhouse", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class Served:
    url: str
    port: int
    process: subprocess.Popen[str]
    log: IO[str]

    def stderr(self) -> str:
        # pread: the server shares this file's offset, which a seek would move under it.
        fd = self.log.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")


@contextlib.contextmanager
def serving(
    *args: str, env: dict[str, str], cwd: Path | None = None, ca: Path | None = None
) -> Iterator[Served]:
    """``trailhouse serve`` on a free loopback port until /healthz answers; stopped afterwards."""
    port = free_port()
    log = tempfile.TemporaryFile("w+")  # noqa: SIM115 -- a pipe nobody reads could fill and stall the server
    process = subprocess.Popen(
        [sys.executable, "-m", "trailhouse", "serve", "--port", str(port), "--log-level", "warning", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=log,
        text=True,
    )
    scheme = "https" if ca else "http"
    url = f"{scheme}://127.0.0.1:{port}"
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(ca)) if ca else True
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1, verify=verify).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait(timeout=10)
                log.seek(0)
                raise RuntimeError(f"trailhouse serve did not start: {log.read()}")
            time.sleep(0.1)
        yield Served(url, port, process, log)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        log.close()
