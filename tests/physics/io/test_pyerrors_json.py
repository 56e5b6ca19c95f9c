"""The pyerrors export (core.physics.io.pyerrors_json) read back with pyerrors itself:
values, errors (one replica: srflow's Γ-method to rounding; several: pyerrors centres each
replica on its own mean, srflow on the global one — equal here to a few per cent because
T ≫ τ_int, see core.physics.stats.gamma) and log ⟨w̃⟩ from the exported weights."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyerrors as pe
import pytest

from core.physics.io.ensemble import EnsembleMeta, write_ensemble
from core.physics.io.pyerrors_json import (
    SERIES_PREFIX,
    SeriesMissing,
    ensemble_document,
    gzipped,
    pyerrors_document,
)
from core.physics.stats.free_energy import log_mean_weight
from core.physics.stats.gamma import gamma_method


def ar1(rho: float, n: int, rng: np.random.Generator) -> np.ndarray:
    x = np.empty(n)
    x[0] = rng.standard_normal()
    for i in range(1, n):
        x[i] = rho * x[i - 1] + math.sqrt(1 - rho * rho) * rng.standard_normal()
    return x


def _load(path: Path, doc: dict) -> dict:
    path.write_bytes(gzipped(doc))
    return pe.input.json.load_json(str(path), verbose=False, full_output=True)


def test_flow_ensemble_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 4000
    series = {"magnetization": ar1(0.5, n, rng), "abs_magnetization": 1 + ar1(0.8, n, rng),
              "action_density": 2 + 0.1 * ar1(0.2, n, rng)}
    log_w = 3.0 + 0.5 * rng.standard_normal(n)
    path = write_ensemble(
        tmp_path / "e.h5", np.zeros((n, 4, 4)),
        EnsembleMeta(dim=2, L=4, kappa=0.2, lam=0.01, method="flow+metropolis"),
        extras={**{SERIES_PREFIX + k: v for k, v in series.items()},
                "proposal_log_w": log_w}).path
    doc = ensemble_document(path, "srflow-job1", {"theory": {"L": 4}})
    out = _load(tmp_path / "e.json.gz", doc)
    chain, weights = out["obsdata"]
    names = sorted(series)
    assert [o.tag for o in chain] == names
    for obs, name in zip(chain, names, strict=True):
        assert obs.names == ["srflow-job1|chain"]
        x = series[name]
        assert obs.value == pytest.approx(x.mean(), rel=1e-13)
        obs.gamma_method(S=1.5)
        ours = gamma_method(x)
        assert math.isclose(obs.dvalue, ours.error, rel_tol=1e-9), name
    (w,) = weights
    assert w.names == ["srflow-job1|proposals"] and w.tag == "weight"
    about = json.loads(out["description"])
    assert about["theory"] == {"L": 4}
    log_z_part = np.log(w)  # pyerrors propagates the error through the log
    log_z_part.gamma_method(S=1.5)
    ours = log_mean_weight(log_w)
    assert log_z_part.value + about["log_max_weight"] == pytest.approx(ours.value, rel=1e-12)
    assert log_z_part.dvalue == pytest.approx(ours.delta_error, rel=0.1)


def test_direct_sampler_chains_are_replicas(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    chains, per = 4, 1000
    x = np.stack([ar1(0.6, per, rng) + 0.05 * c for c in range(chains)], axis=1)  # (T, C)
    path = write_ensemble(
        tmp_path / "h.h5", np.zeros((chains * per, 4, 4)),
        EnsembleMeta(dim=2, L=4, kappa=0.2, lam=0.01, method="hmc",
                     sampler={"chains": chains, "samples_per_chain": per}),
        extras={SERIES_PREFIX + "magnetization": x.T.reshape(-1)}).path  # chain-major
    out = _load(tmp_path / "h.json.gz", ensemble_document(path, "srflow-job2", {}))
    (chain,) = out["obsdata"]
    (obs,) = chain
    assert obs.names == [f"srflow-job2|c{c:03d}" for c in range(chains)]
    assert obs.value == pytest.approx(x.mean(), rel=1e-13)
    obs.gamma_method(S=1.5)
    assert obs.dvalue == pytest.approx(gamma_method(x).error, rel=0.1)


def test_what_cannot_be_exported(tmp_path: Path) -> None:
    path = write_ensemble(tmp_path / "old.h5", np.zeros((4, 4, 4)),
                          EnsembleMeta(dim=2, L=4, kappa=0.2, lam=0.01, method="hmc")).path
    with pytest.raises(SeriesMissing):
        ensemble_document(path, "srflow-old", {})
    with pytest.raises(ValueError, match="reserves"):
        pyerrors_document("a|b", [])
