"""An ensemble's per-configuration series as a pyerrors JSON document (no torch).

pyerrors (Joswig, Kuberski, Kuhlmann, Neuendorf, Comput. Phys. Commun. 288 (2023) 108750)
reads its own JSON format, version 1.1 (``pyerrors.input.json.load_json``): a list
``obsdata`` of structures, each with the observables' ``value`` (the mean over all
replicas) and ``data`` = [{"id": ensemble, "replica": [{"name": "ENSEMBLE|REPLICA",
"deltas": [[configuration number, a_1 − ā_1, a_2 − ā_2, ...], ...]}]}], deltas taken
around the global mean (pyerrors re-centres each replica on reading). This module writes
that format itself, with numpy and json only, so the API process can serve it
(app.routes.pyerrors); tests/physics/io/test_pyerrors_json.py reads it back with pyerrors.

srflow stores the series in the ensemble file as datasets ``series_<name>`` (one value per
configuration, in the order of ``configs``; core.physics.lattice.series); a flow-sampled
ensemble also stores ``proposal_log_w``, the fresh proposals' log w̃ (the importance weights
of its log Z, DESIGN §10). :func:`ensemble_document` turns one file into one document with
one Monte Carlo ensemble name:

- direct HMC or cluster ensembles: one replica per chain (``|c000``, ...);
- flow + Metropolis ensembles: replica ``|chain`` (the Markov chain) and, for the weights,
  replica ``|proposals`` holding ``weight`` = w̃/max w̃, i.i.d. draws of q: log Z = log Z_c +
  log max w̃ + log ⟨weight⟩, and ⟨O⟩ = ⟨weight·O⟩/⟨weight⟩ for what is measured on the
  proposals. The two replicas are different samples (the chain repeats accepted
  proposals), so never combine an Obs of one with an Obs of the other.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from core import __version__

SERIES_PREFIX = "series_"
PROPOSAL_LOG_W = "proposal_log_w"
FORMAT = "1.1"


@dataclass(frozen=True)
class ObsGroup:
    """Observables ``names`` measured on the same configurations: per replica name a
    ``(T_r, len(names))`` array (configuration numbers 1..T_r)."""

    names: tuple[str, ...]
    replicas: dict[str, np.ndarray]


class SeriesMissing(LookupError):
    """The ensemble file holds no per-configuration series (written before they were)."""


def _obsdata(ensemble: str, group: ObsGroup) -> dict[str, Any]:
    arrays = [np.asarray(a, dtype=np.float64) for a in group.replicas.values()]
    if not arrays or any(a.ndim != 2 or a.shape[1] != len(group.names) for a in arrays):
        raise ValueError(f"every replica of {group.names} needs shape (T, {len(group.names)})")
    if not all(np.all(np.isfinite(a)) for a in arrays):
        raise ValueError(f"series of {group.names} contain non-finite values")
    mean = np.concatenate(arrays).mean(axis=0)
    replicas = []
    for name, a in zip(group.replicas, arrays, strict=True):
        deltas = a - mean
        replicas.append({"name": f"{ensemble}|{name}",
                         "deltas": [[i + 1, *row] for i, row in enumerate(deltas.tolist())]})
    return {"type": "List", "layout": str(len(group.names)), "tag": list(group.names),
            "value": mean.tolist(), "data": [{"id": ensemble, "replica": replicas}]}


def pyerrors_document(ensemble: str, groups: list[ObsGroup],
                      description: str = "") -> dict[str, Any]:
    """The pyerrors JSON document (format 1.1) of ``groups`` on one Monte Carlo ensemble."""
    if "|" in ensemble:
        raise ValueError(f"ensemble={ensemble!r}: pyerrors reserves '|' for replica names")
    return {"program": f"srflow {__version__}", "version": FORMAT, "who": "srflow",
            "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S %z"),
            "host": "srflow", "description": description,
            "obsdata": [_obsdata(ensemble, g) for g in groups]}


def gzipped(document: dict[str, Any]) -> bytes:
    """The document as gzipped UTF-8 JSON (what ``load_json(path)`` reads by default)."""
    return gzip.compress(json.dumps(document).encode(), mtime=0)


def _chains(attrs: Any, n: int) -> int:
    """Chains of a direct sampler's chain-major file (1 when not recorded)."""
    try:
        settings = json.loads(attrs.get("sampler_settings", "{}"))
        chains, per = int(settings.get("chains", 1)), int(settings.get("samples_per_chain", n))
    except (TypeError, ValueError):
        return 1
    return chains if chains * per == n and chains >= 1 else 1


def ensemble_document(path: Path, ensemble: str, description: dict[str, Any]) -> dict[str, Any]:
    """The pyerrors document of an ensemble file (module doc); :class:`SeriesMissing` when
    it holds no series. ``description`` (JSON-able) is stored as the document's text."""
    with h5py.File(path, "r") as h5:
        names = sorted(k for k in h5 if k.startswith(SERIES_PREFIX))
        if not names:
            raise SeriesMissing(f"{path.name} holds no per-configuration series")
        data = np.stack([np.asarray(h5[k][()], dtype=np.float64) for k in names], axis=1)
        method = h5.attrs.get("method", "")
        method = method.decode() if isinstance(method, bytes) else str(method)
        chains = 1 if method == "flow+metropolis" else _chains(h5.attrs, data.shape[0])
        log_w = (np.asarray(h5[PROPOSAL_LOG_W][()], dtype=np.float64)
                 if PROPOSAL_LOG_W in h5 else None)
    short = tuple(k.removeprefix(SERIES_PREFIX) for k in names)
    if chains > 1:
        per = data.shape[0] // chains
        groups = [ObsGroup(short, {f"c{c:03d}": data[c * per:(c + 1) * per]
                                   for c in range(chains)})]
    else:
        groups = [ObsGroup(short, {"chain": data})]
    meta = dict(description)
    usable = (log_w is not None and log_w.size >= 2 and bool(np.any(np.isfinite(log_w)))
              and not bool(np.any(np.isnan(log_w) | (log_w == np.inf))))
    if log_w is not None and usable:
        top = float(log_w[np.isfinite(log_w)].max())
        groups.append(ObsGroup(("weight",), {"proposals": np.exp(log_w - top)[:, None]}))
        meta["log_max_weight"] = top
    elif log_w is not None:
        meta["weights_omitted"] = "the proposals' log-weights are not all finite or −inf"
    return pyerrors_document(ensemble, groups, json.dumps(meta, sort_keys=True))
