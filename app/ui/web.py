"""What every dashboard page shares: templates, the signed-in user, the API as that user,
security headers, and turning an API error into a page."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from app.ui.api import Api, ApiResponse
from app.ui.session import COOKIE, CSRF_FIELD, SessionStore, UISession, same_origin, same_token

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))

# No inline script or style anywhere: the policy can forbid both.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                               "script-src 'self'; frame-ancestors 'none'; form-action 'self'; "
                               "base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class SignInRequired(Exception):
    """Raised by :func:`current` without a valid session: the handler redirects."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class CsrfRefused(Exception):
    """A form post without this session's token (or from another origin): 403."""


def store(request: Request) -> SessionStore:
    return request.app.state.ui_sessions  # type: ignore[no-any-return]


@dataclass
class Ctx:
    """The signed-in user of one request and the API as them."""

    request: Request
    session: UISession
    api: Api


def load_session(request: Request) -> None:
    """Every dashboard route's dependency: the signed-in session (a database read), looked
    up once per request in a worker thread (a sync dependency), never on the event loop."""
    request.state.ui_session = store(request).get(request.cookies.get(COOKIE))


def current(request: Request) -> Ctx:
    sess: UISession | None = getattr(request.state, "ui_session", None)
    if sess is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(path)
    return Ctx(request, sess, Api(request.app, sess.key))


def check_csrf(request: Request, form: dict[str, str], expected: str | None) -> None:
    if not same_origin(request) or not same_token(expected, form.get(CSRF_FIELD)):
        raise CsrfRefused()


def render(request: Request, template: str, ctx: Ctx | None, status: int = 200,
           **values: Any) -> HTMLResponse:
    values.setdefault("title", "srflow")
    response = templates.TemplateResponse(
        request, template, {"user": ctx.session if ctx else None,
                            "csrf": ctx.session.csrf if ctx else "", **values},
        status_code=status)
    response.headers.update(SECURITY_HEADERS)
    return response


def api_error_page(ctx: Ctx, r: ApiResponse, what: str) -> HTMLResponse:
    """The API's status and message, as a page (404 stays 404: nothing leaks)."""
    if r.status == 401:
        raise SignInRequired(ctx.request.url.path)
    doc = r.problem
    return render(ctx.request, "error.html", ctx, status=r.status, title=f"{r.status} · {what}",
                  status_code=r.status, detail=doc.get("detail") or doc.get("title") or what)


def redirect(url: str) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    response.headers.update(SECURITY_HEADERS)
    return response


def signin_redirect(next_url: str) -> Response:
    return redirect(f"/ui/signin?next={quote(next_url, safe='/')}")
