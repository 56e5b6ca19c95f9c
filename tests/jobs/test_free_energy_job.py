"""log Z in every sample job (core.jobs.free_energy): the summary block, the coarse log Z_c
cache, the HDF5 attribute and series, reweighting to other couplings, and the scan's
f(κ) and consistency rows (core.jobs.scan_free_energy)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import h5py
import pytest

from core.jobs.free_energy import CACHE_FILE, cache_key, coarse_log_z
from core.jobs.sample_job import run_sample_job
from core.jobs.scan_free_energy import consistency
from core.jobs.scan_job import PointResult, plot_scan
from core.jobs.specs import COARSE_TI_SAMPLES_MIN, SampleSpec, coarse_ti_samples
from core.physics.io.ensemble import read_ensemble
from core.physics.lattice.couplings import Couplings
from core.physics.lattice.partition import dlog_z_free_dkappa, log_z_free
from tests.physics.exact.flows import untrained_flow


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return untrained_flow(tmp_path_factory.mktemp("flow") / "m")


@pytest.mark.slow
def test_sample_job_reports_log_z_and_caches_log_z_c(model: Path, tmp_path: Path) -> None:
    spec = SampleSpec(model=str(model), n_samples=256, seed=1,
                      reweight_to=[{"kappa": 0.251, "lam": 0.01}, {"kappa": 0.4, "lam": 0.2}])
    res = run_sample_job(spec, workdir=tmp_path / "a")
    fe = res.summary["free_energy"]
    assert {"log_z", "error", "f", "f_error", "bias", "coarse", "weights", "caveats",
            "trusted", "coarse_integration", "solver_shift", "differences"} <= set(fe)
    assert fe["f"] == pytest.approx(-fe["log_z"] / 64)
    assert fe["coarse"]["source"] == "thermodynamic integration"
    ti = fe["coarse_integration"]
    assert ti["cached"] is False and ti["samples"] == COARSE_TI_SAMPLES_MIN and ti["L"] == 4
    # an untrained flow: ESS/N ~ 10⁻², which must be named, never silently reported
    assert not fe["trusted"] and "low_ess" in {c["code"] for c in fe["caveats"]}
    near, far = fe["differences"]
    assert far["trusted"] is False and math.isnan(far["delta_log_z"])
    assert {c["code"] for c in far["caveats"]} >= {"low_ess"}
    assert near["kappa"] == 0.251 and near["ess"] > 0
    cache = json.loads((model / CACHE_FILE).read_text())  # local runs: the model directory
    key = cache_key(2, 4, Couplings(0.22, 0.01))
    assert cache["entries"][key]["log_z"] == fe["coarse"]["value"]
    e = read_ensemble(res.ensemble)
    assert e.meta.free_energy is not None and e.meta.free_energy["log_z"] == fe["log_z"]
    assert {"series_magnetization", "series_dS_dkappa", "proposal_log_w",
            "proposal_dS_dkappa"} <= set(e.extras)
    assert res.summary["dS_dkappa"]["mean"] < 0  # ∂S/∂κ = −2Σφφ, positive correlations
    again = run_sample_job(spec.model_copy(update={"seed": 2}), workdir=tmp_path / "b")
    fe2 = again.summary["free_energy"]
    assert fe2["coarse_integration"]["cached"] is True
    assert fe2["coarse"]["value"] == fe["coarse"]["value"]
    off = run_sample_job(spec.model_copy(update={"log_z": False}), workdir=tmp_path / "c")
    assert off.summary["free_energy"] is None
    with h5py.File(off.ensemble, "r") as f:
        assert "free_energy" not in f.attrs and "series_phi2" in f


@pytest.mark.slow
def test_cache_reuses_only_as_precise_entries(tmp_path: Path) -> None:
    c = Couplings(0.1, 0.5)
    kw = dict(dim=1, L=4, coarse=c, cache_dir=tmp_path, seed=0)
    first, e1 = coarse_log_z(samples=20, **kw)  # type: ignore[arg-type]
    same, e2 = coarse_log_z(samples=10, **kw)  # type: ignore[arg-type]
    assert e1["cached"] is False and e2["cached"] is True and same == first
    finer, e3 = coarse_log_z(samples=40, **kw)  # type: ignore[arg-type]
    assert e3["cached"] is False and e3["samples"] == 40 and finer.error < first.error
    stored = json.loads((tmp_path / CACHE_FILE).read_text())["entries"]
    assert stored[cache_key(1, 4, c)]["samples"] == 40
    nowhere, e4 = coarse_log_z(samples=10, **{**kw, "cache_dir": None})  # type: ignore[arg-type]
    assert e4["cached"] is False and math.isfinite(nowhere.value)
    assert coarse_ti_samples(16) == COARSE_TI_SAMPLES_MIN and coarse_ti_samples(10**6) == 4000


def _point(kappa: float, dim: int = 2, L: int = 8, err: float = 0.01) -> SimpleNamespace:
    """A scan point of the free field with exact log Z and −⟨∂S/∂κ⟩ = d log Z/dκ."""
    log_z = log_z_free(dim, L, kappa)
    return SimpleNamespace(
        kappa=kappa, lam=0.0, ensemble=Path("/nonexistent.h5"),
        free_energy={"log_z": log_z, "error": err, "f": -log_z / L**dim,
                     "f_error": err / L**dim, "trusted": True, "caveats": []},
        dS_dkappa={"mean": -dlog_z_free_dkappa(dim, L, kappa), "error": 0.5})


def test_scan_consistency_of_neighbouring_points(tmp_path: Path) -> None:
    points = [_point(k) for k in (0.1, 0.12, 0.14, 0.16)]
    rows = consistency(points, volume=64)  # type: ignore[arg-type]
    assert [(r["kappa_a"], r["kappa_b"]) for r in rows] == [(0.1, 0.12), (0.12, 0.14),
                                                          (0.14, 0.16)]
    assert all(abs(r["z"]) < 1 and r["trusted"] and r["reweighted"] is None for r in rows)
    wrong = [_point(0.1), SimpleNamespace(**{**vars(_point(0.12)), "free_energy": {
        **_point(0.12).free_energy, "log_z": _point(0.12).free_energy["log_z"] + 1.0}})]
    assert abs(consistency(wrong)[0]["z"]) > 3  # type: ignore[arg-type]
    # the scan figure gains (e) f(κ) and (f) the slopes
    obs = {n: {"mean": 1.0, "error": 0.1, "tau_int": 0.5}
           for n in ("abs_magnetization", "susceptibility")}
    pts = [PointResult(i, p.kappa, 0.0, 0.5, 0.6, {}, 0.7, obs, Path("/m"), Path("/e"),
                       False, 1, 1.0, 1.0, free_energy=p.free_energy, dS_dkappa=p.dS_dkappa)
           for i, p in enumerate(points)]
    png = plot_scan(pts, tmp_path / "scan.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert pts[0].record("m", "e")["free_energy"]["caveats"] == []
