"""Celery tasks: thin adapters from a job id to :func:`worker.runner.execute`.

``core.jobs.run`` (and with it torch) is imported inside the task, in the prefork
child, so the worker's parent process never initialises CUDA.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path

from celery.signals import worker_init, worker_ready, worker_shutdown

from core.registry.db import upgrade
from core.settings import get_settings
from worker.celery_app import TASK_NAME, get_app

app = get_app()


@worker_init.connect
def _migrate(**_: object) -> None:
    upgrade(get_settings().db_url)


@app.task(name=TASK_NAME, bind=True)
def run_job(self, job_id: str) -> str:  # type: ignore[no-untyped-def]
    """Run job ``job_id``; returns its final state (the job row holds the result)."""
    from worker.runner import execute

    token = f"{self.request.id}:{uuid.uuid4().hex[:12]}"
    host = self.request.hostname or socket.gethostname()
    return execute(job_id, get_settings(), token=token, hostname=host)


def _beat(path: Path, hostname: str, stop: threading.Event) -> None:
    while not stop.is_set():
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"hostname": hostname, "time": time.time(), "pid": os.getpid()}))
        os.replace(tmp, path)
        stop.wait(10.0)


_stop = threading.Event()


@worker_ready.connect
def _start_beat(sender: object = None, **_: object) -> None:
    """Liveness file ``<data_dir>/workers/<host>.json`` (read by /v1/health when the
    filesystem transport, which has no remote-control ping, is in use)."""
    hostname = getattr(sender, "hostname", None) or socket.gethostname()
    folder = get_settings().root / "workers"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hostname.replace('/', '_')}.json"
    threading.Thread(target=_beat, args=(path, hostname, _stop), daemon=True).start()


@worker_shutdown.connect
def _stop_beat(**_: object) -> None:
    _stop.set()
