"""One settings object for the service (API, workers, CLI client), read from ``SRFLOW_*``.

No torch here: the API process imports this. Every URL that is not given is derived
from ``data_dir``, so ``srflow serve`` with no environment at all gives the embedded
single-machine service (filesystem broker, SQLite result store and registry, local
artifacts) under ``./srflow-data``.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Service settings; env ``SRFLOW_<FIELD>`` (e.g. ``SRFLOW_BROKER_URL``)."""

    model_config = SettingsConfigDict(env_prefix="SRFLOW_", extra="ignore", frozen=True)

    data_dir: Path = Field(Path("srflow-data"), description="registry, artifacts, embedded broker")
    database_url: str | None = Field(None, description="None: sqlite:///<data_dir>/registry.db")
    broker_url: str | None = Field(None, description="None: embedded filesystem:// broker")
    result_backend: str | None = Field(None, description="None: db+sqlite:///<data_dir>/...")
    admin_key: SecretStr | None = Field(None, description="made a working admin key at start-up")

    # limits a physicist hits with a clear 422
    max_n_samples: int = Field(1_000_000, ge=1)
    max_page_size: int = Field(200, ge=1)

    # fault tolerance (DESIGN.md section 8)
    progress_interval_s: float = Field(1.0, ge=0.0, description="min seconds between DB writes")
    heartbeat_timeout_s: float = Field(900.0, gt=0.0, description="running job presumed lost")
    visibility_timeout_s: int = Field(7 * 24 * 3600, gt=0, description="> the longest job")
    max_attempts: int = Field(3, ge=1)
    sse_poll_s: float = Field(0.5, gt=0.0, description="database poll period for /events")
    heartbeat_interval_s: float = Field(10.0, gt=0.0, description="worker heartbeat period")
    soft_time_limit_s: float | None = Field(
        None, gt=0.0, description="a running job checkpoints and is re-queued after this long")

    # sharing: uploads and per-group quotas (a group row may override the quotas)
    max_upload_bytes: int = Field(512 * 2**20, ge=1, description="POST /v1/models body limit")
    max_queued_jobs: int = Field(100, ge=1, description="queued + running jobs per group")
    max_sample_volume: int = Field(
        2**34, ge=1, description="lattice sites one job generates: hmc (n_samples + chains·"
        "(n_therm + pilot))·L^d, sample n_samples·L^d, train (batch·steps + eval)·L^d "
        "+ (ir) langevin_therm·batch·coarse_L^d per grow stage")

    # job budgets: memory against a worker, wall time, lost workers
    worker_memory_bytes: int = Field(16 * 2**30, ge=2**20,
                                     description="memory one job may use on a worker")
    oom_risk_fraction: float = Field(
        0.5, gt=0.0, le=1.0, description="a lost worker whose job was estimated above this "
        "fraction of worker_memory_bytes fails the job at once (memory) instead of retrying")
    max_job_seconds: float = Field(
        48 * 3600.0, gt=0.0, description="wall time of one job attempt: the default and the "
        "largest hmc max_seconds / train max_minutes; a job running longer is failed")

    # abuse resistance: per-user rate limits and event streams (per user, not
    # per key: a fresh key would reset them), request bodies, keys, failed sign-ins
    rate_jobs_per_minute: float = Field(60.0, gt=0.0, description="POST /v1/jobs per user")
    rate_jobs_burst: int = Field(60, ge=1, description="submissions allowed at once")
    rate_uploads_per_minute: float = Field(12.0, gt=0.0, description="uploads per user")
    rate_uploads_burst: int = Field(6, ge=1, description="uploads allowed at once")
    max_streams_per_user: int = Field(8, ge=1,
                                      description="concurrent /events streams per user")
    sse_key_recheck_s: float = Field(30.0, gt=0.0,
                                     description="an event stream re-checks its key this often")
    max_request_bytes: int = Field(
        2**20, ge=1024, description="body of any request but an upload (POST /v1/models, "
        "max_upload_bytes): 413 beyond, before the key is checked or the body parsed")
    max_keys_per_user: int = Field(
        10, ge=1, description="active (unrevoked, unexpired) keys a non-admin may hold: "
        "issuing one more answers 409")
    auth_failures_burst: int = Field(
        20, ge=1, description="failed sign-ins / unknown API keys one client address may "
        "send at once; then 429 with Retry-After until some are forgiven")
    auth_failures_per_minute: float = Field(
        6.0, gt=0.0, description="failed attempts forgiven per minute and address")

    # deployment: database pool per process, waiting for dependencies (docs/deployment.md)
    db_pool_size: int = Field(
        10, ge=1, description="PostgreSQL connections each process keeps; keep (API processes "
        "+ worker processes) × (db_pool_size + db_max_overflow) ≤ max_connections − 3")
    db_max_overflow: int = Field(10, ge=0, description="extra connections a process may open "
                                 "under load, closed when returned")
    db_pool_timeout_s: float = Field(
        10.0, gt=0.0, description="a request waits this long for a pooled connection, then is "
        "answered 503 with Retry-After (shed, not queued until the client times out)")
    api_threads: int = Field(
        512, ge=1, description="worker threads of each API process (blocking work: queries, "
        "file reads); at least the requests one process has in flight, so a request holding a "
        "pooled connection always gets a thread for its next step")
    startup_wait_s: float = Field(
        120.0, ge=0.0, description="serve and worker wait this long for the database and the "
        "broker to accept connections before they give up")

    # client side (srflow submit/status/...)
    url: str = Field("http://127.0.0.1:8000", description="server for the client verbs")
    key: SecretStr | None = Field(None, description="API key for the client verbs")

    @property
    def embedded(self) -> bool:
        """True when no broker is configured: filesystem transport under data_dir."""
        return self.broker_url is None

    @cached_property
    def root(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def artifacts_dir(self) -> Path:
        return self.root / "artifacts"

    @property
    def work_dir(self) -> Path:
        """Per-job scratch directories (checkpoints live here so a retry resumes)."""
        return self.root / "work"

    @property
    def broker_dir(self) -> Path:
        return self.root / "broker"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.root / 'registry.db'}"

    @property
    def celery_broker_url(self) -> str:
        return self.broker_url or "filesystem://"

    @property
    def celery_result_backend(self) -> str:
        if self.result_backend:
            return self.result_backend
        if self.broker_url and self.broker_url.startswith(("redis://", "rediss://")):
            return self.broker_url
        return f"db+sqlite:///{self.root / 'celery-results.db'}"


def get_settings() -> Settings:
    """Settings from the environment (a fresh read, so tests can change the env)."""
    return Settings()
