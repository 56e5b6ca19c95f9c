"""The model card (README.md) shipped inside a model download."""

from __future__ import annotations

from typing import Any


def _fmt(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, float) else ("—" if x is None else str(x))


def model_card(v: dict[str, Any]) -> str:
    t = v["theory"]
    files = "\n".join(f"| {n} | `{i['sha256']}` | {i['size']} |" for n, i in v["files"].items())
    couplings = ", ".join(f"{k} = {_fmt(x)}" for k, x in (v["couplings"] or {}).items()) or "—"
    return f"""# {v['name']} — version {v['version']}

A super-resolving normalising flow for lattice φ⁴ theory, trained by srflow.

## Theory
- action: {t['action']}
- d = {t['dim']}, L = {t['L']}, κ = {_fmt(t['kappa'])}, λ = {_fmt(t['lam'])}
- method: {v['method']}; learned couplings: {couplings}

## Quality
- ESS/N = {_fmt(v['ess'])}, Metropolis acceptance = {_fmt(v['acceptance'])}
- training curve: {len(v.get('curve') or [])} points (in metrics.json and the registry)

Exactness of sampled ensembles holds as far as the flow's ODE-consistency figure in
metrics.json; samples are Metropolis-corrected (paper eq. 10).

## Provenance
- seed {_fmt(v['seed'])}, code {_fmt(v['code_version'])}, torch {_fmt(v['torch_version'])},
  torchdiffeq {_fmt(v['torchdiffeq_version'])}, device {_fmt(v['device'])},
  wall time {_fmt(v['wall_time_s'])} s
- parent model: {_fmt(v['parent'])}; job: {_fmt(v['job_id'])}

## Files
| file | sha256 | bytes |
|---|---|---|
{files}

Weights are safetensors (no pickles): loading them executes no code.
"""
