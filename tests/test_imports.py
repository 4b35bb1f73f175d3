"""Small costs (issue 13): `import scalesim` and `scalesim --version` stay light; the accessor just works.

Timings are in bench/run_bench.py (``bench_imports``); these tests check what is imported, which
is what the timings follow from.
"""

import subprocess
import sys

import pytest

HEAVY = ("xarray", "pandas", "matplotlib", "scipy.optimize", "sympy", "dask")


def _imported_after(code):
    """The HEAVY modules in sys.modules after running ``code`` in a fresh interpreter."""
    probe = code + f"\nimport sys\nprint('imported:', *(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return done.stdout.splitlines()[-1].split()[1:]


def test_import_scalesim_imports_nothing_heavy():
    assert _imported_after("import scalesim") == []


def test_version_imports_nothing_heavy_and_not_numpy():
    code = "from scalesim.interface.cli import main\nassert main(['--version']) == 0"
    assert _imported_after(code) == []
    probe = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint('numpy' in sys.modules)"],
                           capture_output=True, text=True, check=True)
    from scalesim import __version__

    assert probe.stdout.split() == ["scalesim", __version__, "False"]


@pytest.mark.parametrize("argv", [["--help"], ["catalog", "regions"], ["catalog", "laws"], ["catalog", "hardware"],
                                  ["schedule", "--help"]])
def test_help_and_catalog_do_not_import_xarray(argv):
    code = ("import contextlib, io\nfrom scalesim.interface.cli import main\n"
            f"with contextlib.redirect_stdout(io.StringIO()) as out:\n    assert main({argv!r}) == 0\n"
            "assert out.getvalue()")
    assert _imported_after(code) == []


@pytest.mark.parametrize("order", ["import scalesim, xarray", "import xarray, scalesim"])
def test_the_accessor_is_there_whichever_is_imported_first(order):
    code = f"{order}\nassert type(xarray.Dataset().scalesim).__name__ == 'ScalesimAccessor'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_entry_points_load_on_first_use():
    code = ("import scalesim, sys\nassert 'scalesim.chain.simulation' not in sys.modules\n"
            "f = scalesim.simulate\nassert f.__module__ == 'scalesim.chain.simulation'\n"
            "assert {'simulate', 'optimize', 'validate', 'logspace'} <= set(dir(scalesim))\n"
            "assert callable(scalesim.optimize) and callable(scalesim.validate)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_large_result_is_freed_on_del_without_the_garbage_collector():
    import gc
    import weakref

    import scalesim as ss

    gc.disable()
    try:  # 10^7 cells: 1000 n_params x 1000 n_tokens x 10 regions
        r = ss.simulate(n_params=ss.logspace(1e8, 1e12, 1000), n_tokens=ss.logspace(1e10, 1e14, 1000), hardware="h100",
                        n_chips=1024, region=["FR", "DE", "US", "PL", "GB", "SE", "IN", "CN", "BR", "JP"],
                        outputs="co2e_t")
        assert r.co2e_t.size == 10 ** 7
        assert r.scalesim.optimum(over=("n_params", "n_tokens")).feasible.all()  # the accessor was used
        ref = weakref.ref(r)
        del r
        assert ref() is None
    finally:
        gc.enable()
