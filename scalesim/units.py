"""Unit conversion constants and the package's pint unit registry.

Every conversion factor used in scalesim lives here, named for what it converts, so that
model code never carries a bare literal such as ``3.6e6``. Output variables carry ``units``
attributes written as strings that :func:`registry` (pint) can parse.
"""

from __future__ import annotations

import functools

#: Joules in one kilowatt-hour [J/kWh] (SI definition: 1 kWh = 1000 W x 3600 s).
J_PER_KWH = 3.6e6
#: Seconds per hour [s/h].
S_PER_H = 3600.0
#: Hours per day [h/day].
H_PER_DAY = 24.0
#: Hours per (Julian) year [h/yr] = 365.25 x 24.
H_PER_YEAR = 8766.0
#: Watts per kilowatt [W/kW].
W_PER_KW = 1e3
#: Grams per metric tonne [g/t].
G_PER_T = 1e6
#: Kilograms per metric tonne [kg/t].
KG_PER_T = 1e3
#: FLOP/s per TFLOP/s.
FLOP_PER_TFLOP = 1e12
#: Kilowatt-hours per megawatt-hour [kWh/MWh].
KWH_PER_MWH = 1e3
#: Litres per US liquid gallon [L/gal] (exact: 231 cubic inches, NIST Handbook 44 Appendix C).
L_PER_US_GAL = 3.785411784
#: Litres per cubic metre [L/m^3].
L_PER_M3 = 1e3
#: Joules per gigajoule [J/GJ].
J_PER_GJ = 1e9
#: One petaFLOP/s-day in FLOP (Kaplan et al. 2020, Sec. 1.3: 1e15 x 86 400 s).
FLOP_PER_PF_DAY = 1e15 * S_PER_H * H_PER_DAY

# Unit strings used in attrs (all parse with :func:`registry`).
UNIT_FLOP = "FLOP"
UNIT_HOUR = "h"
UNIT_DAY = "day"
UNIT_KWH = "kWh"
UNIT_TONNE = "t"
UNIT_LITRE = "L"
UNIT_WATT = "W"
UNIT_GCO2E_PER_KWH = "g/kWh"
UNIT_L_PER_KWH = "L/kWh"
UNIT_DIMENSIONLESS = "1"
UNIT_NATS = "1"  # loss in nats per token is dimensionless


@functools.cache
def registry():
    """Return scalesim's pint ``UnitRegistry`` (pint is an optional test/extra dependency).

    It defines ``FLOP`` as a base count unit so that ``FLOP``, ``FLOP/s`` and ``FLOP/J`` parse, and
    is built with ``force_ndarray_like=True``, which pint-xarray requires, so a whole result
    quantifies: ``ds.pint.quantify(unit_registry=scalesim.units.registry())``.
    """
    import pint

    ureg = pint.UnitRegistry(force_ndarray_like=True)
    ureg.define("FLOP = [flop_count]")
    return ureg
