"""Scans: validation, budget, orchestration (warm starts, cancel
after the current point, interruption) and one tiny end-to-end scan through ``srflow scan``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

import core.jobs.scan_job as scan_mod
from cli.main import main
from core.jobs.budgets import budget
from core.jobs.protocol import JobCancelled, ProgressReport
from core.jobs.request import JobRequest
from core.jobs.scan_job import PointResult, run_scan_job
from core.jobs.scan_spec import ScanSpec
from core.jobs.specs import TrainSpec

TINY = ["--dim", "2", "--L", "8", "--kappa", "0.2,0.25", "--lam", "0.01",
        "--steps-per-point", "2", "--batch", "16", "--langevin-therm", "50",
        "--eval-samples", "32", "--n-samples", "48", "--chains", "4", "--seed", "3"]
POINT_KEYS = {"kappa", "lam", "ess", "couplings", "acceptance", "observables", "model"}


# --- validation: the field is named, nothing runs -------------------------------------

@pytest.mark.parametrize(("spec", "field", "words"), [
    ({"L": 8, "kappa": []}, "kappa", "at least 1"),
    ({"L": 8, "kappa": [0.1 + 0.001 * i for i in range(13)], "lam": [0.01] * 5}, "kappa",
     "65 points"),
    ({"L": 8, "kappa": [0.2] * 65}, "kappa", "at most 64"),
    ({"L": 12, "kappa": [0.2]}, "L", "4·2^n"),
    ({"L": 8, "kappa": [0.2], "lam": [0.01, -0.1]}, "lam", "greater than or equal to 0"),
    ({"L": 8, "points": [{"kappa": 0.2, "lam": 0.01}, {"kappa": 0.25, "lam": 0.01,
                                                          "dim": 3}]}, "dim", "one (d, L)"),
    ({"L": 8, "points": [{"kappa": 0.2, "lam": 0.01, "L": 16}]}, "L", "one (d, L)"),
    ({"L": 8, "points": [{"kappa": 0.2, "lam": -1.0}]}, "points.lam", "greater than or equal to 0"),
    ({"L": 8}, "kappa", "exactly one"),
])
def test_bad_scan_specs_name_the_field(spec: dict[str, Any], field: str, words: str) -> None:
    from app.problems import pydantic_errors

    with pytest.raises(ValidationError) as info:
        TypeAdapter(JobRequest).validate_python({"kind": "scan", "spec": spec})
    errors = pydantic_errors(info.value.errors())
    assert errors[0]["field"] == f"spec.{field}", errors
    assert words in errors[0]["message"], errors


def test_grid_order_seeds_and_point_specs() -> None:
    spec = ScanSpec(L=16, kappa=[0.2, 0.3], lam=[0.01, 0.02], steps_per_point=7, seed=5,
                    max_minutes_per_point=2.0)
    assert spec.grid() == [(0.2, 0.01), (0.3, 0.01), (0.2, 0.02), (0.3, 0.02)]
    t = spec.train_spec(3, init_from="m/1")
    assert isinstance(t, TrainSpec)
    assert (t.kappa, t.lam, t.L, t.steps, t.seed, t.init_from) == (0.3, 0.02, 16, 7, 8, "m/1")
    assert spec.sample_spec(1, "m/2").seed == 6 and spec.max_minutes == 8.0
    assert ScanSpec(L=8, kappa=[0.2], lam=0.05).lam == [0.05]  # one λ as a number


def test_budget_is_the_sum_of_the_points() -> None:
    spec = ScanSpec(L=8, kappa=[0.2, 0.25, 0.3], lam=0.01, steps_per_point=100, n_samples=500)
    one = budget(spec.train_spec(0))
    assert one is not None
    b = budget(spec)
    assert b is not None
    sample_volume = 64 * 500
    assert b.volume == 3 * (one.volume + sample_volume)
    assert b.memory_bytes >= one.memory_bytes
    # the field named is the one that dominates the volume: with 100 steps per point the
    # coarse Langevin thermalisation (in the budget since it could be set to 10^7)
    assert one.volume_field == b.volume_field == "spec.langevin_therm"
    long = ScanSpec(L=8, kappa=[0.2, 0.25], lam=0.01, steps_per_point=20_000, n_samples=500)
    b_long = budget(long)
    assert b_long is not None and b_long.volume_field == "spec.steps_per_point"


# --- orchestration, with a stand-in for the expensive point ------------------------------

def _fake_point(spec: ScanSpec, i: int, init_dir: Path | None) -> PointResult:
    kappa, lam = spec.grid()[i]
    obs = {n: {"mean": 1.0 + i, "error": 0.1, "tau_int": 0.5}
           for n in ("abs_magnetization", "susceptibility")}
    return PointResult(i, kappa, lam, 0.5, 0.6, {"coarse": {"kappa": kappa - 0.05, "lam": lam},
                                                "fine": {"kappa": kappa, "lam": lam}},
                     0.7, obs, Path(f"/m{i}"), Path(f"/e{i}"), init_dir is not None, 1, 1.0, 1.0)


def test_warm_start_chain_and_cancel_after_the_current_point(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[Path | None] = []
    cancel = {"on": False}

    def fake(spec: ScanSpec, i: int, workdir: Path, init_dir: Path | None,
             progress: Any = None, should_stop: Any = None,
             cache_dir: Any = None) -> PointResult:
        seen.append(init_dir)
        if i == 1:
            cancel["on"] = True  # the user cancels while point 2 runs ...
            assert should_stop() is False  # ... which is not passed on: point 2 finishes
        return _fake_point(spec, i, init_dir)

    monkeypatch.setattr(scan_mod, "run_point", fake)
    reports: list[ProgressReport] = []
    spec = ScanSpec(L=8, kappa=[0.2, 0.25, 0.27, 0.3], lam=0.01)
    res = run_scan_job(spec, workdir=tmp_path, progress=reports.append,
                       should_stop=lambda: cancel["on"])
    assert seen == [None, Path("/m0")]  # warm start from the previous point; no point 3
    assert res.stopped == "cancelled" and [p.kappa for p in res.points] == [0.2, 0.25]
    assert res.summary["n_points"] == 4 and len(res.summary["points"]) == 2
    assert [(r.step, r.total) for r in reports] == [(1, 4), (2, 4)]
    assert reports[0].stage == "point 1/4 done" and reports[0].metrics["ess"] == 0.5
    assert res.plot is not None and res.plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert res.points[1].kappa_shift == pytest.approx(-0.05)


class _Deadline:
    """Like worker.resilience.Deadline after its wall-time limit."""

    timed_out = True
    preempted = False

    def __call__(self) -> bool:
        return True


def test_a_deadline_interrupts_the_point_and_keeps_the_finished_ones(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    stops: list[bool] = []

    def fake(spec: ScanSpec, i: int, workdir: Path, init_dir: Path | None,
             progress: Any = None, should_stop: Any = None,
             cache_dir: Any = None) -> PointResult:
        if i == 1:
            stops.append(should_stop())
            raise JobCancelled("deadline")
        return _fake_point(spec, i, init_dir)

    monkeypatch.setattr(scan_mod, "run_point", fake)
    spec = ScanSpec(L=8, kappa=[0.2, 0.25, 0.3], lam=0.01, warm_start=False)
    deadline = _Deadline()
    calls = {"n": 0}

    def stop() -> bool:  # false for point 1, the deadline afterwards
        calls["n"] += 1
        return calls["n"] > 1 and deadline()

    stop.timed_out = True  # type: ignore[attr-defined]
    stop.preempted = False  # type: ignore[attr-defined]
    res = run_scan_job(spec, workdir=tmp_path, should_stop=stop)
    assert res.stopped in ("interrupted", "cancelled")
    assert [p.index for p in res.points] == [0]


def test_run_scan_without_points_has_no_plot(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    def fake(*_: Any, **__: Any) -> PointResult:
        raise JobCancelled("lost")

    monkeypatch.setattr(scan_mod, "run_point", fake)
    res = run_scan_job(ScanSpec(L=8, kappa=[0.2], lam=0.01), workdir=tmp_path)
    assert res.points == () and res.plot is None and res.stopped == "interrupted"


# --- the CLI ---------------------------------------------------------------------------

@pytest.mark.parametrize(("argv", "words"), [
    (["--kappa", ""], "--kappa"),
    (["--kappa", "0.2,x"], "--kappa='0.2,x'"),
    (["--kappa", ",".join(["0.2"] * 65)], "--kappa"),
    (["--L", "12"], "L=12 is not 4·2^n"),
    (["--lam", "-0.01"], "--lam"),
    (["--coarse-sampler", "wolff"], "--coarse-sampler='wolff'"),
    (["--method", "baseline", "--coarse-sampler", "cluster"], "coarse_sampler='cluster'"),
])
def test_cli_bad_input_is_one_line(argv: list[str], words: str, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    base = {"--L": "8", "--kappa": "0.2,0.25", "--lam": "0.01"}
    base.update(dict(zip(argv[::2], argv[1::2], strict=True)))
    out = tmp_path / "scan"
    code = main(["scan", *[x for kv in base.items() for x in kv], "--out", str(out)])
    err = capsys.readouterr()
    assert code == 2 and err.out == ""
    lines = err.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("srflow scan: error: ") and words in lines[0]
    assert not out.exists()  # nothing ran, nothing written


@pytest.mark.slow
def test_cli_tiny_scan_json_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "scan"
    assert main(["scan", *TINY, "--out", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)  # exactly one JSON object on stdout
    assert set(doc) == {"points", "plot"} and len(doc["points"]) == 2
    for p, kappa in zip(doc["points"], (0.2, 0.25), strict=True):
        assert set(p) == POINT_KEYS and p["kappa"] == kappa and p["lam"] == 0.01
        assert 0.0 < p["ess"] <= 1.0 and 0.0 < p["acceptance"] <= 1.0
        assert set(p["couplings"]) == {"coarse", "fine"}
        assert p["couplings"]["fine"] == {"kappa": kappa, "lam": 0.01}  # IR: fine fixed
        for name in ("abs_magnetization", "susceptibility", "action_density"):
            o = p["observables"][name]
            assert set(o) == {"mean", "error", "tau_int"} and math.isfinite(o["mean"])
            assert o["error"] > 0
        assert (Path(p["model"]) / "model.safetensors").is_file()
    # point 2 was warm-started from point 1's flow: its config names the parent
    config = json.loads((Path(doc["points"][1]["model"]) / "config.json").read_text())
    assert config["parent"] == doc["points"][0]["model"]
    assert Path(doc["plot"]).read_bytes()[:4] == b"\x89PNG"
    record = json.loads((out / "scan.json").read_text())
    assert record["stopped"] == "complete" and record["points"][1]["warm_started"] is True
    assert Path(record["points"][0]["ensemble"]).is_file()


@pytest.mark.slow
def test_cli_table_without_json(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(scan_mod, "run_point",
                        lambda spec, i, workdir, init_dir, *a: _fake_point(spec, i, init_dir))
    out = tmp_path / "scan"
    assert main(["scan", "--L", "8", "--kappa", "0.2,0.3", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "scan ir d=2 L=8: 2/2 points (complete)"
    assert "κ_L−κ" in lines[1] and len(lines) == 5
    assert lines[3].split()[:5] == ["0.3", "0.01", "0.500", "0.700", "-0.0500"]
    spec = json.loads((out / "scan.json").read_text())["spec"]
    assert spec["kappa"] == [0.2, 0.3] and spec["coarse_sampler"] == "hmc"
    out2 = tmp_path / "scan-cluster"
    assert main(["scan", "--L", "8", "--kappa", "0.2", "--coarse-sampler", "cluster",
                 "--out", str(out2)]) == 0
    assert json.loads((out2 / "scan.json").read_text())["spec"]["coarse_sampler"] == "cluster"
    assert main(["scan", "--L", "8", "--kappa", "0.2", "--out", str(out)]) == 2  # not empty


@pytest.mark.slow
def test_a_failed_point_keeps_the_finished_ones(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    def fake(spec: ScanSpec, i: int, workdir: Path, init_dir: Path | None,
             *_: Any) -> PointResult:
        if i == 1:
            raise RuntimeError("solver gap 12 nats")
        return _fake_point(spec, i, init_dir)

    monkeypatch.setattr(scan_mod, "run_point", fake)
    res = run_scan_job(ScanSpec(L=8, kappa=[0.2, 0.25, 0.3], lam=0.01), workdir=tmp_path / "a")
    assert res.stopped == "failed" and [p.index for p in res.points] == [0]
    assert res.summary["error"] == "point 2 (κ=0.25, λ=0.01): RuntimeError: solver gap 12 nats"
    out = tmp_path / "b"
    assert main(["scan", "--L", "8", "--kappa", "0.2,0.25", "--out", str(out), "--json"]) == 1
    got = capsys.readouterr()
    assert len(json.loads(got.out)["points"]) == 1
    assert "solver gap" in got.err and "1 of 2 points finished" in got.err


def test_quota_checks_a_scan_by_the_sum_of_its_points() -> None:
    from types import SimpleNamespace

    from core.registry.quotas import QuotaExceeded, check_budget, check_time

    spec = ScanSpec(L=8, kappa=[0.2, 0.25], lam=0.01, steps_per_point=20_000,
                    max_minutes_per_point=30.0)
    b = budget(spec)
    assert b is not None
    check_budget(SimpleNamespace(worker_memory_bytes=None), "g", b, b.volume)  # exactly fits
    with pytest.raises(QuotaExceeded) as info:
        check_budget(SimpleNamespace(worker_memory_bytes=None), "g", b, b.volume - 1)
    assert info.value.field == "spec.steps_per_point"
    with pytest.raises(QuotaExceeded):  # 2 points × 30 min > 3000 s
        check_time(SimpleNamespace(max_job_seconds=3000.0), spec)
    check_time(SimpleNamespace(max_job_seconds=3600.0), spec)


class _WorkerLost(BaseException):
    """Stands for SIGKILL: nothing in the scan may catch it (``Exception`` handlers don't)."""


@pytest.mark.slow
def test_a_requeued_scan_resumes_in_its_work_directory(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    """A lost worker's scan runs again in the same directory (the reaper re-queues it),
    over the files the dead attempt left (a finished point, a trained but unsampled one):
    it completes, and its record equals an uninterrupted scan's point for point (ESS/N,
    couplings, acceptance, observables; timings and paths aside)."""
    spec = ScanSpec(L=8, kappa=[0.2, 0.25], lam=0.01, steps_per_point=3, batch=8,
                    langevin_therm=100, eval_samples=64, n_samples=64, chains=4, seed=3)
    clean = run_scan_job(spec, workdir=tmp_path / "clean")
    real_sample = scan_mod.run_sample_job
    calls = {"n": 0}

    def dies_in_point_2(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise _WorkerLost
        return real_sample(*args, **kwargs)

    monkeypatch.setattr(scan_mod, "run_sample_job", dies_in_point_2)
    with pytest.raises(_WorkerLost):  # point 2 trained, then the worker died sampling it
        run_scan_job(spec, workdir=tmp_path / "requeued")
    monkeypatch.setattr(scan_mod, "run_sample_job", real_sample)
    resumed = run_scan_job(spec, workdir=tmp_path / "requeued")
    assert resumed.stopped == "complete"

    def strip(record: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in record.items() if k not in ("seconds", "model", "ensemble")}

    assert [strip(p) for p in resumed.summary["points"]] == [
        strip(p) for p in clean.summary["points"]]
