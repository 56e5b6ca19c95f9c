"""SQLAlchemy 2 tables of the registry: jobs, models → versions → aliases, ensembles, keys.

The job row, not the broker, is the source of truth for a job's state. Every shared
object carries ``owner``, ``group`` and ``visibility`` (private | group | public), so
per-group isolation is a query filter, not a schema change. The schema is
created by the alembic migration in ``core/registry/migrations`` (a test checks that
the migration and these classes agree).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

ACTION_CONVENTION = "S = Σ_x[(1−2λ)φ_x² + λφ_x⁴ − 2κ Σ_μ φ_x φ_{x+μ}]"
JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
FINAL_STATES = ("succeeded", "failed", "cancelled")
VISIBILITIES = ("private", "group", "public")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC (SQLite has no time zones), returns aware UTC datetimes."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


# Byte counts, seeds and sample volumes: 64-bit. PostgreSQL's INTEGER is 32-bit (BIGINT
# since migration 0003); SQLite's INTEGER is already 64-bit and keeps its declared type.
Int64 = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Shared:
    """Ownership columns shared by every object a group can see."""

    owner: Mapped[str] = mapped_column(String(128), default="admin")
    group: Mapped[str] = mapped_column(String(128), default="default")
    visibility: Mapped[str] = mapped_column(String(16), default="group")


class Job(Shared, Base):
    __tablename__ = "jobs"
    __table_args__ = (UniqueConstraint("owner", "idempotency_key", name="uq_jobs_idempotency"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # = Celery task id
    kind: Mapped[str] = mapped_column(String(16), index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True, default="queued")
    queue: Mapped[str] = mapped_column(String(32), default="cpu")
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error_type: Mapped[str | None] = mapped_column(String(128), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    start_time: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    update_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    end_time: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    attempt_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    worker: Mapped[str | None] = mapped_column(String(255), nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    model_name: Mapped[str | None] = mapped_column(String(200), nullable=True)  # train jobs


class RegisteredModel(Shared, Base):
    __tablename__ = "registered_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    update_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    versions: Mapped[list[ModelVersion]] = relationship(
        back_populates="model", order_by="ModelVersion.version"
    )
    aliases: Mapped[list[ModelAlias]] = relationship(back_populates="model")


class ModelVersion(Shared, Base):
    """One trained flow: its theory, how it was made, how good it is, where its files are.

    ``files`` maps each file name (model.safetensors, config.json, metrics.json) to
    ``{"sha256", "size"}`` in the content-addressed store; ``sha256`` is the weights'
    (model.safetensors) digest and ``size`` the total bytes of all files.
    """

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version", name="uq_model_versions_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    dim: Mapped[int] = mapped_column(Integer, index=True)
    L: Mapped[int] = mapped_column(Integer, index=True)
    kappa: Mapped[float] = mapped_column(Float)
    lam: Mapped[float] = mapped_column(Float)
    action: Mapped[str] = mapped_column(String(128), default=ACTION_CONVENTION)
    method: Mapped[str] = mapped_column(String(32), index=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # architecture + solver
    couplings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # learned
    ess: Mapped[float | None] = mapped_column(Float, nullable=True)  # ESS/N
    acceptance: Mapped[float | None] = mapped_column(Float, nullable=True)
    curve: Mapped[list[Any]] = mapped_column(JSON, default=list)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    seed: Mapped[int | None] = mapped_column(Int64, nullable=True)
    code_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    torch_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    torchdiffeq_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    device: Mapped[str | None] = mapped_column(String(64), nullable=True)
    wall_time_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    parent: Mapped[str | None] = mapped_column(String(255), nullable=True)
    job_id: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Int64)  # bytes: 64-bit on PostgreSQL too
    files: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    model: Mapped[RegisteredModel] = relationship(back_populates="versions")


class ModelAlias(Base):
    """A movable pointer (``best``, ``production``...) to one version of one model."""

    __tablename__ = "model_aliases"

    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id"), primary_key=True)
    alias: Mapped[str] = mapped_column(String(64), primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    update_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    model: Mapped[RegisteredModel] = relationship(back_populates="aliases")
    version: Mapped[ModelVersion] = relationship()


class Ensemble(Shared, Base):
    __tablename__ = "ensembles"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_id: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    model_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id"), nullable=True
    )
    kind: Mapped[str] = mapped_column(String(16))  # hmc | sample
    dim: Mapped[int] = mapped_column(Integer)
    L: Mapped[int] = mapped_column(Integer)
    kappa: Mapped[float] = mapped_column(Float)
    lam: Mapped[float] = mapped_column(Float)
    n: Mapped[int] = mapped_column(Integer)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # observables etc.
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Int64)
    blob_path: Mapped[str] = mapped_column(String(255))  # relative to the artifact root
    create_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # the file without its source model's name, for readers who may not see that model
    # (core.registry.ensemble_redaction); made when first needed
    redacted_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    redacted_size: Mapped[int | None] = mapped_column(Int64, nullable=True)

    model_version: Mapped[ModelVersion | None] = relationship()


class ApiKey(Base):
    """An API key: only its SHA-256 is stored; ``prefix`` is the visible handle."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    user: Mapped[str] = mapped_column(String(128))
    groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # the key that asked for this one (None: the CLI, SRFLOW_ADMIN_KEY, keys from before
    # 0004); revoking a key revokes the keys it issued, transitively
    issued_by: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), nullable=True,
                                                  index=True)


# -- users, groups and idempotency ---------------------------------------------


class Group(Base):
    """A research group: the unit of sharing and of quotas (None: the server's default)."""

    __tablename__ = "groups"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    max_queued_jobs: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_sample_volume: Mapped[int | None] = mapped_column(Int64, nullable=True)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(Base):
    __tablename__ = "users"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Membership(Base):
    """User ∈ group; ``position`` orders a user's groups (the first owns new objects)."""

    __tablename__ = "memberships"

    user: Mapped[str] = mapped_column(ForeignKey("users.name"), primary_key=True)
    group: Mapped[str] = mapped_column(ForeignKey("groups.name"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class IdempotencyRecord(Base):
    """One ``Idempotency-Key`` of one user for one endpoint (``scope``): the request's
    digest, whether the first request is still being processed, and its answer."""

    __tablename__ = "idempotency"

    owner: Mapped[str] = mapped_column(String(128), primary_key=True)
    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="processing")  # | done
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    update_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DashboardSession(Base):
    """A signed-in dashboard browser (app/ui/session.py), shared by every API process and
    kept across restarts. The cookie holds a random id; only its SHA-256 is stored, with
    the API key sealed under a key derived from that id (the database alone cannot open
    it). Deleted with its key; dead once the key is revoked or expires."""

    __tablename__ = "ui_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"),
                                        index=True)
    sealed_key: Mapped[str] = mapped_column(Text)
    user: Mapped[str] = mapped_column(String(128))
    groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    seen_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
