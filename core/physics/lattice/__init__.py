"""φ⁴ theory on a periodic hypercubic lattice: couplings, action, observables."""

from core.physics.lattice.action import CouplingDerivatives, action, coupling_derivatives, force
from core.physics.lattice.couplings import Couplings

__all__ = ["CouplingDerivatives", "Couplings", "action", "coupling_derivatives", "force"]
