"""What the numbers were measured on: hardware, software versions, the code and the command."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["git_state", "machine_info", "package_digest"]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:
        return None


def machine_info() -> dict[str, Any]:
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "memory_bytes": _mem_bytes(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "sqlite": sqlite3.sqlite_version,
        "duckdb": _version("duckdb"),
        "httpx": _version("httpx"),
        "orjson": _version("orjson"),
        "uvicorn": _version("uvicorn"),
        # uvicorn switches to these by itself when they are installed: they change the HTTP figures.
        "uvloop": _version("uvloop"),
        "httptools": _version("httptools"),
        "zstandard": _version("zstandard"),
        "starlette": _version("starlette"),
        "psycopg": _version("psycopg"),
    }


def git_state(repo: Path) -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=repo, capture_output=True, text=True, timeout=10, check=False
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    status = git("status", "--porcelain", "--", "src")
    return {
        "commit": git("rev-parse", "HEAD") or None,
        "branch": git("rev-parse", "--abbrev-ref", "HEAD") or None,
        # Uncommitted changes under src/ mean the commit alone does not identify the code measured.
        "src_dirty": bool(status),
        "src_changes": status.splitlines()[:50],
    }


def package_digest(package_dir: Path) -> str:
    """sha256 over the package's source files: identifies the code measured even in a dirty tree."""
    import hashlib

    h = hashlib.sha256()
    for path in sorted(p for p in package_dir.rglob("*") if p.suffix in (".py", ".sql") and p.is_file()):
        h.update(str(path.relative_to(package_dir)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()
