"""The one Celery app of srflow, configured from :class:`core.settings.Settings`.

Importing this module imports no torch (the API imports it to send tasks by name).
Queues are explicit: ``gpu`` and ``cpu``; the API routes by ``spec.device``.

Long jobs and Redis: an unacked task is re-delivered after the visibility timeout
(celery#5935, #3430), so ``visibility_timeout`` is set larger than the longest job in
both ``broker_transport_options`` and ``result_backend_transport_options``; acks are
late, prefetch is 1 (``worker_disable_prefetch`` on Redis), and a task whose worker is
lost is rejected (re-queued). The job row's heartbeat and conditional updates make a
duplicate delivery harmless (``worker.tasks``).

Embedded default (no ``SRFLOW_BROKER_URL``): Celery's ``filesystem://`` transport under
``<data_dir>/broker`` (processed messages deleted, no remote control, no events, no
mingle/gossip: the filesystem transport has no reliable broadcast), and a SQLite result
store. Start a GPU worker with one process per GPU::

    CUDA_VISIBLE_DEVICES=0 srflow worker --queues gpu   # -c 1, max-tasks-per-child 1
"""

from __future__ import annotations

import math
from typing import Any

from celery import Celery
from kombu import Exchange, Queue

from core.settings import Settings, get_settings

TASK_NAME = "srflow.run_job"
QUEUES = ("cpu", "gpu")


def celery_config(settings: Settings) -> dict[str, Any]:
    vt = settings.visibility_timeout_s
    conf: dict[str, Any] = {
        "broker_url": settings.celery_broker_url,
        "result_backend": settings.celery_result_backend,
        "task_queues": [Queue(q, Exchange(q, type="direct"), routing_key=q) for q in QUEUES],
        "task_default_queue": "cpu",
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_ignore_result": True,  # the job row is the result
        "task_serializer": "json",
        "accept_content": ["json"],
        "worker_prefetch_multiplier": 1,
        "worker_hijack_root_logger": False,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {"visibility_timeout": vt},
        "result_backend_transport_options": {"visibility_timeout": vt},
        "imports": ["worker.tasks"],
    }
    # srflow's own deadline (worker.resilience.Deadline) stops a job cleanly: at
    # soft_time_limit_s (checkpoint, re-queue) or at max_job_seconds (failed); Celery's
    # limits are the backstop, so every task has a soft time limit by default.
    limit = min(settings.soft_time_limit_s or math.inf, settings.max_job_seconds)
    grace = max(60.0, 0.1 * limit)
    conf["task_soft_time_limit"] = limit + grace
    conf["task_time_limit"] = limit + 2 * grace
    if conf["task_time_limit"] >= vt:
        raise ValueError(f"visibility_timeout_s={vt} must exceed the hard time limit "
                         f"{conf['task_time_limit']:.0f} s, or Redis re-delivers "
                         "running jobs")
    url = settings.celery_broker_url
    if url.startswith(("redis://", "rediss://")):
        conf["worker_disable_prefetch"] = True
    if settings.embedded:
        queue_dir = settings.broker_dir / "queue"
        control_dir = settings.broker_dir / "control"
        for d in (queue_dir, control_dir, settings.broker_dir / "processed"):
            d.mkdir(parents=True, exist_ok=True)
        conf["broker_transport_options"] = {
            "data_folder_in": str(queue_dir),
            "data_folder_out": str(queue_dir),
            "control_folder": str(control_dir),
            "processed_folder": str(settings.broker_dir / "processed"),
            "store_processed": False,
            "visibility_timeout": vt,
        }
        conf["worker_enable_remote_control"] = False
        conf["worker_send_task_events"] = False
        conf["task_send_sent_event"] = False
    return conf


def make_celery(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    app = Celery("srflow")
    app.conf.update(celery_config(settings))
    return app


_app: Celery | None = None


def get_app() -> Celery:
    """The process's Celery app from the environment's settings, built on first use."""
    global _app
    if _app is None:
        _app = make_celery()
    return _app


def __getattr__(name: str) -> Celery:
    """``worker.celery_app.app`` (for ``celery -A worker.celery_app:app``), lazily."""
    if name != "app":
        raise AttributeError(name)
    return get_app()
