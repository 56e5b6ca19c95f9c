"""The model card (README.md) shipped inside a model download."""

from __future__ import annotations

from typing import Any


def _fmt(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, float) else ("—" if x is None else str(x))


def free_energy_section(rows: list[dict[str, Any]]) -> str:
    """The card's free energies: one line per sample ensemble of the version
    (core.registry.free_energies), or a line saying how to get one."""
    if not rows:
        return ("No sample ensemble with log Z yet: `srflow sample` (or a sample job) "
                "estimates it (docs/free_energy.md).")
    lines = ["| ensemble | N | log Z | f = −log Z/V | caveats |", "|---|---|---|---|---|"]
    for r in rows:
        caveats = ", ".join(r["caveats"]) if r["caveats"] else ("none" if r["trusted"] else "—")
        lines.append(f"| {r['ensemble']} | {r['n']} | {_fmt(r['log_z'])} ± {_fmt(r['error'])} "
                     f"| {_fmt(r['f'])} ± {_fmt(r['f_error'])} | {caveats} |")
    return "\n".join(lines) + ("\n\nlog Z = log Z_c + log ⟨w̃⟩ on fresh proposals, log Z_c by "
                               "thermodynamic integration on the coarse lattice "
                               "(docs/free_energy.md); a caveat means the error bar is not to "
                               "be trusted as quoted.")


def model_card(v: dict[str, Any], free_energies: list[dict[str, Any]] | None = None) -> str:
    """The card of version ``v`` (version_dict) with the free energies measured with it."""
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

## Free energy
{free_energy_section(free_energies or [])}

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
