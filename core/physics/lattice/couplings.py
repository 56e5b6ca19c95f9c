"""The bare couplings (κ, λ) of the lattice φ⁴ action (paper eq. 3)."""

from __future__ import annotations

from dataclasses import dataclass


class CouplingError(ValueError):
    """Invalid couplings; the message names the parameter and the allowed range."""


@dataclass(frozen=True)
class Couplings:
    """Hopping parameter κ and quartic coupling λ of
    S(φ) = Σ_x [(1−2λ)φ_x² + λφ_x⁴ − 2κ Σ_μ φ_x φ_{x+μ}].

    λ ≥ 0 is required for a bounded action. At λ = 0 the theory is Gaussian and
    normalisable only for κ < 1/(2d) (the free propagator 1/(2(1 − 2κ Σ_μ cos p_μ))
    must be positive at p = 0).
    """

    kappa: float
    lam: float

    def validate(self, dim: int) -> Couplings:
        """Return self, or raise :class:`CouplingError` naming the offending parameter."""
        if not (self.lam >= 0.0):
            raise CouplingError(f"lam={self.lam} is invalid: λ must be ≥ 0")
        if self.lam == 0.0 and not (abs(self.kappa) < 1.0 / (2 * dim)):
            raise CouplingError(
                f"kappa={self.kappa} is invalid at lam=0 in d={dim}: the free theory needs "
                f"|κ| < 1/(2d) = {1.0 / (2 * dim):g}"
            )
        return self

    def as_dict(self) -> dict[str, float]:
        return {"kappa": float(self.kappa), "lam": float(self.lam)}
