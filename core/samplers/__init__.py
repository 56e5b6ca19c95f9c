"""Exact (HMC) and differentiable (Langevin) samplers of the lattice φ⁴ action."""

from core.samplers.hmc import (
    HMCResult,
    HMCSampler,
    SamplingCancelled,
    ThermalisationResult,
    TrajectoryStats,
    is_broken_mean_field,
    resolve_start,
    run_hmc,
)
from core.samplers.integrators import OMELYAN_LAMBDA, hamiltonian, leapfrog, omelyan
from core.samplers.langevin import LangevinSampler

__all__ = [
    "OMELYAN_LAMBDA",
    "HMCResult",
    "HMCSampler",
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
