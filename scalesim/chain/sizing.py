"""How large a result is before it exists: the lazy, dask-chunked route and the materialisation guard.

:func:`scalesim.simulate` estimates the size of its result from the input dims before computing
anything (:func:`estimate_result_bytes`). Above ``lazy_above_bytes`` (default
:data:`LAZY_ABOVE_BYTES`) it chunks its array inputs over their largest dims
(:func:`chunk_sizes`) and returns a lazy, dask-backed Dataset, which it says in
``attrs['lazy']``; reductions such as ``ds.scalesim.optimum`` then stream over the chunks, so a
10^9-cell search runs in bounded memory. Where a result would be materialised (the CLI table, a
scenario's CSV or netCDF, ``ds.scalesim.compute()``), :func:`check_fits` estimates its size first
and raises a ``ValueError`` naming the size and the lazy route when it would not fit in memory.

The thresholds are engineering choices, not published numbers:

- :data:`LAZY_ABOVE_BYTES` = 4 GiB: an eager result of that size needs about twice as much at its
  peak (inputs broadcast, temporaries), which fits the 16 GB of a laptop; anything larger is better
  reduced chunk by chunk.
- :data:`CHUNK_BYTES` = 32 MiB of one float64 output per chunk (4.2 million cells): a reduction
  holds a handful of such arrays per worker thread (the output, a constraint, its mask, the filled
  array), so a few hundred MB per thread, and a 10^9-cell grid is a few hundred tasks, for which
  dask's per-task overhead (about 1 ms) is negligible.
- :data:`MATERIALISE_FRACTION` = 0.5 of the memory available now: what may be materialised in one
  piece, leaving the other half for the copies a writer or a table makes.
"""

from __future__ import annotations

import math
import os

import numpy as np
import xarray as xr

#: Estimated result size above which simulate returns a lazy, dask-chunked Dataset [bytes] (4 GiB).
LAZY_ABOVE_BYTES = 2 ** 32
#: Size of one output's chunk on the lazy route [bytes] (32 MiB = 2^22 float64 cells).
CHUNK_BYTES = 2 ** 25
#: Share of the available memory [-] that one materialised result may take (:func:`check_fits`).
MATERIALISE_FRACTION = 0.5
#: Bytes per value of an output (float64).
BYTES_PER_VALUE = 8
#: simulate's default output set (``outputs=None``; tests/test_scale.py ``test_default_is_the_full_set``;
#: tests/test_sizing.py checks that this list covers what simulate returns by default).
DEFAULT_OUTPUTS = ("flop", "mfu", "chip_hours", "wall_days", "chip_power_w", "it_energy_kwh", "energy_kwh", "pue",
                   "grid_gco2e_per_kwh", "co2e_t", "co2e_market_t", "embodied_co2e_t", "total_co2e_t",
                   "water_onsite_l", "water_offsite_l", "water_l")
#: Outputs that never span the whole grid (per hardware, per region, or on (n_params, n_tokens)).
SMALL_OUTPUTS = ("flop", "loss", "chip_power_w", "pue", "grid_gco2e_per_kwh")
#: The route a user takes for a result too large to materialise (quoted in every error).
LAZY_ROUTE = ("reduce it lazily (ds.scalesim.optimum(...), ds[var].min(...), ds.isel(...) of a part) and compute "
              "only the reduction, or ask fewer outputs=[...], or sweep a smaller grid")


def grid_sizes(ctx):
    """Every dim of the result and its size: the inputs' dims, hardware, regions and Monte Carlo samples."""
    sizes = {}
    for name, value in ctx.inputs.items():
        if isinstance(value, xr.DataArray) and name not in ("intensity_series", "supply_profile"):
            sizes.update(value.sizes)
    sizes.update(ctx.hardware.sizes)
    if ctx.regions is not None:
        sizes.update(ctx.regions.sizes)
    if ctx.defaults.samples:
        sizes["sample"] = int(ctx.defaults.samples)
    return sizes


def estimate_result_bytes(sizes, outputs):
    """Upper bound on a result's size [bytes]: every output asked (``outputs``, names) on the whole grid.

    Outputs in :data:`SMALL_OUTPUTS` are left out; the others are counted at the full size, which
    overestimates those that do not depend on every dim (``chip_hours`` has no region dim).
    """
    big = [o for o in outputs if o not in SMALL_OUTPUTS]
    return math.prod(sizes.values()) * max(len(big), 1) * BYTES_PER_VALUE


def chunk_sizes(sizes, chunkable, *, chunk_bytes=CHUNK_BYTES):
    """Chunk length per dim of ``chunkable`` so that one chunk of the grid is <= chunk_bytes.

    The longest dim is split first, as far as needed (down to one coordinate), then the next
    longest, and so on; dims outside ``chunkable`` stay whole in every chunk. Splitting one dim
    where that is enough keeps the outer products of the chain (FLOPs = 6 N D) at the inputs'
    number of chunks, and each chunk's reduction over the other dims whole. Returns
    ``{dim: length}`` for the dims actually split (lengths >= 1). A grid whose unchunkable dims
    alone exceed ``chunk_bytes`` gets chunks of one coordinate along every chunkable dim.
    """
    target = max(chunk_bytes // BYTES_PER_VALUE, 1)
    chunks = {d: int(sizes[d]) for d in chunkable}
    whole = math.prod(int(n) for d, n in sizes.items() if d not in chunks)
    for d in sorted(chunks, key=lambda d: -chunks[d]):  # a loop over dims, not cells
        if whole * math.prod(chunks.values()) <= target:
            break
        rest = whole * math.prod(c for o, c in chunks.items() if o != d)
        chunks[d] = max(1, min(chunks[d], target // rest))
    return {d: c for d, c in chunks.items() if c < sizes[d]}


def make_lazy(ctx, outputs, *, lazy_above_bytes=None):
    """Chunk ``ctx``'s array inputs (in place) when the result would exceed ``lazy_above_bytes``.

    Returns the text recorded in ``attrs['lazy']`` (the estimate, the threshold and the chunks), or
    None when the result stays in memory. Raises ``ValueError`` when dask is not installed.
    """
    limit = LAZY_ABOVE_BYTES if lazy_above_bytes is None else float(lazy_above_bytes)
    sizes = grid_sizes(ctx)
    need = estimate_result_bytes(sizes, outputs)
    if need <= limit:
        return None
    try:
        import dask.array  # noqa: F401
    except ImportError:
        raise ValueError(f"this result would take about {_gb(need)} ({_cells(sizes)} x {_n_big(outputs)} output(s) x "
                         f"{BYTES_PER_VALUE} bytes), above lazy_above_bytes={limit:.4g}; the lazy, chunked route needs "
                         f"dask: pip install 'scalesim[dask]' (or ask fewer outputs=[...], or sweep a smaller grid)") from None
    arrays = {k: v for k, v in ctx.inputs.items()
              if isinstance(v, xr.DataArray) and k not in ("intensity_series", "supply_profile")}
    chunkable = sorted({d for v in arrays.values() for d in v.dims}, key=lambda d: -sizes[d])
    chunks = chunk_sizes(sizes, chunkable, chunk_bytes=CHUNK_BYTES)
    for name, value in arrays.items():
        ctx.inputs[name] = value.chunk({d: chunks.get(d, -1) for d in value.dims})
    return (f"dask-chunked: estimated {_gb(need)} ({_cells(sizes)} x {_n_big(outputs)} output(s) x {BYTES_PER_VALUE} "
            f"bytes) > lazy_above_bytes={limit:.4g}; chunks {chunks or 'whole'}; nothing is computed until asked: "
            f"{LAZY_ROUTE}")


def available_memory_bytes():
    """Memory available to a new allocation now [bytes].

    Linux: ``MemAvailable`` from ``/proc/meminfo`` (free memory plus reclaimable caches). Elsewhere:
    free physical pages (``os.sysconf``), which undercounts caches and so errs on the safe side.
    """
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def check_fits(obj, *, what, limit_bytes=None):
    """Raise ``ValueError`` if materialising ``obj`` (a Dataset or DataArray) would not fit in memory.

    ``what`` names the action (``'the CSV of scenario x'``). The limit defaults to
    :data:`MATERIALISE_FRACTION` of :func:`available_memory_bytes`. The size is computed from
    shapes and dtypes only: nothing is computed.
    """
    need = int(obj.nbytes)
    limit = MATERIALISE_FRACTION * available_memory_bytes() if limit_bytes is None else float(limit_bytes)
    if need > limit:
        cells = int(np.prod([int(n) for n in obj.sizes.values()])) if obj.sizes else 1
        raise ValueError(f"{what} would materialise about {_gb(need)} ({cells:.3g} cells), more than the "
                         f"{_gb(limit)} that fit ({'the limit given' if limit_bytes is not None else f'{MATERIALISE_FRACTION:g} of the memory available'}): "
                         f"{LAZY_ROUTE}")
    return need


def _gb(nbytes):
    return f"{nbytes / 1e9:.3g} GB"


def _cells(sizes):
    return f"{math.prod(sizes.values()):.3g} cells ({' x '.join(f'{n} {d}' for d, n in sizes.items()) or 'one'})"


def _n_big(outputs):
    return max(len([o for o in outputs if o not in SMALL_OUTPUTS]), 1)


def check_sweep_fits(sweep, *, what, limit_bytes=None):
    """Raise ``ValueError`` before computing if the simulate result of ``sweep`` would not fit in memory.

    ``sweep`` is simulate's keyword arguments as a scenario's ``[sweep]`` gives them (lists become
    dims); the estimate is :func:`estimate_result_bytes` on their lengths (and ``samples``). The
    limit defaults to :data:`MATERIALISE_FRACTION` of :func:`available_memory_bytes`. Returns the
    estimate [bytes].
    """
    sizes = {k: len(v) for k, v in sweep.items()
             if k not in ("outputs", "allow_unusual") and isinstance(v, (list, tuple, np.ndarray))}
    if sweep.get("samples"):
        sizes["sample"] = int(sweep["samples"])
    asked = sweep.get("outputs") or DEFAULT_OUTPUTS
    asked = [asked] if isinstance(asked, str) else list(asked)
    need = estimate_result_bytes(sizes, asked)
    limit = MATERIALISE_FRACTION * available_memory_bytes() if limit_bytes is None else float(limit_bytes)
    if need > limit:
        raise ValueError(f"{what} would take about {_gb(need)} ({_cells(sizes)} x {_n_big(asked)} output(s) x "
                         f"{BYTES_PER_VALUE} bytes), more than the {_gb(limit)} that fit "
                         f"({'the limit given' if limit_bytes is not None else f'{MATERIALISE_FRACTION:g} of the memory available'}); "
                         f"nothing was computed or written. From Python, scalesim.simulate(**sweep) returns it lazy "
                         f"(above lazy_above_bytes): {LAZY_ROUTE}")
    return need
