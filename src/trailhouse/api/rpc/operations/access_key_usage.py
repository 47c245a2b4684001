"""Wire handlers of the GetAccessKeyLastUsed* family (2020-07-06).

Each handler reads the string parameters, calls service.access_keys and shapes the response with
the exact keys of the SDK models. RequestId is added by the gateway. Everything is scoped to the
calling account: a key of another account looks exactly like a key that was never used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ....service import access_keys
from ....service.access_keys import LastUse, UsagePage, UsageQueryInvalid
from ....service.pagetoken import InvalidPageToken
from ...context import Services
from ...wire import plain_int
from ..call import Call
from ..errors import InvalidQueryParameter, Missing

_invalid = InvalidQueryParameter.because

__all__ = [
    "get_access_key_last_used_events",
    "get_access_key_last_used_info",
    "get_access_key_last_used_ips",
    "get_access_key_last_used_products",
    "get_access_key_last_used_resources",
]

#: Longer values cannot be an AccessKey ID or a service code; refuse them before touching the store.
_MAX_PARAM_LENGTH = 128
_MAX_TOKEN_LENGTH = 1024


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise Missing(name)  # MissingAccessKey / MissingServiceName, "{Name} is mandatory for this action."
    if len(value) > _MAX_PARAM_LENGTH:
        raise _invalid(f"{name} is longer than {_MAX_PARAM_LENGTH} characters.")
    return value


def _page_size(params: Mapping[str, str]) -> int | None:
    raw = params.get("PageSize")
    if raw is None or raw == "":
        return None
    size = plain_int(raw, max_digits=6)
    if size is None or size > access_keys.MAX_PAGE_SIZE:
        raise _invalid(f"PageSize must be an integer from 0 to {access_keys.MAX_PAGE_SIZE}.")
    return size


def _paged(call: Call, svc: Services, which: access_keys.UsageList) -> UsagePage:
    params = call.params
    access_key = _required(params, "AccessKey")
    service_name = _required(params, "ServiceName")
    page_size = _page_size(params)
    token = params.get("NextToken") or None
    if token is not None and len(token) > _MAX_TOKEN_LENGTH:
        raise _invalid("NextToken is malformed.")
    try:
        return access_keys.list_last_used(
            svc.store,
            svc.page_tokens,
            which,
            account_id=call.account_id,
            access_key_id=access_key,
            service_name=service_name,
            now_ms=call.now_ms,
            page_size=page_size,
            next_token=token,
            window_days=svc.settings.usage_window_days,
        )
    except (UsageQueryInvalid, InvalidPageToken) as exc:
        # InvalidQueryParameter is the one business error these APIs document.
        raise _invalid(f"{str(exc).rstrip('.')}.") from None


def _common(use: LastUse) -> dict[str, Any]:
    return {"UsedTimestamp": use.used_ms, "Detail": use.detail, "Source": use.source}


def _with_token(body: dict[str, Any], page: UsagePage) -> dict[str, Any]:
    if page.next_token is not None:
        body["NextToken"] = page.next_token
    return body


def get_access_key_last_used_ips(call: Call, svc: Services) -> dict[str, Any]:
    page = _paged(call, svc, access_keys.UsageList.IPS)
    # Key order follows the API reference's example.
    ips = [{**_common(u), "Ip": u.item} for u in page.items]
    return _with_token({"Ips": ips}, page)


def get_access_key_last_used_events(call: Call, svc: Services) -> dict[str, Any]:
    page = _paged(call, svc, access_keys.UsageList.EVENTS)
    events = [{"EventName": u.item, **_common(u)} for u in page.items]
    return _with_token({"Events": events}, page)


def get_access_key_last_used_resources(call: Call, svc: Services) -> dict[str, Any]:
    page = _paged(call, svc, access_keys.UsageList.RESOURCES)
    resources = [{"ResourceName": u.item, "ResourceType": u.item_type, **_common(u)} for u in page.items]
    return _with_token({"Resources": resources}, page)


def get_access_key_last_used_products(call: Call, svc: Services) -> dict[str, Any]:
    access_key = _required(call.params, "AccessKey")
    products = access_keys.last_used_products(
        svc.store,
        account_id=call.account_id,
        access_key_id=access_key,
        now_ms=call.now_ms,
        window_days=svc.settings.usage_window_days,
    )
    return {
        "Products": [
            {
                "ServiceName": p.service_name,
                "ServiceNameCn": p.service_name_cn,
                "ServiceNameEn": p.service_name_en,
                "UsedTimestamp": p.used_ms,
                "Source": p.source,
                "Detail": p.detail,
            }
            for p in products
        ]
    }


def get_access_key_last_used_info(call: Call, svc: Services) -> dict[str, Any]:
    access_key = _required(call.params, "AccessKey")
    info = access_keys.last_used_info(
        svc.store,
        account_id=call.account_id,
        access_key_id=access_key,
        now_ms=call.now_ms,
        window_days=svc.settings.usage_window_days,
    )
    body: dict[str, Any] = {
        "AccessKeyId": info.access_key_id,
        "AccountId": info.account_id,
        "OwnerId": info.owner_id,
        "UserName": info.user_name,
        "AccountType": info.account_type,
        "ServiceName": info.service_name,
        "ServiceNameCn": info.service_name_cn,
        "ServiceNameEn": info.service_name_en,
        "UsedTimestamp": info.used_ms,
        "Source": info.source,
        "Detail": info.detail,
    }
    # A key without use in the window answers only its id: the SDK leaves absent fields None,
    # which is how a caller tells "never used" from a use (and learns nothing about other accounts).
    return {k: v for k, v in body.items() if v is not None}
