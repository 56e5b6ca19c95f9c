"""The exact samplers that can draw a flow's coarse configurations (no torch: the job specs
validate with this module in the API process).

``hmc``: HMC on the coarse lattice (core.physics.mcmc.hmc). ``cluster``: Wolff flips of the
embedded Ising signs with checkerboard Metropolis sweeps (Brower & Tamayo 1989,
core.physics.mcmc.cluster); its sweeps need an even coarse_L. A baseline flow has no coarse
lattice — it draws from its own Gaussian prior — so it takes ``hmc`` (that is, nothing).
"""

from __future__ import annotations

from typing import Literal

CoarseSampler = Literal["hmc", "cluster"]


def coarse_sampler_error(coarse_sampler: str, kind: str, coarse_L: int | None) -> str | None:
    """None if a model of ``kind`` (FlowConfig.kind, or the method: "baseline" for a
    baseline) with ``coarse_L`` can draw its coarse fields with ``coarse_sampler``, else the
    message naming what to change."""
    if coarse_sampler != "cluster":
        return None
    if kind == "baseline" or coarse_L is None:
        return ("coarse_sampler='cluster': a baseline model has no coarse lattice (it draws "
                "from its Gaussian prior): use coarse_sampler='hmc' or a super-resolving model")
    if coarse_L % 2:
        return (f"coarse_sampler='cluster': the model's coarse_L={coarse_L} is odd and the "
                "cluster algorithm's checkerboard sweeps need an even L: use coarse_sampler='hmc'")
    return None


def check_coarse_sampler(coarse_sampler: str, kind: str, coarse_L: int | None) -> None:
    """Raise ValueError with :func:`coarse_sampler_error`'s message when there is one."""
    if (msg := coarse_sampler_error(coarse_sampler, kind, coarse_L)) is not None:
        raise ValueError(msg)


__all__ = ["CoarseSampler", "check_coarse_sampler", "coarse_sampler_error"]
