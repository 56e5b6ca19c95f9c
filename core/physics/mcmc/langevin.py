"""Batched, differentiable Langevin sampling of the φ⁴ action (paper eq. 37; Appendix C).

    φ^(ϑ+1) = φ^(ϑ) − τ ∇_φ S[κ, λ](φ^(ϑ)) + √(2τ) η(ϑ),   η ~ N(0, 1) i.i.d.      (37)

The chain is *not* Metropolis-corrected: its stationary distribution differs from e^{−S}
by O(τ) (for the free theory each mode's variance is 1/(a(1 − τa/2)) instead of 1/a,
where a is the eigenvalue of ∇²S). The IR-matching of the paper uses it on the coarse
lattice because the samples are differentiable with respect to the couplings: κ and λ
may be 0-d tensors with ``requires_grad``, and ``step_many(..., differentiable=True)``
returns a batch whose graph reaches them through every step of that call. Between calls
the state is kept detached, so memory is bounded by one call's graph
(≈ n_steps × batch × V values; 500 × 4×4 lattices is small).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from core.physics.control import SamplingCancelled, StopHook
from core.physics.lattice.action import force

Coupling = float | Tensor


# steps between two should_stop() calls in thermalise: ~0.1 s on a 64² coarse batch of 64,
# far below a database round trip per step (the worker throttles its reads anyway)
STOP_CHECK_EVERY = 200


class LangevinSampler:
    """``batch`` Langevin chains on an L^d lattice; ``phi`` is the current (detached) batch,
    initialised i.i.d. N(0, 1) from ``generator``."""

    def __init__(
        self,
        dim: int,
        L: int,
        batch: int,
        generator: torch.Generator,
        tau: float = 0.01,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float64,
    ) -> None:
        if tau <= 0:
            raise ValueError(f"tau={tau}: the Langevin step must be > 0")
        self.dim, self.L, self.batch, self.tau = dim, L, batch, float(tau)
        self.generator, self.device, self.dtype = generator, torch.device(device), dtype
        self.phi = self.gaussian()

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.batch,) + (self.L,) * self.dim

    def gaussian(self) -> Tensor:
        return torch.randn(self.shape, generator=self.generator, device=self.device,
                           dtype=self.dtype)

    def _step(self, phi: Tensor, kappa: Coupling, lam: Coupling) -> Tensor:
        """One step of eq. (37)."""
        noise = self.gaussian()
        return phi - self.tau * force(phi, kappa, lam) + math.sqrt(2 * self.tau) * noise

    def thermalise(self, kappa: Coupling, lam: Coupling, n_steps: int = 50000, *,
                   reset: bool = False,
                   should_stop: StopHook | None = None) -> Tensor:
        """n_steps of eq. (37) without gradients from the current state (``reset``: from fresh
        i.i.d. Gaussian fields); returns the new detached state. ``should_stop`` is asked
        every ``STOP_CHECK_EVERY`` steps (5·10⁴ steps take minutes on a large lattice): when
        it answers True, SamplingCancelled is raised and the state is left as it was."""
        k = kappa.detach() if isinstance(kappa, Tensor) else kappa
        lm = lam.detach() if isinstance(lam, Tensor) else lam
        with torch.no_grad():
            phi = self.gaussian() if reset else self.phi
            for i in range(n_steps):
                if should_stop is not None and i % STOP_CHECK_EVERY == 0 and should_stop():
                    raise SamplingCancelled(
                        f"Langevin thermalisation stopped after {i} of {n_steps} steps")
                phi = self._step(phi, k, lm)
        self.phi = phi.detach()
        return self.phi

    def step_many(self, kappa: Coupling, lam: Coupling, n_steps: int = 500,
                  differentiable: bool = True) -> Tensor:
        """n_steps of eq. (37) from the current (detached) state. With ``differentiable`` the
        returned batch carries the graph back to tensor couplings; otherwise it is detached.
        The stored state is always detached."""
        if not differentiable:
            return self.thermalise(kappa, lam, n_steps).clone()
        phi = self.phi
        with torch.enable_grad():
            for _ in range(n_steps):
                phi = self._step(phi, kappa, lam)
        self.phi = phi.detach()
        return phi
