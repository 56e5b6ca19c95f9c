"""Changing shared objects: visibility (PATCH) and deletion (DELETE) of models, versions
and ensembles. Invisible → 404 (as everywhere); visible but not yours → 403."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Response
from pydantic import BaseModel, ConfigDict

from app.deps import CallerDep, SessionDep
from app.problems import Problem
from app.responses import EnsembleVisibility, ModelVisibility, VersionVisibility
from app.routes.ensembles import ensemble_or_404
from app.routes.models import model_or_404, version_or_404
from core.registry import access
from core.registry.keys import Caller

router = APIRouter(tags=["sharing"])


class VisibilityBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    visibility: Literal["private", "group", "public"]


def _forbid(obj: Any, caller: Caller, what: str) -> None:
    if not access.may_modify(obj, caller):
        raise Problem(403, f"you may read {what} but only its owner ({obj.owner}) or an admin "
                      "may change it", slug="forbidden")


def _in_use(exc: access.InUse) -> Problem:
    return Problem(409, str(exc), slug="in-use")


@router.patch("/models/{name}", summary="Change a model's visibility (and that of your "
              "versions in it; others' versions are only narrowed)",
              response_model=ModelVisibility)
def patch_model(name: str, body: Annotated[VisibilityBody, Body()], session: SessionDep,
                caller: CallerDep) -> dict[str, Any]:
    model = model_or_404(session, name, caller)
    _forbid(model, caller, f"model {name!r}")
    access.set_model_visibility(session, model, body.visibility, caller)
    session.commit()
    return {"name": name, "visibility": model.visibility}


@router.patch("/models/{name}/versions/{version}",
              summary="Change one version's visibility (at most its model's)",
              response_model=VersionVisibility)
def patch_version(name: str, version: int, body: Annotated[VisibilityBody, Body()],
                  session: SessionDep, caller: CallerDep) -> dict[str, Any]:
    mv = version_or_404(session, name, version, caller)
    _forbid(mv, caller, f"{name}/{version}")
    try:
        access.set_version_visibility(mv, body.visibility)
    except ValueError as exc:
        raise Problem(409, str(exc), slug="wider-than-model",
                      errors=[{"field": "visibility", "message": str(exc)}]) from None
    session.commit()
    return {"name": name, "version": mv.version, "visibility": mv.visibility}


@router.delete("/models/{name}", status_code=204, response_class=Response,
               summary="Delete a model with all its versions and aliases")
def delete_model(name: str, session: SessionDep, caller: CallerDep) -> Response:
    model = model_or_404(session, name, caller)
    _forbid(model, caller, f"model {name!r}")
    try:
        access.delete_model(session, model)
    except access.InUse as exc:
        raise _in_use(exc) from None
    session.commit()
    return Response(status_code=204)


@router.delete("/models/{name}/versions/{version}", status_code=204, response_class=Response,
               summary="Delete one model version")
def delete_version(name: str, version: int, session: SessionDep, caller: CallerDep) -> Response:
    mv = version_or_404(session, name, version, caller)
    _forbid(mv, caller, f"{name}/{version}")
    try:
        access.delete_version(session, mv)
    except access.InUse as exc:
        raise _in_use(exc) from None
    session.commit()
    return Response(status_code=204)


@router.patch("/ensembles/{ensemble_id}", summary="Change an ensemble's visibility",
              response_model=EnsembleVisibility)
def patch_ensemble(ensemble_id: str, body: Annotated[VisibilityBody, Body()],
                   session: SessionDep, caller: CallerDep) -> dict[str, Any]:
    ens = ensemble_or_404(session, ensemble_id, caller)
    _forbid(ens, caller, f"ensemble {ensemble_id}")
    access.set_visibility(ens, body.visibility)
    session.commit()
    return {"id": ens.id, "visibility": ens.visibility}


@router.delete("/ensembles/{ensemble_id}", status_code=204, response_class=Response,
               summary="Delete an ensemble (its file stays in the content store)")
def delete_ensemble(ensemble_id: str, session: SessionDep, caller: CallerDep) -> Response:
    ens = ensemble_or_404(session, ensemble_id, caller)
    _forbid(ens, caller, f"ensemble {ensemble_id}")
    access.delete_ensemble(session, ens)
    session.commit()
    return Response(status_code=204)
