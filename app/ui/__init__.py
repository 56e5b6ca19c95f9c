"""The web dashboard at ``/ui``: server-rendered pages over the JSON API.

``install(app)`` adds the routes, the vendored static files and the session store. The
pages call the API in-process as the signed-in user (:mod:`app.ui.api`), so they follow
exactly its visibility and permission rules. No torch here (import-linter checks it).
"""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from app.ui import auth, ensembles, jobs, models, submit
from app.ui.forms import FormTooLarge
from app.ui.session import SessionStore, UISettings
from app.ui.web import (
    HERE,
    CsrfRefused,
    SignInRequired,
    load_session,
    render,
    signin_redirect,
)


def install(app: FastAPI, settings: UISettings | None = None) -> None:
    ui = settings or UISettings()
    app.state.ui_settings = ui
    app.state.ui_sessions = SessionStore(ui, app.state.settings.db_url)  # in the registry
    for module in (auth, jobs, submit, models, ensembles):
        app.include_router(module.router, dependencies=[Depends(load_session)])
    app.mount("/ui/static", StaticFiles(directory=str(HERE / "static")), name="ui-static")

    @app.exception_handler(SignInRequired)
    async def _signin(request: Request, exc: SignInRequired) -> Response:
        return signin_redirect(exc.next_url)

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, exc: CsrfRefused) -> Response:
        return render(request, "error.html", None, status=403, title="403 · srflow",
                      status_code=403, detail="this form is stale or did not come from this "
                      "page (missing or wrong CSRF token): reload the page and try again")

    @app.exception_handler(FormTooLarge)
    async def _large(request: Request, exc: FormTooLarge) -> Response:
        return render(request, "error.html", None, status=413, title="413 · srflow",
                      status_code=413, detail="the form is too large")
