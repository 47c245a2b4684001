"""Measure the lookups again against a store a run kept, with other ``serve`` options.

    python -m bench.queries bench/results/<run>.json --backend sqlite -- --workers 2 --redis redis://127.0.0.1:6379/15

Takes the kept store of that run (``--keep``), its picks and its shapes, starts ``trailhouse serve``
with the extra arguments after ``--``, and runs the query phase of ``bench.run`` unchanged (one
client, then ``--clients``). The results go to ``bench/results/<run>-queries-<label>.json`` with
the machine details, the command and the server's options; the original run is not modified.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from .loadgen import ClientPool
from .machine import git_state, machine_info
from .run import BENCH_DIR, _log, _queries
from .server import Server, run_cli
from .shapes import Picks, build_shapes
from .signing import Credentials
from .stores import _with_search_path


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    serve_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, serve_args = argv[:cut], argv[cut + 1 :]
    p = argparse.ArgumentParser(prog="python -m bench.queries", description=__doc__.split("\n\n")[0])
    p.add_argument("results", type=Path, help="the results JSON of a run made with --keep")
    p.add_argument("--backend", default="sqlite", choices=("sqlite", "postgres"))
    p.add_argument("--label", help="names the output file (default: the serve options)")
    p.add_argument("--out", type=Path, help="results JSON (default bench/results/<run>-queries-<label>.json)")
    args = p.parse_args(argv)

    run = json.loads(args.results.read_text())
    settings = run["run"]["settings"]
    work = Path(settings["work_dir"]) / run["run"]["id"]
    if args.backend == "sqlite":
        url = f"sqlite:///{work / 'trailhouse.db'}"
    else:
        url = _with_search_path(settings["pg_url"], settings["pg_schema"])
    data_dir = work / f"{args.backend}-data"
    picks_data = dict(run["baseline"]["picks"])
    picks = Picks(**picks_data)
    shapes = build_shapes(picks, page_size=settings["page_size"])
    options = SimpleNamespace(
        pages=settings["pages"],
        walks=settings["walks"],
        walks_concurrent=settings["walks_concurrent"],
        clients=settings["clients"],
    )
    label = args.label or ("default" if not serve_args else "-".join(a.strip("-") for a in serve_args[:2]))
    out: dict[str, Any] = {
        "run": {
            "of": run["run"]["id"],
            "command": "python -m bench.queries " + " ".join(sys.argv[1:] if argv is None else argv),
            "serve_args": serve_args,
            "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": machine_info(),
            "git": git_state(BENCH_DIR.parent),
        },
        "backend": args.backend,
    }
    key, _ = run_cli(["keys", "create", "--account", picks.account, "--db", url], data_dir)
    server = Server(url, data_dir, work / f"{args.backend}-serve-{label}.log", extra_args=tuple(serve_args))
    server.start()
    try:
        time.sleep(2)  # every worker up
        creds = Credentials(key["accessKeyId"], key["accessKeySecret"], server.host)
        result: dict[str, Any] = {}
        out["queries"] = _queries(
            args.backend, options, shapes, server, creds, None, work, result, ClientPool
        )
    finally:
        out["server_exit"] = server.stop()
    out["run"]["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    path = args.out or BENCH_DIR / "results" / f"{run['run']['id']}-queries-{label}.json"
    path.write_text(json.dumps(out, indent=1))
    _log(f"wrote {path}")


if __name__ == "__main__":
    main()
