"""Sign-in and sign-out pages.

Sign-in takes an AccessKey pair (its secret checked in constant time) or a native token with the
``read`` scope. The form carries a CSRF value that must equal a cookie set with the form
(double-submit: another site can neither read the cookie nor set it). Failed attempts are
counted per key id and per client IP, and past a few each further attempt has to wait.
"""

from __future__ import annotations

import asyncio
import secrets
import time

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from .session import (
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    SignInRefused,
    check_access_key,
    check_token,
    same_secret,
)
from .web import PREFIX, Console, PageError

__all__ = ["sign_in_form", "sign_in_submit", "sign_out"]

#: Every refused attempt takes at least this long, so guessing is slow even below the throttle.
FAILURE_DELAY_S = 0.25
_MAX_FIELD = 4096


def _next(target: str | None) -> str:
    """Only a console path: never another site (``//evil``), never a scheme."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"{PREFIX}/search"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _form_page(
    console: Console,
    request: Request,
    *,
    error: str = "",
    status: int = 200,
    fields: dict[str, str] | None = None,
) -> Response:
    csrf = secrets.token_urlsafe(24)
    response = console.page(
        request,
        "sign_in.html",
        status=status,
        csrf=csrf,
        error=error,
        next=_next(request.query_params.get("next") or (fields or {}).get("next")),
        fields=fields or {},
        title="Sign in",
    )
    response.set_cookie(
        SIGN_IN_COOKIE,
        csrf,
        max_age=3600,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return response


async def sign_in_form(console: Console, request: Request) -> Response:
    return _form_page(console, request)


async def sign_in_submit(console: Console, request: Request) -> Response:
    form = await request.form()
    fields = {k: str(v)[:_MAX_FIELD] for k, v in form.items() if isinstance(v, str)}
    cookie = request.cookies.get(SIGN_IN_COOKIE, "")
    if not cookie or not same_secret(fields.get("csrf", ""), cookie):
        raise PageError(
            403, "Form expired", "The sign-in form was not sent from this console, or it expired. Reload it."
        )
    key_id = fields.get("key_id", "").strip()
    secret = fields.get("secret", "")
    token = fields.get("token", "").strip()
    account = fields.get("account", "").strip()
    client = request.client.host if request.client else "?"
    # Per client IP always; per key id when one is given (tokens have no id before they are
    # found, and one shared name would let anybody lock every token holder out).
    names = (f"ip:{client}", f"key:{key_id}") if key_id and not token else (f"ip:{client}",)
    wait = console.throttle.wait_s(names)
    keep = {"key_id": key_id, "account": account, "next": fields.get("next", "")}
    if wait > 0:
        return _form_page(
            console,
            request,
            status=429,
            fields=keep,
            error=f"Too many failed sign-ins. Try again in {int(wait) + 1} seconds.",
        )
    store = console.svc.store
    try:
        if token:
            token_id, account, proof = await console.bounded(request, check_token, store, token, account)
            cookie_value = console.sessions.issue(
                kind="token", credential_id=token_id, account_id=account, proof=proof, now_s=time.time()
            )
        elif key_id and secret:
            key = await console.bounded(request, check_access_key, store, console.sealer, key_id, secret)
            cookie_value = console.sessions.issue(
                kind="key",
                credential_id=key.access_key_id,
                account_id=key.account_id,
                proof=b"",
                now_s=time.time(),
            )
        else:
            raise SignInRefused("Give an AccessKey ID and its secret, or a read token.")
    except SignInRefused as exc:
        console.throttle.failed(names)
        await asyncio.sleep(FAILURE_DELAY_S)
        return _form_page(console, request, status=401, fields=keep, error=str(exc))
    console.throttle.succeeded(names[1:])
    response = RedirectResponse(_next(fields.get("next")), status_code=303)
    # Lax, not Strict: a console link pasted into a ticket opens signed in. Every page a GET
    # reaches only reads; the forms that change something carry a CSRF value.
    response.set_cookie(
        SESSION_COOKIE,
        cookie_value,
        max_age=console.sessions.lifetime_s,
        path=PREFIX,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )
    response.delete_cookie(SIGN_IN_COOKIE, path=PREFIX)
    return response


async def sign_out(console: Console, request: Request) -> Response:
    form = await request.form()
    who = await console.bounded(request, console.principal, request)
    given = form.get("csrf")
    if who is not None and not (isinstance(given, str) and same_secret(given, who.csrf)):
        raise PageError(
            403, "Form expired", "The sign-out form was not sent from this console. Reload the page."
        )
    response = RedirectResponse(f"{PREFIX}/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=PREFIX, httponly=True, samesite="lax")
    return response
