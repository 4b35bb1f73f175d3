"""Scenario files: [output] quantiles sets the intervals of a Monte Carlo result's table, validated."""

import numpy as np
import pandas as pd
import pytest

from scalesim.interface import scenarios
from scalesim.interface.scenarios import ScenarioError, load_scenario, run_scenario

SWEEP = """
[sweep]
n_params = 7e9
n_tokens = 1e11
hardware = "H100-SXM5-80GB"
n_chips = 256
region = ["FR", "PL"]
samples = 64
seed = 1

[output]
netcdf = "out/q.nc"
csv = "out/q.csv"
table = ["co2e_t", "energy_kwh", "wall_days"]
"""


def write(tmp_path, text):
    p = tmp_path / "q.toml"
    p.write_text(text)
    return p


def test_default_quantiles_are_5_50_95(tmp_path):
    assert load_scenario(write(tmp_path, SWEEP)).output["quantiles"] == (0.05, 0.5, 0.95)


@pytest.mark.parametrize("q, cell", [([0.1, 0.5, 0.9], "{p50} [{p10}, {p90}]"),
                                     ([0.25, 0.75], "[{p25}, {p75}]"),
                                     ([0.02, 0.25, 0.5, 0.75, 0.98], "{p50} [{p2}, {p25}, {p75}, {p98}]")])
def test_table_follows_the_quantiles(tmp_path, q, cell):
    path = write(tmp_path, SWEEP + f"quantiles = {q}\n")
    assert load_scenario(path).output["quantiles"] == tuple(q)
    res = run_scenario(path, base_dir=tmp_path, progress=False)
    csv = pd.read_csv(tmp_path / "out/q.csv", index_col=0)
    for region in ("FR", "PL"):
        for col in ("co2e_t", "energy_kwh"):
            x = res.dataset[col].sel(region=region).values
            want = cell.format(**{f"p{round(100 * p)}": scenarios._fmt_number(float(np.quantile(x, p))) for p in q + [0.5]})
            assert csv.loc[region, col] == want
    # wall_days does not depend on the grid draw but on utilisation: sampled too, so also an interval
    assert csv.loc["FR", "wall_days"].count(",") == len([p for p in q if p != 0.5]) - 1


@pytest.mark.parametrize("q, where, why", [
    ([0, 0.5], r"output.quantiles\[0\]", "strictly between 0 and 1"),
    ([0.5, 1], r"output.quantiles\[1\]", "strictly between 0 and 1"),
    ([5, 50, 95], r"output.quantiles\[0\]", "not a percentage"),
    ([0.9, 0.1], r"output.quantiles\[1\]", "sorted and unique"),
    ([0.1, 0.1], r"output.quantiles\[1\]", "sorted and unique"),
    ([], "output.quantiles", "non-empty list of numbers"),
    ('"0.5"', "output.quantiles", "non-empty list of numbers"),
    (["a"], "output.quantiles", "non-empty list of numbers"),
    ("[true]", "output.quantiles", "non-empty list of numbers"),
])
def test_bad_quantiles_name_the_key(tmp_path, q, where, why):
    text = q if isinstance(q, str) else str(q).replace("'", '"')
    with pytest.raises(ScenarioError, match=f"{where}.*{why}"):
        load_scenario(write(tmp_path, SWEEP + f"quantiles = {text}\n"))


def test_quantiles_need_samples(tmp_path):
    text = SWEEP.replace("samples = 64\nseed = 1\n", "") + "quantiles = [0.1, 0.9]\n"
    with pytest.raises(ScenarioError, match="output.quantiles.*needs samples"):
        load_scenario(write(tmp_path, text))


def test_optimize_scenario_takes_risk_and_quantiles(tmp_path):
    text = """
[sweep]
hardware = "H100-SXM5-80GB"
n_chips = 1024
region = ["BE", "DK"]
samples = 16
seed = 0

[optimize]
target_loss = 2.2
risk = "p90"

[output]
netcdf = "out/o.nc"
csv = "out/o.csv"
table = ["objective_risk", "prob_best_region", "co2e_t"]
quantiles = [0.1, 0.9]
"""
    res = run_scenario(write(tmp_path, text), base_dir=tmp_path, progress=False)
    ds = res.dataset
    assert ds.attrs["risk"] == "90th percentile" and "sample" not in ds.n_params.dims
    csv = pd.read_csv(tmp_path / "out/o.csv", index_col=0)
    x = ds.co2e_t.sel(region="DK").values
    fmt = scenarios._fmt_number
    assert csv.loc["DK", "co2e_t"] == f"[{fmt(float(np.quantile(x, 0.1)))}, {fmt(float(np.quantile(x, 0.9)))}]"
    assert float(csv.loc["DK", "objective_risk"]) == pytest.approx(float(np.quantile(x, 0.9)), rel=1e-3)
