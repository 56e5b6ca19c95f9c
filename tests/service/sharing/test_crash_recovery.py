"""Jobs survive crashes: SIGKILL the worker mid-training (Redis, and the embedded default),
and SIGKILL + restart the Redis server under queued and running jobs.

Training: 80 steps, checkpoint every 50 (the trainer's default); the worker is killed once
the job is past step 52, so the resumed attempt must continue from step 50's checkpoint:
the registered curve's first 50 rows equal the checkpoint's, bit for bit.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service.helpers import SMALL_HMC
from tests.service.processes import (
    PY,
    Service,
    free_port,
    healthy,
    service_env,
    spawn,
    stop,
    wait_until,
)
from tests.service.sharing.members import FAST_RECOVERY

pytestmark = [pytest.mark.service, pytest.mark.slow]
TRAIN = {"method": "ir", "dim": 2, "L": 8, "kappa": 0.25, "lam": 0.01, "steps": 80,
         "batch": 16, "seed": 1}


def _kill(p: subprocess.Popen[bytes]) -> None:
    os.killpg(p.pid, signal.SIGKILL)
    p.wait(timeout=10)


def _worker(env: dict[str, str], log: Path, name: str) -> subprocess.Popen[bytes]:
    return spawn([PY, "-m", "celery", "-A", "worker.celery_app:app", "worker", "-Q", "cpu,gpu",
                  "-c", "1", "--max-tasks-per-child", "1", "-l", "INFO", "-n", name], env, log)


def _redis(port: int, d: Path) -> subprocess.Popen[bytes]:
    exe = shutil.which("redis-server")
    assert exe is not None, "redis-server is not installed: run scripts/test"
    p = spawn([exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(d), "--save", "",
               "--appendonly", "yes", "--appendfsync", "always"], dict(os.environ),
              d / f"redis-{time.monotonic_ns()}.log")
    import redis

    wait_until(lambda: redis.Redis(port=port).ping(), 15, "redis-server", [p])
    return p


def _poll(svc: Service, job_id: str, pred: Any, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with svc.client() as c:
        while time.monotonic() < deadline:
            try:
                op = c.get(f"/v1/jobs/{job_id}").json()
                if pred(op):
                    return dict(op)
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise AssertionError(f"job {job_id}: condition not reached\n{svc.dump_logs()}")


def _kill_mid_training(svc: Service, name: str) -> str:
    """Submit the training job; return its id once the job is past step 52 (the caller
    then kills the worker)."""
    with svc.client() as c:
        r = c.post("/v1/jobs", json={"kind": "train", "spec": TRAIN, "model_name": name})
    assert r.status_code == 202, r.text
    job_id = r.json()["name"].removeprefix("jobs/")
    _poll(svc, job_id, lambda op: (op["metadata"]["progress"] or {}).get("step", 0) >= 52, 180)
    return job_id


def _checkpoint_curve(svc: Service, job_id: str) -> list[dict[str, Any]]:
    import torch

    state = torch.load(svc.data_dir / "work" / job_id / "checkpoint.pt", map_location="cpu",
                       weights_only=True)
    assert state["step"] == 50
    return list(state["curve"])


def _check_resumed(svc: Service, job_id: str, name: str, ckpt: list[dict[str, Any]]) -> None:
    op = _poll(svc, job_id, lambda op: op["done"], 240)
    assert op["metadata"]["state"] == "succeeded", (op, svc.dump_logs())
    assert op["metadata"]["attempts"] >= 2
    with svc.client() as c:
        model = c.get(f"/v1/models/{name}").json()
        assert [v["version"] for v in model["versions"]] == [1]  # one version only
        curve = c.get(f"/v1/models/{name}/versions/1").json()["curve"]
    assert [row["step"] for row in curve] == list(range(1, 81))
    assert curve[:50] == ckpt  # the resumed run continued from the checkpoint
    assert not (svc.data_dir / "work" / job_id).exists()


@pytest.fixture
def redis_stack(tmp_path: Path) -> Iterator[dict[str, Any]]:
    port = free_port()
    (tmp_path / "redis").mkdir()
    procs: dict[str, Any] = {"redis": _redis(port, tmp_path / "redis")}
    env = service_env(tmp_path / "data", f"redis://127.0.0.1:{port}/0")
    env.update(FAST_RECOVERY)
    api_port = free_port()
    logs = [tmp_path / "api.log", tmp_path / "worker-1.log"]
    procs["api"] = spawn([PY, "-m", "uvicorn", "--factory", "app.main:create_app", "--host",
                          "127.0.0.1", "--port", str(api_port)], env, logs[0])
    procs["worker"] = _worker(env, logs[1], "w1@%h")
    svc = Service(f"http://127.0.0.1:{api_port}", tmp_path / "data", logs, procs["api"].pid)
    state = {"svc": svc, "env": env, "procs": procs, "port": port, "dir": tmp_path}
    try:
        wait_until(lambda: healthy(svc.url, True), 90, "redis stack",
                   [procs["api"], procs["worker"]])
        yield state
    finally:
        for p in procs.values():
            stop(p)


def test_sigkill_worker_mid_training_resumes_with_redis(redis_stack: dict[str, Any]) -> None:
    svc = redis_stack["svc"]
    job_id = _kill_mid_training(svc, "crash-redis")
    _kill(redis_stack["procs"]["worker"])
    ckpt = _checkpoint_curve(svc, job_id)
    log = redis_stack["dir"] / "worker-2.log"
    svc.logs.append(log)
    redis_stack["procs"]["worker"] = _worker(redis_stack["env"], log, "w2@%h")
    _check_resumed(svc, job_id, "crash-redis", ckpt)


def test_sigkill_embedded_service_mid_training_resumes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = service_env(data, None)
    env.update(FAST_RECOVERY)
    port = free_port()
    cmd = [PY, "-m", "cli.service", "serve", "--port", str(port), "--data-dir", str(data)]
    logs = [tmp_path / "serve-1.log", tmp_path / "serve-2.log"]
    svc = Service(f"http://127.0.0.1:{port}", data, logs[:1])
    serve = spawn(cmd, env, logs[0])
    try:
        wait_until(lambda: healthy(svc.url, True), 90, "embedded service", [serve])
        job_id = _kill_mid_training(svc, "crash-embedded")
        _kill(serve)  # API, worker and its pool process: everything, like a power cut
        ckpt = _checkpoint_curve(svc, job_id)
        svc.logs.append(logs[1])
        serve = spawn(cmd, env, logs[1])
        wait_until(lambda: healthy(svc.url, True), 90, "restarted embedded service", [serve])
        _check_resumed(svc, job_id, "crash-embedded", ckpt)
    finally:
        stop(serve, timeout=30)


def test_redis_restart_under_queued_and_running_jobs(redis_stack: dict[str, Any]) -> None:
    svc = redis_stack["svc"]
    spec = {**SMALL_HMC, "n_samples": 400, "n_therm": 200}
    with svc.client() as c:
        ids = [c.post("/v1/jobs", json={"kind": "hmc", "spec": {**spec, "seed": i}})
               .json()["name"].removeprefix("jobs/") for i in range(4)]
    _poll(svc, ids[0], lambda op: op["metadata"]["state"] == "running", 60)
    with svc.client() as c:
        states = [c.get(f"/v1/jobs/{j}").json()["metadata"]["state"] for j in ids]
    assert states[0] == "running" and "queued" in states[1:], states
    _kill(redis_stack["procs"]["redis"])
    time.sleep(1.0)
    redis_stack["procs"]["redis"] = _redis(redis_stack["port"], redis_stack["dir"] / "redis")
    for j in ids:
        op = _poll(svc, j, lambda op: op["done"], 180)
        assert op["metadata"]["state"] == "succeeded", (op, svc.dump_logs())
        assert op["response"]["ensemble"]["id"] == j
    with sqlite3.connect(svc.data_dir / "registry.db") as con:
        rows = con.execute("SELECT job_id, count(*) FROM ensembles GROUP BY job_id").fetchall()
    assert sorted(rows) == sorted((j, 1) for j in ids)  # exactly one result per job
