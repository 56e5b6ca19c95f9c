"""Service verbs of ``srflow``: serve, worker, admin, and the client verbs submit, status,
wait, cancel, download, models.

``cli.main`` calls :func:`register` with its subparsers; every verb sets
``handler(args) -> int``. The API and the worker run as subprocesses (uvicorn, celery);
the references they are given are read off the imported objects (:func:`api_factory`,
:func:`celery_app_ref`), so the CLI imports app and worker like any other module and a
rename shows up in lint-imports, not at run time. Those imports happen inside the verbs
that start the service: a client-only install runs the client verbs without them.
Standalone: ``python -m cli.service VERB ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from cli.admin_verbs import add_admin_verbs
from cli.client_verbs import add_client_verbs
from cli.readiness import add_probe_verb, wait_for_dependencies
from core.settings import Settings, get_settings


def api_factory() -> str:
    """``module:function`` of the API's application factory, for ``uvicorn --factory``."""
    from app.main import create_app

    return f"{create_app.__module__}:{create_app.__qualname__}"


def celery_app_ref() -> str:
    """``module:attribute`` of the Celery application, for ``celery -A``."""
    from worker import celery_app

    return f"{celery_app.__name__}:app"


def _settings_for(args: argparse.Namespace) -> Settings:
    if getattr(args, "data_dir", None):
        os.environ["SRFLOW_DATA_DIR"] = str(args.data_dir)
    return get_settings()


def worker_command(queues: str, concurrency: int, hostname: str | None, loglevel: str,
                   embedded: bool) -> list[str]:
    cmd = [sys.executable, "-m", "celery", "-A", celery_app_ref(), "worker", "-Q", queues,
           "-c", str(concurrency), "--pool", "prefork", "--max-tasks-per-child", "1",
           "--prefetch-multiplier", "1", "-l", loglevel]
    if hostname:
        cmd += ["-n", hostname]
    if embedded:
        cmd += ["--without-mingle", "--without-gossip", "--without-heartbeat"]
    return cmd


ADMIN_KEY_FILE = "admin-key"


def _first_key(settings: Settings) -> None:
    """Make the first admin key on a fresh server. The key goes to ``<data_dir>/admin-key``
    (mode 0600), never to stderr: a container's logs are read by more people than its data
    volume. Only the file's path is printed."""
    from core.registry.db import session_scope, upgrade
    from core.registry.keys import WeakAdminKey, any_key, create_key, ensure_key

    upgrade(settings.db_url)
    if settings.admin_key is not None:
        try:
            with session_scope(settings.db_url) as s:
                works = ensure_key(s, settings.admin_key.get_secret_value())
        except WeakAdminKey as exc:  # refused before anything is stored: one line, exit 2
            print(str(exc), file=sys.stderr)
            raise SystemExit(2) from None
        print("srflow: SRFLOW_ADMIN_KEY is a working admin key" if works else
              "srflow: SRFLOW_ADMIN_KEY was revoked (it stays revoked); set a new one",
              file=sys.stderr)
        return
    with session_scope(settings.db_url) as s:
        if any_key(s):
            print("srflow: make a key with 'srflow admin create-key --user NAME'",
                  file=sys.stderr)
            return
        new = create_key(s, user="admin", groups=["default"], is_admin=True)
        path = settings.root / ADMIN_KEY_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            os.fchmod(fh.fileno(), 0o600)  # also if the file existed with wider rights
            fh.write(new.key + "\n")
    print(f"srflow: first admin key written to {path} (mode 0600; read it, keep it, delete "
          "the file)", file=sys.stderr)


def broker_persistence_warning(url: str) -> str | None:
    """One line when a Redis broker would lose queued jobs on restart (``appendonly no``;
    RDB ``save`` snapshots alone lose what arrived since the last one), else None.
    Celery's messages live only in Redis: with AOF off a restart drops every queued job
    (the reaper re-sends only running ones). Not Redis, or CONFIG refused: None."""
    if not url.startswith(("redis://", "rediss://")):
        return None
    import redis

    try:
        with redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3) as r:
            aof = str(r.config_get("appendonly").get("appendonly", "")).lower()
            save = str(r.config_get("save").get("save", "")).strip()
    except Exception:  # unreachable (the API says so) or CONFIG disabled by the host
        return None
    if aof == "yes":
        return None
    snapshots = f"RDB snapshots only (save {save!r})" if save else "no RDB snapshots either"
    return (f"srflow: warning: the broker's Redis has appendonly off and {snapshots}: queued "
            "jobs are lost when Redis restarts; run it with --appendonly yes "
            "(docker-compose.yml does)")


def api_command(host: str, port: int, workers: int, loglevel: str) -> list[str]:
    """uvicorn serving the API's factory; ``workers`` > 1: that many processes sharing the
    socket (sessions, rate limits and jobs live in the database, so any process serves any
    request)."""
    cmd = [sys.executable, "-m", "uvicorn", "--factory", api_factory(), "--host", host,
           "--port", str(port), "--log-level", loglevel.lower()]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    return cmd


def _metrics_env(settings: Settings, workers: int, port: int) -> dict[str, str]:
    """Several API processes: Prometheus' multiprocess mode in a directory of this server's
    own, wiped at each start (app/metrics.py), unless PROMETHEUS_MULTIPROC_DIR is set."""
    if workers < 2 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return {}
    folder = settings.root / f"prometheus-{port}"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return {"PROMETHEUS_MULTIPROC_DIR": str(folder)}


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings_for(args)
    if args.workers < 1:
        raise SystemExit("srflow: error: --workers must be at least 1")
    settings.root.mkdir(parents=True, exist_ok=True)
    wait_for_dependencies(settings)
    _first_key(settings)
    from core.registry.db import engine_for

    engine_for(settings.db_url).dispose()  # this process serves nothing: no idle connection
    warning = broker_persistence_warning(settings.broker_url or "")
    if warning:
        print(warning, file=sys.stderr)
    env = dict(os.environ, SRFLOW_DATA_DIR=str(settings.root),
               **_metrics_env(settings, args.workers, args.port))
    procs: list[subprocess.Popen[bytes]] = []
    if settings.embedded:
        procs.append(subprocess.Popen(
            worker_command("cpu,gpu", 1, "embedded@%h", args.loglevel, True), env=env))
    procs.append(subprocess.Popen(api_command(args.host, args.port, args.workers,
                                              args.loglevel), env=env))
    url = f"http://{args.host}:{args.port}"
    mode = "embedded (filesystem broker, SQLite)" if settings.embedded else "API only"
    if args.workers > 1:
        mode += f", {args.workers} API processes"
    print(f"srflow: serving {url} ({mode}); data in {settings.root}; docs at {url}/docs",
          file=sys.stderr)
    print(f"srflow: export SRFLOW_URL={url} SRFLOW_KEY=<key>", file=sys.stderr)
    stop = {"now": False}

    def _term(*_: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, _term)
    signal.signal(signal.SIGINT, _term)
    try:
        while not stop["now"] and all(p.poll() is None for p in procs):
            time.sleep(0.5)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
    return 0 if stop["now"] else 1


def cmd_worker(args: argparse.Namespace) -> int:
    settings = _settings_for(args)
    wait_for_dependencies(settings)
    cmd = worker_command(args.queues, args.concurrency, args.hostname, args.loglevel,
                         settings.embedded)
    os.execv(sys.executable, cmd)  # the worker replaces this process (signals go to it)
    return 0  # pragma: no cover


def cmd_create_key(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from core.registry.db import session_scope, upgrade
    from core.registry.keys import create_key
    from core.registry.models import utcnow

    settings = _settings_for(args)
    upgrade(settings.db_url)
    expires = utcnow() + timedelta(days=args.expires_days) if args.expires_days else None
    with session_scope(settings.db_url) as s:
        new = create_key(s, user=args.user, groups=args.group or ["default"],
                         is_admin=args.admin, expires_at=expires)
    if args.json:
        print(json.dumps({"key": new.key, "prefix": new.prefix, "user": args.user}))
    else:
        print(new.key)
    return 0


def register(subparsers: Any) -> None:
    """Add serve, worker, admin and the client verbs to ``srflow``'s subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", type=Path, default=None,
                        help="service data directory (SRFLOW_DATA_DIR; default ./srflow-data)")
    common.add_argument("--loglevel", default="INFO")

    p = subparsers.add_parser("serve", parents=[common], help="run the HTTP API (and, with no "
                              "SRFLOW_BROKER_URL, an embedded worker)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="API processes (uvicorn --workers); "
                   "each keeps its own database pool: see docs/deployment.md")
    p.set_defaults(handler=cmd_serve)

    p = subparsers.add_parser("worker", parents=[common], help="run a Celery worker; on a GPU "
                              "machine one per GPU: CUDA_VISIBLE_DEVICES=i srflow worker -Q gpu")
    p.add_argument("--queues", "-Q", default="cpu", help="gpu, cpu or gpu,cpu")
    p.add_argument("--concurrency", "-c", type=int, default=1)
    p.add_argument("--hostname", "-n", default=None)
    p.set_defaults(handler=cmd_worker)

    admin = subparsers.add_parser("admin", help="administration").add_subparsers(
        dest="admin_verb", required=True)
    p = admin.add_parser("create-key", parents=[common], help="create an API key (printed once)")
    p.add_argument("--user", default="admin")
    p.add_argument("--group", action="append", help="group (repeatable; default 'default')")
    p.add_argument("--admin", action="store_true", help="an administrator's key")
    p.add_argument("--expires-days", type=float, default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_create_key)
    add_admin_verbs(admin, common)  # groups, users, keys

    add_client_verbs(subparsers)
    add_probe_verb(subparsers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="srflow")
    register(parser.add_subparsers(dest="verb", required=True))
    args = parser.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
