"""File formats: ensembles as HDF5 (:mod:`core.io.ensemble`)."""

from core.io.ensemble import (
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
