"""Sampling profiles of the server and the CLI with py-spy, summarised per function.

``py-spy record --format raw`` writes collapsed stacks (``frame;frame;… count``). The summary
gives, per function (file and name, line numbers dropped), its inclusive share (on the stack) and
self share (on top of the stack) of all samples: enough to say where ingest and lookups spend
their time without opening a flame graph. Optional: without py-spy the run simply has no profiles.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

__all__ = ["PySpy", "py_spy_binary", "summarize_collapsed", "wrap_command"]

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
#: Leaf frames of a thread that waits for work rather than doing any: excluded from the shares.
#: (py-spy's own idle detection misses some of them.) A blocking database call is not in here:
#: waiting for SQLite's fsync or PostgreSQL's answer is time the request spends.
IDLE_LEAVES = frozenset(
    {
        ("Condition.wait", "threading.py"),
        ("Event.wait", "threading.py"),
        ("EpollSelector.select", "selectors.py"),
        ("Queue.get", "queue.py"),
        ("Thread._wait_for_tstate_lock", "threading.py"),
        ("wait", "asyncio/tasks.py"),
    }
)


# --nonblocking: py-spy reads the target's memory without stopping it, so a profiled run costs the
# target next to nothing (a sample may now and then mix two moments) and its figures stand.


def py_spy_binary() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


class PySpy:
    """``py-spy record`` attached to a running process until ``stop()``."""

    def __init__(self, binary: str, pid: int, output: Path, rate: int = 100) -> None:
        self.output = output
        self.proc = subprocess.Popen(
            [
                binary,
                "record",
                "--pid",
                str(pid),
                "--format",
                "raw",
                "--rate",
                str(rate),
                "--output",
                str(output),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def stop(self) -> Path | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.output if self.output.exists() else None


def wrap_command(binary: str, output: Path, rate: int = 100, idle: bool = False) -> list[str]:
    """A prefix that runs a command under py-spy (for short-lived CLI processes).

    ``idle`` keeps samples of a thread that waits (fsync, locks), which for a one-thread CLI is
    time the command spends as much as any other.
    """
    return [
        binary,
        "record",
        "--format",
        "raw",
        "--rate",
        str(rate),
        "--output",
        str(output),
        "--nonblocking",
        *(["--idle"] if idle else []),
        "--",
    ]


def _short(file: str) -> str:
    for marker in ("/site-packages/", "/src/", "/lib/python3.11/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


def summarize_collapsed(path: Path, top: int = 30) -> dict[str, Any]:
    """Shares of the busy samples: per function (inclusive) and per source line (self)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    busy = idle = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = []
        for frame in stack.split(";"):
            m = _FRAME.match(frame.strip())
            if m:
                frames.append((m["func"], _short(m["file"]), m["line"]))
            else:
                frames.append((frame.strip(), "", None))
        if not frames or (frames[-1][0], frames[-1][1]) in IDLE_LEAVES:
            idle += count
            continue
        busy += count
        for name in {f"{func} ({file})" for func, file, _ in frames}:
            inclusive[name] += count
        func, file, lineno = frames[-1]
        own[f"{func} ({file}:{lineno})" if lineno else f"{func} ({file})"] += count

    def pct(c: Counter[str]) -> list[list[Any]]:
        return [[name, round(100 * n / busy, 1)] for name, n in c.most_common(top)] if busy else []

    return {
        "busy_samples": busy,
        "idle_samples": idle,
        "inclusive_pct": pct(inclusive),
        "self_pct": pct(own),
        "file": str(path),
    }


def main(argv: list[str] | None = None) -> None:
    """Re-summarise the raw profiles of a run into its results file (after changing this module)."""
    import argparse
    import json

    p = argparse.ArgumentParser(prog="python -m bench.profiles")
    p.add_argument("results", type=Path)
    args = p.parse_args(argv)
    results = json.loads(args.results.read_text())
    for outcome in results.get("backends", {}).values():
        for name, prof in outcome.get("profiles", {}).items():
            raw = Path(prof["file"])
            if raw.exists():
                outcome["profiles"][name] = summarize_collapsed(raw)
    args.results.write_text(json.dumps(results, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
