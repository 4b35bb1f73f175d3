"""optimize for laws without a closed iso-loss curve (kaplan2020, muennighoff2023 + unique_tokens), issue 13.

The bisection for D(N) runs on numpy arrays with the models' unchecked kernels, and the search
over N evaluates once per golden-section step; these tests check that the answers are those of
the previous solver (to its tolerance) and a brute-force search. Timings are in the README
(issue 13 section), not here.
"""

import numpy as np
import pytest
import xarray as xr

import scalesim as ss
from scalesim import laws
from scalesim.models.scaling_laws import golden_section_minimize
from scalesim.solve import optimization as opt

FIXED = dict(target_loss=2.3, hardware="h100", region="us", mfu=0.4, n_chips=1024)
#: (N, D) of the solver before this change (xarray bisection, two evaluations per golden-section
#: step; commit df1ffb0) for FIXED: co2e is proportional to 6ND here, so the optimum is the
#: minimum-FLOP point of the iso-loss curve, which does not depend on region or hardware data.
BEFORE = {"kaplan2020": (2354440797.662297, 13043411475.221733),
          "muennighoff2023": (3925760007.385186, 76996038722.99348)}
EXTRA = {"kaplan2020": {}, "muennighoff2023": dict(unique_tokens=1e11)}


@pytest.mark.parametrize("law", sorted(BEFORE))
def test_the_optimum_is_the_previous_solvers(law):
    r = ss.optimize(law=law, **FIXED, **EXTRA[law])
    n, d = BEFORE[law]
    # the golden section locates x to ~sqrt(eps) relative where the objective is flat; 1e-6 is 100x that
    assert float(r.n_params) == pytest.approx(n, rel=1e-6)
    assert float(r.n_tokens) == pytest.approx(d, rel=1e-6)
    assert float(r.loss) == pytest.approx(2.3, rel=1e-9)


@pytest.mark.parametrize("law", sorted(BEFORE))
def test_the_optimum_beats_a_brute_force_search_on_the_iso_loss_curve(law):
    r = ss.optimize(law=law, **FIXED, **EXTRA[law])
    n = np.geomspace(float(r.n_params) / 3, float(r.n_params) * 3, 401)
    loss = lambda nn, dd: laws.loss(nn, dd, law=law, **EXTRA[law])  # noqa: E731
    d = opt._tokens_by_bisection(loss, xr.DataArray(n, dims="cand"), xr.DataArray(2.3)).values
    flop = 6 * n * d
    assert abs(np.log(float(r.n_params) / n[np.argmin(flop)])) <= 2 * np.log(n[1] / n[0])
    assert float(r.flop) <= flop.min() * (1 + 1e-9)


@pytest.mark.parametrize("law,unique", [("kaplan2020", None), ("muennighoff2023", 1e11), ("muennighoff2023", None),
                                        ("besiroglu2024", None)])
def test_the_unchecked_kernel_is_the_law_bit_for_bit(law, unique):
    n, d = np.geomspace(1e7, 1e13, 50)[:, None], np.geomspace(1e8, 1e15, 60)[None, :]
    fast = opt._unchecked_loss(laws.get_law(law), unique)
    np.testing.assert_array_equal(fast(n, d), laws.loss(n, d, law=law, unique_tokens=unique))


def _bisection_on_dataarrays(loss, n, target, *, lo=1.0, hi=1e20, n_iter=64):
    """The previous implementation, every step on DataArrays."""
    left = xr.zeros_like(n * target) + np.log(lo)
    right = left * 0 + np.log(hi)
    for _ in range(n_iter):
        mid = 0.5 * (left + right)
        above = loss(n, np.exp(mid)) > target
        left = left + (mid - left) * above
        right = right + (mid - right) * np.logical_not(above)
    d = np.exp(right)
    return xr.where(loss(n, d) <= target * (1 + 1e-9), d, np.inf)


@pytest.mark.parametrize("law,unique", [("kaplan2020", None), ("muennighoff2023", 1e11)])
def test_the_numpy_bisection_equals_the_dataarray_one_exactly(law, unique):
    loss = lambda nn, dd: laws.loss(nn, dd, law=law, unique_tokens=unique)  # noqa: E731
    n = xr.DataArray(np.geomspace(1e8, 1e12, 7), dims="n_params")
    target = xr.DataArray([2.2, 2.4, 1.0], dims="target_loss")  # 1.0: unreachable for small N -> inf
    want = _bisection_on_dataarrays(loss, n, target)
    got = opt._tokens_by_bisection(loss, n, target, kernel=opt._unchecked_loss(laws.get_law(law), unique))
    xr.testing.assert_identical(got, want.transpose(*got.dims))
    assert np.isinf(got.values).any() and np.isfinite(got.values).any()


def test_golden_section_reusing_agrees_with_two_evaluations_per_step_and_evaluates_once_per_step():
    calls = []

    def f(x):
        calls.append(1)
        return (np.log(x) - np.log(xr.DataArray([3e9, 7e10, 5e11], dims="k"))) ** 2 + 1.0

    lo, hi = xr.DataArray(1e8), xr.DataArray(1e13)
    got = opt._golden_section_reusing(f, lo, hi, n_iter=64)
    assert len(calls) == 65
    want, _ = golden_section_minimize(f, lo, hi, n_iter=64, log_space=True)
    np.testing.assert_allclose(got.values, want.values, rtol=1e-7)
    np.testing.assert_allclose(got.values, [3e9, 7e10, 5e11], rtol=1e-7)
