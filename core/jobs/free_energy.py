"""A sample job's free energy: log Z_c from a cache or a fresh thermodynamic integration,
then log Z = log Z_c + log ⟨w̃⟩ on the job's fresh proposals (DESIGN §10).

The physics is in core.physics.mcmc.thermodynamic (log Z_c) and
core.physics.stats.free_energy (log ⟨w̃⟩, its errors, bias and caveats). This module owns
where log Z_c is kept: a JSON file ``coarse_log_z.json`` in a cache directory — the model's
own directory for a local ``srflow sample``, the service's ``<data_dir>/cache`` for a
worker — keyed by (d, coarse_L, κ_L, λ_L), which a trained model fixes. An entry is reused
when it was measured with at least as many samples per node as asked for; otherwise it is
measured again and replaced. The value depends on the couplings only, so entries are shared
between models (and users) with the same coarse theory.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from core.jobs.specs import CouplingPoint, coarse_ti_samples
from core.physics.control import ProgressHook, StopHook
from core.physics.exact.sampler import ProposalWeights, SampleResult
from core.physics.lattice.couplings import Couplings
from core.physics.mcmc.thermodynamic import Algorithm, TiParams, integrate_kappa
from core.physics.stats.free_energy import (
    Caveat,
    CoarseLogZ,
    free_energy,
    reweighted_difference,
)

CACHE_FILE = "coarse_log_z.json"


def cache_key(dim: int, L: int, c: Couplings) -> str:
    """The entry name: exact float reprs, so only the very same couplings match."""
    return f"d{dim}-L{L}-kappa{float(c.kappa)!r}-lam{float(c.lam)!r}"


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(path: Path, data: dict[str, Any]) -> bool:
    """Atomically replace ``path``; False (and no cache) where the directory is read-only."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except OSError:
        return False
    return True


def coarse_log_z(*, dim: int, L: int, coarse: Couplings, samples: int, cache_dir: Path | None,
                 seed: int, algorithm: Algorithm = "hmc", device: str = "cpu",
                 progress: ProgressHook | None = None,
                 should_stop: StopHook | None = None) -> tuple[CoarseLogZ, dict[str, Any]]:
    """log Z_c of the L^d coarse theory: the cached entry, or thermodynamic integration with
    ``samples`` per chain per node (then cached). Returns it and the entry (with ``cached``)."""
    path = None if cache_dir is None else Path(cache_dir) / CACHE_FILE
    key = cache_key(dim, L, coarse)
    entries = _read(path).get("entries", {}) if path is not None else {}
    entry = entries.get(key) if isinstance(entries, dict) else None
    cached = isinstance(entry, dict) and int(entry.get("samples", 0)) >= samples
    if not cached:
        params = TiParams(samples=samples, algorithm=algorithm)
        ti = integrate_kappa(dim=dim, L=L, kappa=coarse.kappa, lam=coarse.lam, params=params,
                             generator=torch.Generator(device=device).manual_seed(seed),
                             device=device, progress=progress, should_stop=should_stop)
        entry = {"log_z": ti.log_z, "error": ti.error, "quadrature_error": ti.quadrature_error,
                 "converged": ti.quadrature_converged, "samples": samples,
                 "nodes": params.nodes, "chains": params.chains, "algorithm": ti.algorithm,
                 "cpu_seconds": ti.cpu_seconds, "seed": seed,
                 "couplings": coarse.as_dict(), "dim": dim, "L": L,
                 "integrand": [[{"kappa": n.kappa, "mean": n.mean, "error": n.error}
                                for n in rule.nodes] for rule in ti.rules]}
        if path is not None:
            data = _read(path)
            data.setdefault("entries", {})[key] = entry
            _write(path, data)
    assert isinstance(entry, dict)
    conv = entry.get("converged")
    value = CoarseLogZ(value=float(entry["log_z"]), error=float(entry["error"]),
                       quadrature_error=float(entry.get("quadrature_error", math.nan)),
                       converged=None if conv is None else bool(conv))
    return value, {**{k: v for k, v in entry.items() if k != "integrand"}, "cached": cached}


def differences(weights: ProposalWeights, fine: Couplings, targets: list[CouplingPoint],
                volume: int, log_z: float, error: float) -> list[dict[str, Any]]:
    """log Z(c') − log Z(c) for each target c' by reweighting the same proposals, with the
    implied log Z(c') and f(c') (its error adds the model's in quadrature)."""
    rows = []
    for t in targets:
        delta = -((t.kappa - fine.kappa) * weights.dS_dkappa + (t.lam - fine.lam) * weights.dS_dlam)
        d = reweighted_difference(weights.log_w, delta, volume=volume)
        at = log_z + d.delta_log_z
        err = math.hypot(error, d.error)
        rows.append({"kappa": t.kappa, "lam": t.lam, **d.as_dict(), "log_z": at,
                     "log_z_error": err, "f": -at / volume, "f_error": err / volume})
    return rows


def sample_free_energy(res: SampleResult, *, dim: int, L: int, coarse_L: int | None,
                       n_samples: int, seed: int, cache_dir: Path | None,
                       reweight_to: list[CouplingPoint], algorithm: Algorithm = "hmc",
                       device: str = "cpu", progress: ProgressHook | None = None,
                       should_stop: StopHook | None = None) -> dict[str, Any]:
    """The ``free_energy`` block of a sample job's summary (docs/free_energy.md)."""
    weights = res.proposal_weights
    if weights is None:
        raise ValueError("the sample result carries no proposal weights")
    volume = L**dim
    if res.coarse is None:  # a baseline: its Gaussian prior is normalised
        coarse, entry = CoarseLogZ(0.0, 0.0, source="normalised prior"), None
    else:
        assert coarse_L is not None
        coarse, entry = coarse_log_z(dim=dim, L=coarse_L, coarse=res.coarse,
                                     samples=coarse_ti_samples(n_samples), cache_dir=cache_dir,
                                     seed=seed + 4, algorithm=algorithm, device=device,
                                     progress=progress, should_stop=should_stop)
    try:
        shift = res.solver_shift
        fe = free_energy(weights.log_w, coarse=coarse, volume=volume, ode_gap=res.ode_consistency,
                         solver_shift=None if shift is None else (shift.delta, shift.error))
    except ValueError as exc:  # NaN or +inf log-weights: the flow's densities are broken
        msg = Caveat("non_finite", f"log-weights unusable ({exc}): no log Z; check the model")
        return {"log_z": math.nan, "error": math.nan, "f": math.nan, "f_error": math.nan,
                "trusted": False, "caveats": [asdict(msg)], "coarse_integration": entry}
    out = fe.as_dict()
    out["coarse_integration"] = entry
    out["solver_shift"] = None if res.solver_shift is None else res.solver_shift.as_dict()
    out["differences"] = differences(weights, res.fine, reweight_to, volume, fe.log_z, fe.error)
    return out
