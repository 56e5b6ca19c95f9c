"""srflow core: φ⁴ lattice physics, exact samplers, super-resolving flows, training and sampling.

Nothing in this package imports ``app`` or ``worker``; ``core.specs`` and ``core.registry``
import no torch so the API process stays light.
"""

__version__ = "0.1.0"
