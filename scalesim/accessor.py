"""The stateless ``ds.scalesim`` accessor on results (no Dataset subclasses)."""

from __future__ import annotations

import json

import xarray as xr


class ScalesimAccessor:
    """Helpers on a scalesim result: ``ds.scalesim.defaults``, ``ds.scalesim.optimum(...)``."""

    def __init__(self, ds):
        self._ds = ds

    @property
    def defaults(self):
        """The defaults used (name, value, low, high, year, source), parsed from attrs."""
        return json.loads(self._ds.attrs.get("defaults_used", "[]"))

    @property
    def inputs(self):
        """The resolved inputs, parsed from attrs."""
        return json.loads(self._ds.attrs.get("inputs", "{}"))

    def optimum(self, objective="co2e_t", *, over=("n_params", "n_tokens"), **kwargs):
        """Grid argmin of ``objective`` over dims ``over`` subject to constraints; see
        :func:`scalesim.solve.optimization.grid_optimum`."""
        from scalesim.solve.optimization import grid_optimum

        return grid_optimum(self._ds, objective=objective, over=over, **kwargs)

    def quantiles(self, q=(0.05, 0.5, 0.95), *, variables=None):
        """Quantiles over the Monte Carlo ``sample`` dim (``simulate(..., samples=N)``), on dim ``quantile``."""
        ds = self._ds
        if "sample" not in ds.dims:
            raise ValueError("quantiles needs a 'sample' dimension: run simulate(..., samples=N)")
        names = list(variables) if variables is not None else [v for v in ds.data_vars if "sample" in ds[v].dims]
        out = ds[names].quantile(list(q), dim="sample", keep_attrs=True)
        return out

    def prob_less(self, a, b, *, dim, variable="co2e_t"):
        """P(``variable`` at ``dim=a`` < at ``dim=b``), over paired Monte Carlo samples.

        Draws are common random numbers, so this is the probability that the choice ``a`` really
        emits less than ``b`` given the uncertainty of every default.
        """
        ds = self._ds
        if "sample" not in ds.dims:
            raise ValueError("prob_less needs a 'sample' dimension: run simulate(..., samples=N)")
        if variable not in ds:
            raise ValueError(f"variable {variable!r} is not in the dataset; have {sorted(ds.data_vars)}")
        if dim not in ds[variable].dims:
            raise ValueError(f"dim {dim!r} is not a dimension of {variable}: {ds[variable].dims}")
        x = ds[variable]
        p = (x.sel({dim: a}) < x.sel({dim: b})).mean("sample")
        return p.rename(f"prob_{variable}_less").assign_attrs(units="1", long_name=f"P({variable}[{a}] < {variable}[{b}])")


class _Uncached:
    """``ds.scalesim``: a new accessor on each access, not cached on the Dataset.

    xarray's ``register_dataset_accessor`` caches the accessor on the Dataset, and the accessor holds
    the Dataset: a reference cycle that keeps a large result in memory after ``del`` until the
    garbage collector runs. Built on access, the accessor is freed with the expression using it.
    """

    def __get__(self, obj, cls):
        return ScalesimAccessor if obj is None else ScalesimAccessor(obj)


xr.Dataset.scalesim = _Uncached()
