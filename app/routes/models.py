"""/v1/models: search, get, versions, aliases, download (zip with a model card)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from app.deps import CallerDep, SessionDep, SettingsDep
from app.operations import rfc3339
from app.problems import Problem
from app.responses import AliasOut, ModelOut, ModelVersionList, ModelVersionOut, binary
from app.routes.card import model_card
from app.zipstream import zip_stream
from core.registry import catalog
from core.registry.access import can_see
from core.registry.free_energies import free_energies_of
from core.registry.json_depth import MAX_JSON_DEPTH, depth_within
from core.registry.keys import Caller
from core.registry.models import ModelVersion, RegisteredModel
from core.registry.redact import redact_paths
from core.registry.store import ArtifactStore

router = APIRouter(tags=["models"])


def _readable(mv: ModelVersion) -> tuple[dict[str, Any], dict[str, str]]:
    """The version's JSON columns as a reader gets them, and what was withheld: a value
    nested deeper than MAX_JSON_DEPTH (stored before uploads were depth-checked) would
    answer 500 to every reader, so it reads as null with the reason; work-file paths in a
    config (a scan point's parent directory) read as ``.../NAME``."""
    shown: dict[str, Any] = {}
    withheld: dict[str, str] = {}
    for field in ("config", "metrics", "curve", "couplings"):
        value = getattr(mv, field)
        if depth_within(value, MAX_JSON_DEPTH):
            shown[field] = redact_paths(value)
        else:
            shown[field] = None
            withheld[field] = (f"stored {field} is nested deeper than {MAX_JSON_DEPTH} "
                               "arrays/objects; download the version for its files")
    return shown, withheld


def version_dict(mv: ModelVersion, aliases: list[str] | None = None) -> dict[str, Any]:
    name = mv.model.name
    shown, withheld = _readable(mv)
    out = {
        "name": name,
        "version": mv.version,
        "ref": f"{name}/{mv.version}",
        "aliases": aliases or [],
        "theory": {"dim": mv.dim, "L": mv.L, "kappa": mv.kappa, "lam": mv.lam,
                   "action": mv.action},
        "method": mv.method,
        "ess": mv.ess,
        "acceptance": mv.acceptance,
        "couplings": shown["couplings"],
        "config": shown["config"],
        "metrics": shown["metrics"],
        "curve": shown["curve"],
        "seed": mv.seed,
        "code_version": mv.code_version,
        "torch_version": mv.torch_version,
        "torchdiffeq_version": mv.torchdiffeq_version,
        "device": mv.device,
        "wall_time_s": mv.wall_time_s,
        "parent": mv.parent,
        "job_id": mv.job_id,
        "sha256": mv.sha256,
        "size": mv.size,
        "files": mv.files,
        "owner": mv.owner, "group": mv.group, "visibility": mv.visibility,
        "create_time": rfc3339(mv.create_time),
        "download": f"/v1/models/{name}/versions/{mv.version}/download",
    }
    if withheld:
        out["withheld"] = withheld
    return out


def _aliases_by_version(session: Session, model: RegisteredModel) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for alias, version in catalog.aliases_of(session, model.id).items():
        out.setdefault(version, []).append(alias)
    return out


def model_or_404(session: Session, name: str, caller: Caller) -> RegisteredModel:
    model = catalog.get_model(session, name, caller)
    if model is None:
        raise Problem(404, f"no model {name!r}: GET /v1/models lists the models you can see",
                      slug="model-not-found")
    return model


def version_or_404(session: Session, name: str, version: int, caller: Caller) -> ModelVersion:
    model_or_404(session, name, caller)
    mv = catalog.get_version(session, name, version, caller)
    if mv is None:
        raise Problem(404, f"model {name!r} has no version {version}: "
                      f"GET /v1/models/{name} lists its versions", slug="model-not-found")
    return mv


@router.get("/models", summary="Search model versions by theory, method and ESS/N",
            response_model=ModelVersionList, response_model_exclude_unset=True)
def search_models(
    session: SessionDep,
    caller: CallerDep,
    dim: Annotated[int | None, Query(ge=1, le=3)] = None,
    L: int | None = None,
    kappa_min: float | None = None,
    kappa_max: float | None = None,
    lam_min: float | None = None,
    lam_max: float | None = None,
    method: str | None = None,
    min_ess: Annotated[float | None, Query(ge=0.0, le=1.0)] = None,
) -> dict[str, Any]:
    found = catalog.search_versions(
        session, caller, dim=dim, L=L, kappa_min=kappa_min, kappa_max=kappa_max,
        lam_min=lam_min, lam_max=lam_max, method=method, min_ess=min_ess,
    )
    cache: dict[int, dict[int, list[str]]] = {}
    out = []
    for mv in found:
        if mv.model_id not in cache:
            cache[mv.model_id] = _aliases_by_version(session, mv.model)
        d = version_dict(mv, cache[mv.model_id].get(mv.version))
        for heavy in ("curve", "config", "metrics"):
            d.pop(heavy)
        out.append(d)
    return {"model_versions": out}


@router.get("/models/{name}", summary="A registered model, its versions and aliases",
            response_model=ModelOut, response_model_exclude_unset=True)
def get_model(name: str, session: SessionDep, caller: CallerDep) -> dict[str, Any]:
    model = model_or_404(session, name, caller)
    by_version = _aliases_by_version(session, model)
    versions = [version_dict(mv, by_version.get(mv.version)) for mv in model.versions
                if can_see(mv, caller)]  # loaded already: no query per version
    for v in versions:
        v.pop("curve")
    aliases = {a: v["version"] for v in versions for a in v["aliases"]}
    return {
        "name": model.name, "description": model.description,
        "owner": model.owner, "group": model.group, "visibility": model.visibility,
        "create_time": rfc3339(model.create_time), "update_time": rfc3339(model.update_time),
        "aliases": aliases,  # only those on versions the caller can see
        "latest_version": max((v["version"] for v in versions), default=None),
        "versions": versions,
    }


@router.get("/models/{name}/versions/{version}", summary="One model version, with its curve",
            response_model=ModelVersionOut, response_model_exclude_unset=True)
def get_version(name: str, version: int, session: SessionDep, caller: CallerDep) -> dict[str, Any]:
    mv = version_or_404(session, name, version, caller)
    return version_dict(mv, _aliases_by_version(session, mv.model).get(mv.version))


class AliasBody(BaseModel):
    version: int = Field(ge=1, description="the version the alias points to")


@router.put("/models/{name}/aliases/{alias}", summary="Set or move an alias",
            response_model=AliasOut, response_model_exclude_unset=True)
def set_alias(
    name: str, alias: str, body: Annotated[AliasBody, Body()], session: SessionDep,
    caller: CallerDep,
) -> dict[str, Any]:
    model = model_or_404(session, name, caller)
    mv = version_or_404(session, name, body.version, caller)
    if not (caller.is_admin or model.owner == caller.user or model.group in caller.groups):
        raise Problem(403, f"only {model.group!r} members can move aliases of {name!r}")
    try:
        catalog.set_alias(session, model, alias, mv)
    except ValueError as exc:
        raise Problem(422, str(exc), errors=[{"field": "alias", "message": str(exc)}]) from None
    session.commit()
    return {"name": name, "alias": alias, "version": mv.version,
            "aliases": catalog.aliases_of(session, model.id)}


@router.get("/models/{name}/versions/{version}/download",
            summary="Zip: model.safetensors, config.json, metrics.json, README.md",
            response_class=Response,
            responses={200: binary("application/zip", "the version's files, streamed")})
def download_model(
    name: str, version: int, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    mv = version_or_404(session, name, version, caller)
    store = ArtifactStore(settings.artifacts_dir)
    entries: list[tuple[str, Path | bytes]] = [  # streamed: never the whole zip in memory
        (fname, store.path(info["sha256"])) for fname, info in sorted(mv.files.items())]
    if not all(isinstance(p, Path) and p.is_file() for _, p in entries):
        raise Problem(500, f"{name}/{version} is registered but a file is missing from the "
                      "artifact store; tell the admin")
    entries.append(("README.md", model_card(version_dict(mv),
                                            free_energies_of(session, mv, caller)).encode()))
    entries.append(("registry.json", json.dumps(
        {k: v for k, v in version_dict(mv).items() if k != "curve"}, indent=2).encode()))
    return StreamingResponse(zip_stream(entries), media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{name}-v{version}.zip"',
        "X-Weights-Sha256": mv.sha256,
    })
