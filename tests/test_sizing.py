"""Size guard and the lazy route (issue 13): above a size simulate is dask-chunked; materialising is checked first."""

import sys

import numpy as np
import pytest
import xarray as xr

import scalesim as ss
from scalesim.chain import sizing

KW = dict(n_params=ss.logspace(1e8, 1e12, 9), n_tokens=ss.logspace(1e10, 1e14, 8),
          hardware=["H100-SXM5-80GB", "A100-SXM4-80GB", "TPUv5p"], region=["FR", "DE", "US", "PL"], n_chips=1024,
          law="besiroglu2024", mfu="hierarchical")
EVERY = ("n_params", "n_tokens", "hardware", "region")


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(sizing, "CHUNK_BYTES", 8 * 3 * 4 * 4)  # 4 (n_params, n_tokens) cells per chunk: both dims split


def _lazy_and_eager(**extra):
    return ss.simulate(**KW, **extra, lazy_above_bytes=0), ss.simulate(**KW, **extra)


def test_above_the_threshold_the_result_is_lazy_chunked_and_equal(small_chunks):
    lazy, eager = _lazy_and_eager()
    assert "lazy" not in eager.attrs and not hasattr(eager.co2e_t.data, "dask")
    assert hasattr(lazy.co2e_t.data, "dask") and lazy.attrs["lazy"].startswith("dask-chunked: estimated")
    assert "864 cells" in lazy.attrs["lazy"]  # 9 x 8 x 3 x 4, in the attrs with the threshold and the chunks
    assert lazy.co2e_t.data.npartitions > 1 and max(lazy.co2e_t.data.chunksize[:2]) < 8
    assert set(lazy.data_vars) == set(eager.data_vars)
    for name in eager.data_vars:
        np.testing.assert_array_equal(lazy[name].values, eager[name].values, err_msg=name)


@pytest.mark.parametrize("kw", [dict(over=EVERY, target_loss=2.3), dict(target_loss=2.3, wall_days_max=30.0),
                                dict(over=EVERY), dict(over=("n_params", "hardware"), target_loss=1.0),
                                dict(over=("n_params", "n_tokens"), target_loss=2.3, chunk=2)])
def test_the_optimum_of_the_lazy_result_equals_the_eager_one_exactly(small_chunks, kw):
    lazy, eager = _lazy_and_eager()
    got = lazy.scalesim.optimum(**kw)
    want = eager.scalesim.optimum(**kw)
    assert got.attrs.pop("lazy")
    _same_inputs_but_the_threshold(got, want)
    xr.testing.assert_identical(got, want)


def _same_inputs_but_the_threshold(lazy, eager):
    import json

    inputs = json.loads(lazy.attrs.pop("inputs"))
    assert inputs.pop("lazy_above_bytes") == 0
    assert inputs == json.loads(eager.attrs.pop("inputs"))


def test_below_the_threshold_nothing_changes():
    ds = ss.simulate(**KW, lazy_above_bytes=1e12)
    assert "lazy" not in ds.attrs and isinstance(ds.co2e_t.data, np.ndarray)


def test_the_estimate_counts_the_asked_outputs_on_the_whole_grid():
    sizes = {"n_params": 10, "n_tokens": 10, "region": 3}
    assert sizing.estimate_result_bytes(sizes, ["co2e_t"]) == 300 * 8
    assert sizing.estimate_result_bytes(sizes, ["co2e_t", "water_l", "pue", "flop"]) == 2 * 300 * 8
    assert sizing.estimate_result_bytes(sizes, sizing.DEFAULT_OUTPUTS) == 12 * 300 * 8  # 16 less 4 small


def test_the_default_output_list_covers_what_simulate_returns():
    ds = ss.simulate(**{k: v for k, v in KW.items() if k != "law"})
    assert set(ds.data_vars) <= set(sizing.DEFAULT_OUTPUTS)


def test_threshold_on_the_estimate_decides():
    at = 9 * 8 * 3 * 4 * 8  # co2e_t alone: exactly this many bytes
    assert "lazy" not in ss.simulate(**KW, outputs="co2e_t", lazy_above_bytes=at).attrs
    assert "lazy" in ss.simulate(**KW, outputs="co2e_t", lazy_above_bytes=at - 1).attrs


def test_chunks_split_the_longest_dim_first_and_only_as_far_as_needed():
    sizes = {"n_params": 1000, "n_tokens": 800, "hardware": 20, "region": 50}
    # 2^25 bytes = 4,194,304 cells; a row of n_params holds 800 x 1000 cells: 5 rows fit
    assert sizing.chunk_sizes(sizes, ["n_tokens", "n_params"], chunk_bytes=2 ** 25) == {"n_params": 5}
    assert sizing.chunk_sizes(sizes, ["n_tokens", "n_params"], chunk_bytes=8 * 1000 * 100) == {"n_params": 1, "n_tokens": 100}
    assert sizing.chunk_sizes(sizes, ["n_params"], chunk_bytes=8) == {"n_params": 1}
    assert sizing.chunk_sizes({"a": 4}, ["a"], chunk_bytes=1e9) == {}


def test_without_dask_the_lazy_route_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.array", None)  # import dask.array -> ImportError
    with pytest.raises(ValueError, match=r"about .* GB .*864 cells.*lazy_above_bytes=0.*pip install 'scalesim\[dask\]'"):
        ss.simulate(**KW, lazy_above_bytes=0)


def test_bad_threshold_names_the_argument():
    with pytest.raises(ValueError, match="lazy_above_bytes"):
        ss.simulate(**KW, lazy_above_bytes=-1)
    with pytest.raises(ValueError, match="lazy_above_bytes"):
        ss.simulate(**KW, lazy_above_bytes="big")


def test_compute_checks_the_size_first(small_chunks):
    lazy, eager = _lazy_and_eager()
    need = lazy.scalesim.nbytes
    assert need == eager.nbytes
    with pytest.raises(ValueError, match=rf"ds.scalesim.compute\(\) would materialise about {need / 1e9:.3g} GB.*optimum"):
        lazy.scalesim.compute(limit_bytes=need - 1)
    xr.testing.assert_identical(lazy.scalesim.compute(limit_bytes=need), lazy.compute())


def test_check_fits_defaults_to_half_the_available_memory(monkeypatch):
    ds = ss.simulate(**KW, outputs="co2e_t")
    monkeypatch.setattr(sizing, "available_memory_bytes", lambda: 2 * ds.nbytes)
    assert sizing.check_fits(ds, what="x") == ds.nbytes
    monkeypatch.setattr(sizing, "available_memory_bytes", lambda: 2 * ds.nbytes - 2)
    with pytest.raises(ValueError, match="x would materialise.*0.5 of the memory available"):
        sizing.check_fits(ds, what="x")


def test_available_memory_is_positive_and_below_the_machines():
    import os

    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert 0 < sizing.available_memory_bytes() <= total


def test_the_cli_table_refuses_what_would_not_fit(monkeypatch, capsys):
    from scalesim.interface.cli import main

    monkeypatch.setattr(sizing, "available_memory_bytes", lambda: 100)  # a 4-row table needs ~400 bytes
    code = main(["simulate", "--n-params", "1e9,2e9", "--n-tokens", "2e10", "--hardware", "h100", "--n-chips", "64",
                 "--region", "FR,DE"])
    assert code == 2
    err = capsys.readouterr().err
    assert "the table output would materialise about" in err and "ds.scalesim.optimum" in err


def test_a_scenario_too_large_fails_before_computing_or_writing(tmp_path, monkeypatch):
    from scalesim.interface import scenarios

    (tmp_path / "s.toml").write_text('[sweep]\nn_params = [1e9, 2e9, 4e9]\nn_tokens = [2e10, 4e10]\n'
                                     'hardware = "H100-SXM5-80GB"\nn_chips = 64\nregion = ["FR", "US"]\n'
                                     'outputs = ["co2e_t", "water_l"]\n'
                                     '[output]\nnetcdf = "out/s.nc"\ncsv = "out/s.csv"\n')
    monkeypatch.setattr(sizing, "available_memory_bytes", lambda: 2 * 12 * 2 * 8 - 2)  # just too little
    monkeypatch.setattr(sys.modules["scalesim.chain.simulation"], "simulate", lambda **kw: pytest.fail("computed"))
    with pytest.raises(ValueError, match=r"s.toml: the \[sweep\] result would take about .*12 cells.*x 2 output"):
        scenarios.run_scenario(tmp_path / "s.toml", progress=False, base_dir=tmp_path)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    monkeypatch.setattr(sizing, "available_memory_bytes", lambda: 2 * 12 * 2 * 8)  # just enough: the check passes
    assert sizing.check_sweep_fits(scenarios.load_scenario(tmp_path / "s.toml").sweep, what="s") == 12 * 2 * 8


def test_the_optimum_on_a_local_dask_cluster_equals_the_local_one_bitwise(small_chunks):
    """The optimum is one graph on the cluster (positions and values together), persisted or not.

    A second graph sharing the simulate keys (taking the variables at the optimum) made the
    scheduler fail intermittently in CI: "Detected different run_spec", then a KeyError; taking
    them on local threads instead fails outright once the chunks are persisted on the cluster.
    """
    distributed = pytest.importorskip("distributed", reason="dask.distributed is in the test extra (make test installs it)")
    from distributed.diagnostics.plugin import SchedulerPlugin

    class Graphs(SchedulerPlugin):
        tasks = []

        def update_graph(self, scheduler, *, keys, **kwargs):
            self.tasks.append(len(keys))

    lazy, eager = _lazy_and_eager()
    want = eager.scalesim.optimum(over=EVERY, target_loss=2.3)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        cluster.scheduler.add_plugin(Graphs())
        got = lazy.scalesim.optimum(over=EVERY, target_loss=2.3)
        assert len(Graphs.tasks) == 1 and Graphs.tasks[0] > 0  # the search ran there, and nothing else did
        persisted = lazy.persist()  # chunks in the workers' memory: only the cluster can read them
        again = persisted.scalesim.optimum(over=EVERY, target_loss=2.3)
        assert len(Graphs.tasks) == 3
    assert all(v.chunks is None for v in got.variables.values())  # in memory: the kept dims' size
    xr.testing.assert_identical(again, got)
    assert got.attrs.pop("lazy")
    _same_inputs_but_the_threshold(got, want)
    xr.testing.assert_identical(got, want)


def test_chunk_sizes_properties():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=200, deadline=None)
    @given(st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), st.integers(1, 5000), min_size=1),
           st.integers(8, 2 ** 30), st.data())
    def check(sizes, chunk_bytes, data):
        chunkable = data.draw(st.lists(st.sampled_from(sorted(sizes)), unique=True))
        chunks = sizing.chunk_sizes(sizes, chunkable, chunk_bytes=chunk_bytes)
        assert set(chunks) <= set(chunkable) and all(1 <= c < sizes[d] for d, c in chunks.items())
        cells = np.prod([chunks.get(d, n) for d, n in sizes.items()])
        assert cells * 8 <= max(chunk_bytes, 8) or all(chunks.get(d, sizes[d]) == 1 for d in chunkable)

    check()
