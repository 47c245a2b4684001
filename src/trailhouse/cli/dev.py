"""``trailhouse serve --dev``: a standalone server for trying code against, the emulator's twin.

A throwaway SQLite store and master key in a temporary folder (unless ``--db``), throttling off,
and on start an AccessKey pair and an ingest/read token of a fresh account, printed with an SDK
snippet. The folder is removed when the server stops.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from ..model.credentials import TokenScope
from ..model.times import format_wire_time, now_ms
from ..service.credentials import create_access_key, create_token
from ..service.secrets import Sealer
from ..storage.base import EventStore

__all__ = ["DevCredentials", "dev_credentials"]


@dataclass(frozen=True, slots=True)
class DevCredentials:
    account_id: str
    access_key_id: str
    access_key_secret: str
    token: str

    def banner(self, url: str) -> str:
        endpoint = url.split("://", 1)[1]
        protocol = url.split("://", 1)[0]
        return f"""\
Development server: throttling off; the store is thrown away on exit unless --db was given.

Endpoint:        {url}  (ActionTrail OpenAPI at /, native API at /api/v1)
AccountId:       {self.account_id}
AccessKeyId:     {self.access_key_id}
AccessKeySecret: {self.access_key_secret}
Token:           {self.token}  (ingest and read)

Python (pip install alibabacloud-actiontrail20200706):

    from alibabacloud_tea_openapi.models import Config
    from alibabacloud_actiontrail20200706.client import Client
    from alibabacloud_actiontrail20200706 import models
    client = Client(Config(access_key_id='{self.access_key_id}',
                           access_key_secret='{self.access_key_secret}',
                           endpoint='{endpoint}', protocol='{protocol}'))
    print(client.lookup_events(models.LookupEventsRequest()).body.to_map())

Add events:

    curl -X POST -H 'Authorization: Bearer {self.token}' '{url}/api/v1/events' \\
      -d '[{{"eventId":"e-1","eventTime":"{format_wire_time(now_ms())}","eventName":"CreateUser",
            "userIdentity":{{"accountId":"{self.account_id}","userName":"alice"}}}}]'
"""


def dev_credentials(store: EventStore, sealer: Sealer, account_id: str | None = None) -> DevCredentials:
    account = account_id or str(secrets.randbelow(9 * 10**15) + 10**15)
    key = create_access_key(store, sealer, account_id=account, user_name="developer")
    token = create_token(
        store, account_ids=(account,), all_accounts=False, scopes=(TokenScope.INGEST, TokenScope.READ)
    )
    return DevCredentials(account, key.key.access_key_id, key.secret, token.secret)
