"""The first minimum of a dask-backed grid over some dims, and every variable there, in one pass.

:func:`scalesim.solve.optimization.grid_optimum` on numpy finds the positions of the first minimum,
then indexes every variable with them. On dask that is two graphs over the same simulate keys:
dask.distributed then sees a key twice, fused differently, and can fail with a ``KeyError``
("Detected different run_spec", dask/dask#9888; it did so intermittently in CI), and the second
graph must run where the chunks live (persisted on a cluster, say). Here each dask-backed
variable is reduced together with the objective and the cell's flat index (its C-order position
over the searched dims): a tree reduction keeps, in each block and then across blocks, the entry
with the smallest (objective, flat index), which is the first minimum the numpy route picks. So one
``compute`` on the current scheduler returns the positions, the feasibility and the values, without
materialising the grid; the numpy-backed variables are then indexed with those positions.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["first_min_and_values"]


def first_min_and_values(part, masked, over):
    """Positions of the first minimum of ``masked`` over ``over``, feasibility, and ``part`` there.

    Parameters
    ----------
    part : xarray.Dataset
        Dask-backed variables, numeric (carried as float64: exact for floats, and for integers
        below 2**53), and numpy-backed ones of any dtype (indexed afterwards).
    masked : xarray.DataArray
        The objective, NaN where inadmissible (dask-backed).
    over : list of str
        Dims searched.

    Returns
    -------
    idx : dict of str to xarray.DataArray
        Position along each dim of ``over``, on the kept dims (int64).
    feasible : xarray.DataArray
        Whether any admissible cell exists, on the kept dims.
    res : xarray.Dataset
        ``part.isel(idx)``, in memory, bitwise equal to it and with its dims in the same order.
    """
    import dask.array as da

    filled = masked.fillna(np.inf)
    sizes = [masked.sizes[d] for d in over]
    strides = np.cumprod([1] + sizes[:0:-1])[::-1]  # C order: the last dim varies fastest
    chunks = dict(zip(masked.dims, masked.chunks))
    # the flat index, lazily and chunked as the objective: a grid-sized array in memory otherwise
    flat = sum(xr.DataArray(da.from_array(np.arange(n, dtype=float) * float(stride), chunks=(chunks[d],)), dims=d)
               for d, n, stride in zip(over, sizes, strides))
    lazy = [name for name, v in part.variables.items() if v.chunks is not None]
    data = {n: xr.DataArray(part.variables[n].data, dims=part[n].dims) for n in lazy}
    # a variable without a searched dim is the same everywhere along them: computed as it is
    reduced = {n: x for n, x in data.items() if not set(x.dims) & set(over)}
    reduced["_feasible"] = masked.notnull().any(over)
    groups = {(): []}  # by the dims beyond the objective's (broadcast together, they would gain each other's)
    for n in (n for n in lazy if n not in reduced):
        groups.setdefault(tuple(d for d in data[n].dims if d not in filled.dims), []).append(n)
    for extra, names in groups.items():
        for i in range(0, max(len(names), 1), BATCH):  # a few variables per pass bound the memory of a block
            picked = _at_first_min(filled, flat, [data[n] for n in names[i:i + BATCH]], over)
            reduced.update(zip(names[i:i + BATCH], picked[1:]))
            if not extra:
                reduced.setdefault("_flat", picked[0])  # on the kept dims only; every pass has it
    reduced = xr.Dataset(reduced).reset_coords(drop=True).compute()  # one graph: the kept dims' size
    keep = [d for d in masked.dims if d not in over]
    first = reduced["_flat"].transpose(*keep).astype(np.int64)
    idx = {d: ((first // int(stride)) % n).assign_coords({k: masked[k] for k in keep if k in masked.coords})
           for d, n, stride in zip(over, sizes, strides)}
    res = part.drop_vars(lazy).isel(idx)
    order = _isel_dims(part, lazy, keep, over)
    for name in lazy:
        var = part.variables[name]
        value = reduced[name].transpose(*order[name]).values.astype(var.dtype)
        res[name] = xr.Variable(order[name], value, var.attrs, var.encoding)
    res = res.set_coords([n for n in lazy if n in part.coords])
    return idx, reduced["_feasible"].transpose(*keep), res[list(part.data_vars)]


def _isel_dims(part, names, keep, over):
    """Dims of each variable of ``names`` after ``part.isel`` by positions on ``keep`` (a size-1 stand-in)."""
    stand_in = xr.Dataset({n: (part[n].dims, np.zeros((1,) * part[n].ndim, bool)) for n in names})
    at = {d: xr.DataArray(np.zeros((1,) * len(keep), int), dims=keep) for d in over}
    got = stand_in.isel({d: i for d, i in at.items() if d in stand_in.dims})
    return {n: got[n].dims for n in names}


#: Variables carried per reduction pass (each block holds the objective, the flat index and these).
BATCH = 6


def _at_first_min(filled, flat, values, over):
    """The flat index and each of ``values`` at the first minimum of ``filled`` over ``over``, lazily.

    Ties go to the smallest ``flat``. Each block is reduced where it lies to one record per kept cell,
    (objective, flat index, values...) at its own first minimum (:func:`_local_pick`), then a tree
    reduction picks across blocks (:func:`_pick`): the objective is read once for all of ``values``.
    """
    import dask.array as da

    o, f, *xs = xr.broadcast(filled, flat, *values)
    chunks = o.data.chunks
    arrays = [da.asarray(a.data).rechunk(chunks) for a in (o, f, *xs)]
    ind = "abcdefghijklmnopqrstuvwxy"[:o.ndim]
    axes = tuple(o.dims.index(d) for d in over)
    local = da.blockwise(_local_pick, ind + "z", *(x for a in arrays for x in (a, ind)), axes=axes,
                         new_axes={"z": len(arrays)}, adjust_chunks={ind[a]: 1 for a in axes}, dtype=float,
                         meta=np.empty((0,) * (o.ndim + 1)))
    picked = da.reduction(local, chunk=_pick, combine=_pick, aggregate=_pick, axis=axes, keepdims=False,
                          dtype=float, concatenate=True, meta=np.empty((0,) * (o.ndim - len(axes) + 1)))
    dims = [d for d in o.dims if d not in over]
    return [xr.DataArray(picked[..., i], dims=dims) for i in range(1, len(arrays))]


def _first_min(o, f):
    """Position along the last axis of the smallest (objective ``o``, flat index ``f``) pair."""
    return np.where(o == o.min(axis=-1, keepdims=True), f, np.inf).argmin(axis=-1)


def _local_pick(o, f, *xs, axes):
    """One block: along ``axes``, the record (objective, flat index, values...) at the first minimum, kept as size 1."""
    rest = [a for a in range(o.ndim) if a not in axes]
    perm, kept = rest + list(axes), [o.shape[a] for a in rest]
    flat = lambda a: np.transpose(np.broadcast_to(a, o.shape), perm).reshape(kept + [-1])  # noqa: E731
    j = _first_min(flat(o), flat(f))[..., None]
    record = np.stack([np.take_along_axis(flat(a), j, axis=-1)[..., 0].astype(float) for a in (o, f, *xs)], axis=-1)
    return record.reshape([1 if a in axes else n for a, n in enumerate(o.shape)] + [record.shape[-1]])


def _pick(x, axis, keepdims):
    """Block reduction: along ``axis``, the record (objective, flat index, values...) with the smallest pair."""
    axis = tuple(axis)
    if x.size == 0:  # dask's meta inference
        return np.empty([n for a, n in enumerate(x.shape) if keepdims or a not in axis], dtype=x.dtype)
    rest = [a for a in range(x.ndim - 1) if a not in axis]
    y = np.transpose(x, rest + list(axis) + [x.ndim - 1])
    y = y.reshape(y.shape[:len(rest)] + (-1, x.shape[-1]))
    best = np.take_along_axis(y, _first_min(y[..., 0], y[..., 1])[..., None, None], axis=-2)[..., 0, :]
    if keepdims:
        shape = list(x.shape)
        for a in axis:
            shape[a] = 1
        best = best.reshape(shape)
    return best
