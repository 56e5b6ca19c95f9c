"""The ODE solver of the CNF, eqs. (26)-(28) — one definition, no torch.

:class:`SolverConfig` is the solver everywhere: :mod:`core.physics.flows.cnf` integrates with
it, :mod:`core.physics.flows.gap` refines it, the trainer checkpoints it and ``config.json``
stores it as

    "solver": {"method": ..., "steps": ..., "rtol": ..., "atol": ..., "adjoint": ...,
               "t0": ..., "t1": ...}

(:meth:`SolverConfig.to_dict`), which :class:`core.physics.flows.config.FlowConfig` validates
through this class. Like FlowConfig it is a frozen pydantic model because it parses that
record from uploaded, untrusted files: types and ranges are checked on construction (a
``ValidationError``, a ``ValueError``, names the field), unknown keys are refused. Changed
copies (:meth:`SolverConfig.with_steps`, :meth:`SolverConfig.with_tolerances`) are
validated too.

``steps`` is used by the fixed-step methods (uniform grid on [t0, t1]); ``rtol``/``atol`` by
the adaptive ones. ``adjoint`` solves the backward pass with the adjoint method (O(1) memory
in the number of steps; gradients then approximate the discrete ones). [t0, t1] is also the
interval of the field's time kernel K(t) (eq. 23); the CNF refuses a solver whose interval
differs from its field's.

**Step count.** :data:`LIBRARY_STEPS` = 32 is the library's default, for code that builds
flows directly (tests, benches): with D = 10 time modes (top mode sin 10πs) 8 RK4 steps are
pre-asymptotic — measured on 8×8 with W̃ ~ N(0, 0.1²): |Δ log_det| vs dopri5 2.6e-3 (8 steps),
2.1e-4 (16), 8.9e-6 (32), 3.8e-7 (64), growing with the volume and the weights; 32 is the
first count with a per-site error < 1e-6. It is *not* the user-facing default: a job's solver
is ``TrainSpec.solver`` × ``TrainSpec.solver_steps`` (core/jobs/specs.py, RK4 × 8 by
default, kept honest by the gap monitor), written into the model's ``config.json``; a stored
flow always carries its own solver.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

SolverMethod = Literal["rk4", "euler", "midpoint", "dopri5"]
SOLVER_METHODS: tuple[str, ...] = get_args(SolverMethod)
FIXED_STEP = ("rk4", "euler", "midpoint")
ADAPTIVE = ("dopri5",)
LIBRARY_STEPS = 32
"""The library's step count (see the module doc); jobs take ``TrainSpec.solver_steps``."""


class SolverConfig(BaseModel):
    """ODE solver of the CNF; part of the model's config (``config.json``'s ``"solver"``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: SolverMethod = "rk4"
    steps: Annotated[int, Field(ge=1, le=10000)] = LIBRARY_STEPS
    rtol: Annotated[float, Field(gt=0.0)] = 1e-7
    atol: Annotated[float, Field(gt=0.0)] = 1e-9
    adjoint: bool = False
    t0: float = 0.0
    t1: float = 1.0

    @model_validator(mode="after")
    def _interval(self) -> SolverConfig:
        if self.t1 == self.t0:
            raise ValueError("solver interval [t0, t1] is empty")
        return self

    def to_dict(self) -> dict[str, Any]:
        """The JSON record of ``config.json`` (and of training checkpoints)."""
        return self.model_dump()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SolverConfig:
        """Parse a record; missing keys take the defaults above, unknown keys are refused."""
        return cls.model_validate(data)

    def with_steps(self, steps: int) -> SolverConfig:
        """The same solver with another step count (e.g. 2× for the ODE-consistency figure)."""
        return self.from_dict({**self.to_dict(), "steps": steps})

    def with_tolerances(self, rtol: float, atol: float) -> SolverConfig:
        """The same solver with other tolerances (adaptive methods' reference solve)."""
        return self.from_dict({**self.to_dict(), "rtol": rtol, "atol": atol})

    @property
    def fixed_step(self) -> bool:
        """True for the fixed-step methods (the step count is a setting)."""
        return self.method in FIXED_STEP
