"""Sign-in with an API key (→ a session cookie) and sign-out."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from app.ui.forms import read_form
from app.ui.session import (
    COOKIE,
    CSRF_FIELD,
    SIGNIN_COOKIE,
    UISettings,
    clear_cookie,
    same_origin,
    same_token,
    set_cookie,
)
from app.ui.web import CsrfRefused, current, redirect, render, store
from core.registry.accounts import resolve_caller
from core.registry.db import session_factory
from core.registry.keys import Caller

router = APIRouter()


def _ui(request: Request) -> UISettings:
    return request.app.state.ui_settings  # type: ignore[no-any-return]


def safe_next(url: str | None) -> str:
    """Only a path inside the dashboard: never an open redirect."""
    if (url and url.startswith("/ui") and "//" not in url and "\\" not in url
            and not url.startswith("/ui/signin")):
        return url
    return "/ui/jobs"


def _signin_page(request: Request, next_url: str, error: str | None,
                 status: int = 200) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(request, "signin.html", None, status=status, title="Sign in · srflow",
                      signin_token=token, next=next_url, error=error)
    set_cookie(response, request, _ui(request), SIGNIN_COOKIE, token, max_age=3600)
    return response


@router.get("/ui", include_in_schema=False)
def home() -> Response:
    return redirect("/ui/jobs")


@router.get("/ui/signin", include_in_schema=False)
def signin_form(request: Request, next: str | None = None) -> Response:
    return _signin_page(request, safe_next(next), None)


def _resolve(request: Request, key: str) -> Caller | None:
    with session_factory(request.app.state.settings.db_url)() as s:
        return resolve_caller(s, key)


@router.post("/ui/signin", include_in_schema=False)
async def signin(request: Request) -> Response:
    form = await read_form(request)
    if not same_origin(request) or not same_token(request.cookies.get(SIGNIN_COOKIE),
                                                  form.get(CSRF_FIELD)):
        raise CsrfRefused()
    key = form.get("api_key", "").strip()
    next_url = safe_next(form.get("next"))
    caller = await run_in_threadpool(_resolve, request, key) if key else None
    if caller is None:
        msg = ("enter your API key (srf_…)" if not key else
               "this API key is unknown, revoked or expired")
        return _signin_page(request, next_url, msg, status=401)
    made = await run_in_threadpool(store(request).create, key, caller)
    if made is None:  # the key row went away between the two reads
        return _signin_page(request, next_url, "this API key is unknown, revoked or expired",
                            status=401)
    sid, _ = made
    response = redirect(next_url)
    ui = _ui(request)
    set_cookie(response, request, ui, COOKIE, sid, max_age=int(ui.session_max_s))
    clear_cookie(response, request, ui, SIGNIN_COOKIE)
    return response


@router.post("/ui/signout", include_in_schema=False)
async def signout(request: Request) -> Response:
    ctx = current(request)
    form = await read_form(request)
    if not same_origin(request) or not same_token(ctx.session.csrf, form.get(CSRF_FIELD)):
        raise CsrfRefused()
    await run_in_threadpool(store(request).drop, request.cookies.get(COOKIE))
    response = redirect("/ui/signin")
    clear_cookie(response, request, _ui(request), COOKIE)
    return response
