"""Monte Carlo statistics: Γ-method errors and τ_int (gamma), chains checked against each
other (chains)."""
