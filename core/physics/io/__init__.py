"""File formats: ensembles as HDF5 (:mod:`core.physics.io.ensemble`)."""

from core.physics.io.ensemble import (
    FORMAT_VERSION,
    Ensemble,
    EnsembleError,
    EnsembleMeta,
    WrittenEnsemble,
    read_ensemble,
    write_ensemble,
)

__all__ = [
    "FORMAT_VERSION",
    "Ensemble",
    "EnsembleError",
    "EnsembleMeta",
    "WrittenEnsemble",
    "read_ensemble",
    "write_ensemble",
]
