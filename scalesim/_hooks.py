"""Register the ``ds.scalesim`` accessor when xarray is imported, without importing xarray here.

``import scalesim`` must stay light (no xarray, pandas, dask, matplotlib, sympy or
scipy.optimize: ``scalesim --version`` prints a constant), yet ``import scalesim; import xarray;
xarray.Dataset().scalesim`` must work as if the accessor had been registered eagerly. If xarray is
already imported, :func:`register_accessor_on_xarray_import` registers the accessor at once (it
costs nothing then); otherwise it puts a one-shot finder on :data:`sys.meta_path` that lets the
normal finders locate xarray, and runs ``import scalesim.accessor`` right after xarray's own module
code has run -- whoever imports xarray, and before the import statement returns. The finder removes
itself on first use. The simulate chain also imports :mod:`scalesim.accessor` directly, so every
Dataset that scalesim returns has the accessor whatever the import machinery does.
"""

from __future__ import annotations

import sys


class _AccessorOnXarrayImport:
    """One-shot meta-path finder: find xarray as usual, then register the accessor after it loads.

    A plain class with ``find_spec`` (the meta-path protocol); subclassing ``importlib.abc`` would
    cost more import time than the rest of ``import scalesim``.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "xarray":
            return None
        import importlib
        import importlib.util

        _remove_finder()
        spec = importlib.util.find_spec("xarray")  # the ordinary finders, this one removed
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run_module = spec.loader.exec_module

        def exec_module(module):
            run_module(module)
            importlib.import_module("scalesim.accessor")

        spec.loader.exec_module = exec_module  # this spec's own loader instance; attributes unchanged
        return spec


def _remove_finder():
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _AccessorOnXarrayImport)]


def register_accessor_on_xarray_import():
    """Register ``ds.scalesim`` now if xarray is loaded, else as soon as it is imported (idempotent)."""
    if "xarray" in sys.modules:
        import importlib

        importlib.import_module("scalesim.accessor")
    elif not any(isinstance(f, _AccessorOnXarrayImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AccessorOnXarrayImport())
