"""HDF5 ensembles: bit-exact round trip, refusal of damaged files, atomic writes."""

import datetime as dt
import math
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import core.physics.io.ensemble as ens
from core import __version__
from core.physics.io import EnsembleError, EnsembleMeta, read_ensemble, write_ensemble


def make_meta(**kw: object) -> EnsembleMeta:
    base: dict = dict(
        dim=2, L=8, kappa=0.2718281828459045, lam=0.0123, method="flow",
        seeds={"seed": 7, "coarse": [1, 2]},
        sampler={"chains": 16, "integrator": "omelyan", "step": 0.1},
        acceptance=0.731, ess=0.6180339887, thinning=3,
        observables={"binder": {"mean": 0.5, "error": 0.01, "tau_int": 0.5},
                     "correlation_length": {"mean": math.nan, "error": math.nan}},
        model_id="m-1", model_version=4, created="2026-01-02T03:04:05+00:00",
    )  # fmt: skip
    base.update(kw)
    return EnsembleMeta(**base)


def make_configs(n: int = 40, size: int = 8, dtype: torch.dtype = torch.float64) -> np.ndarray:
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, size, size, generator=g, dtype=dtype).numpy()


def write(tmp_path: Path, **kw: object) -> Path:
    cfg = make_configs()
    extras = {"log_q": np.linspace(-3, 1, 40), "accepted": np.arange(40) % 3 == 0}
    return write_ensemble(tmp_path / "e.h5", cfg, make_meta(**kw), extras).path


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_round_trip_is_bit_exact(tmp_path: Path, dtype: torch.dtype) -> None:
    cfg = make_configs(dtype=dtype)
    extras = {"log_q": np.linspace(-3, 1, 40), "accepted": np.arange(40) % 3 == 0}
    meta = make_meta()
    out = write_ensemble(tmp_path / "sub" / "e.h5", cfg, meta, extras)
    assert out.path == tmp_path / "sub" / "e.h5" and out.size == out.path.stat().st_size
    assert out.sha256 == ens.file_sha256(out.path) and len(out.sha256) == 64
    back = read_ensemble(out.path)
    assert back.configs.dtype == cfg.dtype and back.configs.tobytes() == cfg.tobytes()
    assert set(back.extras) == {"log_q", "accepted"}
    for key, value in extras.items():
        assert back.extras[key].dtype == value.dtype
        assert back.extras[key].tobytes() == value.tobytes()
    # NaN != NaN: compare the JSON text of the observables, the rest field by field
    assert back.meta.to_attrs() == meta.to_attrs()
    assert back.meta.kappa == meta.kappa and back.meta.model_version == 4
    assert back.meta.seeds == meta.seeds and back.meta.sampler == meta.sampler
    with h5py.File(out.path) as h5:
        ds = h5["configs"]
        assert ds.compression == "gzip" and ds.chunks is not None
        assert h5.attrs["d"] == 2 and h5.attrs["kappa"] == meta.kappa
        assert h5.attrs["code_version"] == __version__


def test_defaults_created_time_and_optional_attributes(tmp_path: Path) -> None:
    meta = EnsembleMeta(dim=1, L=16, kappa=0.1, lam=0.0, method="hmc")
    out = write_ensemble(tmp_path / "e.h5", torch.zeros(5, 16), meta)
    back = read_ensemble(out.path)
    created = dt.datetime.fromisoformat(back.meta.created)
    assert abs((dt.datetime.now(dt.UTC) - created).total_seconds()) < 60
    assert back.meta.acceptance is None and back.meta.model_id is None and back.extras == {}
    with h5py.File(out.path) as h5:
        assert "acceptance" not in h5.attrs and "model_id" not in h5.attrs


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path)
    data = path.read_bytes()
    for keep in (len(data) // 2, len(data) - 100, 100):
        path.write_bytes(data[:keep])
        with pytest.raises(EnsembleError, match=r"e\.h5.*truncated"):
            read_ensemble(path)


def test_tampered_configs_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path)
    with h5py.File(path, "r+") as h5:
        h5["configs"][3, 2, 1] = h5["configs"][3, 2, 1] + 1e-9
    with pytest.raises(EnsembleError, match=r"e\.h5: checksum mismatch in dataset '/configs'"):
        read_ensemble(path)
    read_ensemble(path, verify=False)  # structure is still fine


def test_tampered_extra_and_stamped_attributes(tmp_path: Path) -> None:
    path = write(tmp_path)
    with h5py.File(path, "r+") as h5:
        h5.attrs["job_id"] = "stamped later"  # root attributes are not checksummed
    read_ensemble(path)
    with h5py.File(path, "r+") as h5:
        h5["log_q"][0] = 5.0
    with pytest.raises(EnsembleError, match="checksum mismatch in dataset '/log_q'"):
        read_ensemble(path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda h5: h5.attrs.__delitem__("kappa"), "missing attribute 'kappa'"),
        (lambda h5: h5.attrs.__setitem__("d", "two"), "attribute 'd' has type str"),
        (lambda h5: h5.attrs.__setitem__("L", 16), r"shape mismatch: configs has shape \(40, 8"),
        (lambda h5: h5.attrs.__setitem__("seeds", "{"), "attribute 'seeds' is not valid JSON"),
        (lambda h5: h5.__delitem__("configs"), "missing dataset 'configs'"),
        (lambda h5: h5.attrs.__setitem__("format_version", 99), "newer than this code"),
        (lambda h5: h5["configs"].attrs.__delitem__("sha256"), "has no 'sha256' checksum"),
    ],
)  # fmt: skip
def test_invalid_files_name_the_problem(tmp_path: Path, edit, message: str) -> None:
    path = write(tmp_path)
    with h5py.File(path, "r+") as h5:
        edit(h5)
    with pytest.raises(EnsembleError, match=message) as info:
        read_ensemble(path)
    assert str(path) in str(info.value)


def test_not_hdf5_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(EnsembleError, match="no such ensemble file"):
        read_ensemble(tmp_path / "absent.h5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not an hdf5 file" * 10)
    with pytest.raises(EnsembleError, match="cannot be opened as HDF5"):
        read_ensemble(junk)


def test_invalid_inputs_are_refused_before_writing(tmp_path: Path) -> None:
    bad = make_configs()
    bad[0, 0, 0] = np.nan
    with pytest.raises(EnsembleError, match="finite"):
        write_ensemble(tmp_path / "a.h5", bad, make_meta())
    with pytest.raises(EnsembleError, match="does not match d=2, L=8"):
        write_ensemble(tmp_path / "a.h5", make_configs(size=4), make_meta())
    with pytest.raises(EnsembleError, match="one entry per configuration"):
        write_ensemble(tmp_path / "a.h5", make_configs(), make_meta(), {"log_q": np.zeros(3)})
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_no_file_and_keeps_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ens._write_dataset

    def failing(h5: h5py.File, name: str, data: np.ndarray) -> None:
        if name == "log_q":  # configs were already written to the temporary file
            raise RuntimeError("disk full (injected)")
        real(h5, name, data)

    monkeypatch.setattr(ens, "_write_dataset", failing)
    extras = {"log_q": np.zeros(40)}
    with pytest.raises(RuntimeError, match="injected"):
        write_ensemble(tmp_path / "new.h5", make_configs(), make_meta(), extras)
    assert list(tmp_path.iterdir()) == []  # neither the final file nor a temporary one
    monkeypatch.setattr(ens, "_write_dataset", real)
    old = write_ensemble(tmp_path / "old.h5", make_configs(), make_meta())
    monkeypatch.setattr(ens, "_write_dataset", failing)
    with pytest.raises(RuntimeError, match="injected"):
        write_ensemble(tmp_path / "old.h5", make_configs() + 1, make_meta(), extras)
    assert list(tmp_path.iterdir()) == [old.path]
    assert ens.file_sha256(old.path) == old.sha256


def test_free_energy_attribute_is_optional(tmp_path: Path) -> None:
    """log Z, f and the caveats ride along as one JSON attribute; files without it (all
    written before it existed) read as before, with ``free_energy`` None."""
    fe = {"log_z": 39.86, "error": 0.009, "f": -0.6229, "f_error": 0.00014, "trusted": False,
          "caveats": [{"code": "low_ess", "message": "ESS/N = 0.01"}]}
    back = read_ensemble(write(tmp_path, free_energy=fe))
    assert back.meta.free_energy == fe
    old = tmp_path / "old"
    old.mkdir()
    assert read_ensemble(write(old)).meta.free_energy is None
    with h5py.File(write(old), "r") as f:
        assert "free_energy" not in f.attrs
