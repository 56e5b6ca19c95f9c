"""Super-resolving and baseline normalising flows (paper Section IV).

    config           FlowConfig: architecture, theory and solver of a stored flow (no torch)
    solver           SolverConfig: the CNF's ODE solver, config.json's "solver" (no torch)
    architecture     FieldConfig, HollowConfig, LevelConfig: one level's parts (no torch)
    upsample         U and U† (17)-(18)
    noise            block noise with zero block sum (19)-(21); conditional_noise: σ from the
                     coarse field
    time_basis       K(t) and H(Ψ) (23)-(24)
    vector_field     the equivariant field G (22)-(25) with its exact divergence;
                     hollow_field: the hollow variant (DESIGN §4b)
    cnf              the continuous normalising flow (26)-(28)
    rg_flow          levels and stacks (29), (38); build_flow(config)
    baseline         the full-lattice baseline CNF
    gap              the solver gap: tracked against re-solved log-densities

Import the modules themselves (``from core.physics.flows.rg_flow import build_flow``): this
package's face is empty so that ``flows.config`` (with ``solver`` and ``architecture``) loads
without torch.
"""
