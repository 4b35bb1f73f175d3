"""The one-pass dask optimum equals the numpy route bitwise: ties across chunks, dtypes, NaN, extra dims."""

import numpy as np
import pytest
import xarray as xr

import scalesim  # noqa: F401  (registers the ds.scalesim accessor)

pytest.importorskip("dask.array", reason="dask is in the test extra (make test installs it)")


def _grid(seed):
    rng = np.random.default_rng(seed)
    a, b, c = 5, 7, 3
    obj = rng.integers(0, 4, (a, b, c)).astype(float)  # few values: ties everywhere, across chunk edges
    obj[rng.random((a, b, c)) < 0.2] = np.nan  # inadmissible cells
    obj[:, :, 2] = np.nan  # one kept coordinate with no admissible cell at all
    return xr.Dataset(
        {"co2e_t": (("a", "b", "c"), obj),
         "n_cells": (("a", "b"), rng.integers(-5, 5, (a, b))),  # int, lacks a kept dim
         "ok": (("b", "c"), rng.random((b, c)) < 0.5),  # bool, lacks a searched dim
         "water_l": (("a", "b", "c", "s"), rng.random((a, b, c, 2))),  # an extra dim
         "pue": (("c",), rng.random(c))},  # no searched dim (when c is kept): passes through
        coords={"a": np.arange(a) * 10.0, "b": [f"b{i}" for i in range(b)], "c": [1, 2, 3]},
        attrs={"note": "x"})


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("over", [("a", "b"), ("b", "a"), ("a",), ("a", "b", "c")])
def test_the_chunked_optimum_equals_the_numpy_one_bitwise(seed, over):
    ds = _grid(seed)
    ds["water_l"].attrs["units"] = "L"
    lazy = ds.chunk({"a": 2, "b": 3})
    want = ds.scalesim.optimum(over=over)
    got = lazy.scalesim.optimum(over=over)
    xr.testing.assert_identical(got, want)
    assert all(got[v].dtype == want[v].dtype for v in want.variables)
    assert got.water_l.attrs == {"units": "L"}
