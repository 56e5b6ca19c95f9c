"""The JSON bodies the API answers with, as pydantic models: they are the OpenAPI schema
(``/openapi.json``) the docs show and the fuzzer checks every response against
(tests/service/test_fuzz.py, schemathesis' response_schema_conformance).

Routes build plain dicts and declare one of these as ``response_model``; keys a route
leaves out (a search result has no ``curve``) stay out (``response_model_exclude_unset``),
and no key is ever dropped (``extra="allow"``): the schema says what is certain about a
body, never less than what is sent.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Visibility = Literal["private", "group", "public"]
TIMESTAMP = "RFC 3339 in UTC, e.g. 2026-12-07T05:47:22Z"


class Body(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())


class Theory(Body):
    dim: int
    L: int
    kappa: float
    lam: float
    action: str | None = Field(None, description="the action's convention (model versions)")


class StoredFile(Body):
    sha256: str
    size: int


class ModelVersionOut(Body):
    """One model version; ``config``, ``metrics`` and ``curve`` only where the route
    shows them, null where a stored value could not be shown (see ``withheld``)."""

    name: str
    version: int
    ref: str = Field(description="NAME/VERSION")
    aliases: list[str]
    theory: Theory
    method: str
    ess: float | None
    acceptance: float | None
    couplings: dict[str, Any] | None
    config: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    curve: list[Any] | None = None
    seed: int | None
    code_version: str | None
    torch_version: str | None
    torchdiffeq_version: str | None
    device: str | None
    wall_time_s: float | None
    parent: str | None
    job_id: str | None
    sha256: str = Field(description="model.safetensors")
    size: int = Field(description="bytes of all files")
    files: dict[str, StoredFile]
    owner: str
    group: str
    visibility: Visibility
    create_time: str | None = Field(description=TIMESTAMP)
    download: str
    withheld: dict[str, str] | None = Field(None, description="field → why it reads null")


class ModelVersionList(Body):
    model_versions: list[ModelVersionOut]


class ModelOut(Body):
    name: str
    description: str | None
    owner: str
    group: str
    visibility: Visibility
    create_time: str | None = Field(description=TIMESTAMP)
    update_time: str | None = Field(description=TIMESTAMP)
    aliases: dict[str, int] = Field(description="alias → version")
    latest_version: int | None
    versions: list[ModelVersionOut]


class AliasOut(Body):
    name: str
    alias: str
    version: int
    aliases: dict[str, int]


class ModelVisibility(Body):
    name: str
    visibility: Visibility


class VersionVisibility(Body):
    name: str
    version: int
    visibility: Visibility


class EnsembleVisibility(Body):
    id: str
    visibility: Visibility


class EnsembleOut(Body):
    """``sha256``/``size``: of the file this caller downloads (without the source model's
    name when that model is hidden from them)."""

    id: str
    job_id: str | None
    kind: str
    theory: Theory
    n: int
    model: dict[str, Any] | None = Field(description="the source model version's link, or "
                                         "{name: null, version: null, redacted: true}")
    summary: dict[str, Any]
    observables: dict[str, Any] | None
    sha256: str
    size: int
    owner: str
    group: str
    visibility: Visibility
    create_time: str | None = Field(description=TIMESTAMP)
    download: str


class GroupOut(Body):
    name: str
    max_queued_jobs: int | None
    max_sample_volume: int | None
    create_time: str | None = Field(description=TIMESTAMP)


class GroupList(Body):
    groups: list[GroupOut]


class KeyOut(Body):
    prefix: str
    user: str
    state: Literal["active", "expired", "revoked"]
    create_time: str | None = Field(description=TIMESTAMP)
    expires_at: str | None = Field(description=TIMESTAMP)
    revoked_at: str | None = Field(description=TIMESTAMP)


class UserOut(Body):
    name: str
    admin: bool
    groups: list[str]
    create_time: str | None = Field(description=TIMESTAMP)
    keys: list[KeyOut] | None = Field(None, description="GET /v1/users/{name} only")


class NewKeyOut(Body):
    key: str = Field(description="shown once")
    prefix: str
    user: str
    expires_at: str | None = Field(description=TIMESTAMP)
    note: str


def binary(media_type: str, description: str) -> dict[str, Any]:
    """An OpenAPI response of raw bytes of ``media_type`` (a download)."""
    return {"description": description,
            "content": {media_type: {"schema": {"type": "string", "format": "binary"}}}}
