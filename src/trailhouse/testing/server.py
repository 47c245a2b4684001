"""An in-process Trailhouse for tests: the real app under uvicorn on 127.0.0.1, a throwaway store.

``Emulator`` is the server: a SQLite file in a temporary folder, a master key beside it, throttling
off, listening on a port the OS chose (the socket is bound before uvicorn starts, so two emulators
never race for one port). ``Trail`` is what a test works with: one account of that server with its
AccessKey pair, ready official SDK clients of both API versions, and ``record``/``events`` to add
events through the real ingest path (``POST /api/v1/events``) and read them back.

``emulator()`` is the context manager for code outside pytest; the pytest plugin
(``trailhouse.testing.plugin``) shares one server per session and gives each test a new account,
so tests never see each other's events.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import secrets
import shutil
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..model.credentials import TokenScope
from ..service.credentials import create_access_key, create_token
from ..service.secrets import Sealer, load_master_key
from ..settings import Settings
from .events import complete_event

__all__ = ["Emulator", "EmulatorError", "RecordError", "SdkMissing", "Trail", "emulator"]


class EmulatorError(Exception):
    """Trailhouse refused a request of ``record`` or ``events``; the message is its answer."""


class RecordError(EmulatorError, AssertionError):
    """Trailhouse refused an event given to ``record``: the test built a record that cannot be one."""


class SdkMissing(ImportError):
    """An SDK client was asked for and its package is not installed."""


_SDK_PACKAGES = {
    "2017-12-04": ("alibabacloud_actiontrail20171204", "alibabacloud-actiontrail20171204"),
    "2020-07-06": ("alibabacloud_actiontrail20200706", "alibabacloud-actiontrail20200706"),
}


def _sdk_client(version: str, config: Any) -> Any:
    module_name, package = _SDK_PACKAGES[version]
    try:
        module = importlib.import_module(f"{module_name}.client")
    except ImportError as exc:
        raise SdkMissing(
            f"the ActionTrail {version} SDK client needs the package {package}: pip install {package}"
        ) from exc
    return module.Client(config)


class Emulator:
    """A running Trailhouse; ``close()`` (or leaving ``with``) stops it and removes its files."""

    def __init__(self, *, db_url: str | None = None, **settings: Any) -> None:
        """``db_url`` defaults to a SQLite file in a temporary folder; ``settings`` are further
        ``Settings`` fields (throttling is off unless given)."""
        import uvicorn

        from ..api.app import create_app

        self._folder = Path(tempfile.mkdtemp(prefix="trailhouse-"))
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        options: dict[str, Any] = {
            "data_dir": str(self._folder / "data"),
            "throttle_lookup_events": 0.0,
            "throttle_access_key_usage": 0.0,
            "log_level": "warning",
            # A test's batches are small: decode processes would only cost start-up time and memory.
            "ingest_workers": 0,
            **settings,
        }
        # Not Settings.from_env: the developer's TRAILHOUSE_* variables must not reach a test's server.
        self.settings = Settings(
            db_url=db_url or f"sqlite:///{self._folder / 'trail.db'}",
            host="127.0.0.1",
            port=self.port,
            **options,
        )
        try:
            self.settings.validate()
            self.app = create_app(self.settings)
        except BaseException:
            self._socket.close()
            shutil.rmtree(self._folder, ignore_errors=True)
            raise
        self.store = self.app.state.services.store
        self._sealer = Sealer(load_master_key(self.settings.master_key, self.settings.resolved_data_dir()))
        # One operator token for every account: record() writes and events() reads with it.
        self._token = create_token(
            self.store, account_ids=(), all_accounts=True, scopes=(TokenScope.INGEST, TokenScope.READ)
        ).secret
        config = uvicorn.Config(
            self.app, access_log=False, log_level="warning", lifespan="on", timeout_graceful_shutdown=5
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name="trailhouse-emulator",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                self.close()
                raise RuntimeError("the Trailhouse emulator did not start")
            time.sleep(0.01)

    @property
    def endpoint(self) -> str:
        """``127.0.0.1:PORT``, as the tea SDKs' ``Config.endpoint`` wants it (with ``protocol="http"``)."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def trail(self, account_id: str | None = None, *, user: str = "root") -> Trail:
        """A new account (16 random digits unless given) with a fresh AccessKey pair of ``user``."""
        account = account_id or str(secrets.randbelow(9 * 10**15) + 10**15)
        created = create_access_key(self.store, self._sealer, account_id=account, user_name=user)
        return Trail(self, account, created.key.access_key_id, created.secret)

    # --------------------------------------------------------------------- the native API, for Trail

    def _request(self, method: str, path: str, body: bytes | None = None) -> bytes:
        request = urllib.request.Request(
            self.url + path,
            data=body,
            method=method,
            headers={"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                payload: bytes = response.read()
                return payload
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            error = RecordError if method == "POST" else EmulatorError
            raise error(f"{method} {path}: HTTP {exc.code}: {detail}") from None

    def close(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self._socket.close()
        shutil.rmtree(self._folder, ignore_errors=True)

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Trail:
    """One account of an emulator: credentials, SDK clients, and events in and out."""

    def __init__(self, server: Emulator, account_id: str, access_key_id: str, access_key_secret: str) -> None:
        self.server = server
        self.account_id = account_id
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self._clients: dict[str, Any] = {}

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    @property
    def url(self) -> str:
        return self.server.url

    def sdk_config(self, **overrides: Any) -> Any:
        """An ``alibabacloud_tea_openapi`` Config for this trail's key and endpoint."""
        try:
            config_type: Any = importlib.import_module("alibabacloud_tea_openapi.models").Config
        except ImportError as exc:
            raise SdkMissing(
                "SDK clients need alibabacloud-tea-openapi, which the ActionTrail SDKs install: "
                "pip install alibabacloud-actiontrail20200706"
            ) from exc
        options: dict[str, Any] = {
            "access_key_id": self.access_key_id,
            "access_key_secret": self.access_key_secret,
            "endpoint": self.endpoint,
            "protocol": "http",
            "region_id": "cn-hangzhou",
        }
        options.update(overrides)
        return config_type(**options)

    def client(self, version: str = "2020-07-06") -> Any:
        """The official tea SDK client of ``version`` (``2017-12-04`` or ``2020-07-06``), made once."""
        if version not in _SDK_PACKAGES:
            raise ValueError(f"no ActionTrail SDK of version {version!r}; known: {', '.join(_SDK_PACKAGES)}")
        if version not in self._clients:
            self._clients[version] = _sdk_client(version, self.sdk_config())
        return self._clients[version]

    @property
    def client_2017(self) -> Any:
        """``alibabacloud_actiontrail20171204.client.Client`` signed with this trail's key."""
        return self.client("2017-12-04")

    @property
    def client_2020(self) -> Any:
        """``alibabacloud_actiontrail20200706.client.Client`` signed with this trail's key."""
        return self.client("2020-07-06")

    def record(self, *events: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Store events (dicts, ``make_event(...)`` results, or lists of them) and return them completed.

        Fields left out get defaults (``complete_event``): eventId, eventTime now, this account,
        a root identity... Raises ``RecordError`` if Trailhouse rejects any of them; none is then stored.
        """
        batch: list[dict[str, Any]] = []
        for item in events:
            group = [item] if isinstance(item, Mapping) else list(item)
            batch += [complete_event(e, account_id=self.account_id) for e in group]
        if not batch:
            return []
        answer = json.loads(
            self.server._request("POST", "/api/v1/events?atomic=true", json.dumps(batch).encode())
        )
        if answer.get("rejected"):
            raise RecordError(f"Trailhouse rejected events: {answer.get('rejections')}")
        return batch

    def events(self, **filters: str) -> list[dict[str, Any]]:
        """This account's stored events, newest first. ``filters`` are the native search's
        (docs/api.md §2.3): ``EventName="CreateUser"``, ``User=...``, ``EventAccessKeyId=...``,
        ``start="2026-11-29T00:00:00Z"``, ``failed="true"``."""
        query = urllib.parse.urlencode({"account": self.account_id, "format": "ndjson", **filters})
        text = self.server._request("GET", f"/api/v1/events?{query}").decode()
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def __repr__(self) -> str:
        return (
            f"Trail(endpoint={self.endpoint!r}, account_id={self.account_id!r}, "
            f"access_key_id={self.access_key_id!r})"
        )


@contextlib.contextmanager
def emulator(*, db_url: str | None = None, account_id: str | None = None) -> Iterator[Trail]:
    """``with emulator() as trail:`` a throwaway Trailhouse and one account of it, stopped afterwards."""
    with Emulator(db_url=db_url) as server:
        yield server.trail(account_id)
