"""The stateless ``ds.scalesim`` accessor on results (no Dataset subclasses)."""

from __future__ import annotations

import json

import xarray as xr


@xr.register_dataset_accessor("scalesim")
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
