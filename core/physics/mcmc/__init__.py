"""Exact (HMC, cluster) and differentiable (Langevin) samplers of the lattice φ⁴ action."""

from core.physics.mcmc.hmc import (
    HmcParams,
    HMCResult,
    HMCSampler,
    SamplingCancelled,
    ThermalisationResult,
    TrajectoryStats,
    run_hmc,
)
from core.physics.mcmc.integrators import OMELYAN_LAMBDA, hamiltonian, leapfrog, omelyan
from core.physics.mcmc.langevin import LangevinSampler
from core.physics.mcmc.start import is_broken_mean_field, resolve_start

__all__ = [
    "OMELYAN_LAMBDA",
    "HMCResult",
    "HMCSampler",
    "HmcParams",
    "LangevinSampler",
    "SamplingCancelled",
    "ThermalisationResult",
    "TrajectoryStats",
    "hamiltonian",
    "is_broken_mean_field",
    "leapfrog",
    "omelyan",
    "resolve_start",
    "run_hmc",
]
