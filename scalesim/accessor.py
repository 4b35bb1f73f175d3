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

    @property
    def nbytes(self):
        """Size of the result once computed [bytes] (from shapes and dtypes; nothing is computed)."""
        return int(self._ds.nbytes)

    def compute(self, *, limit_bytes=None):
        """The result in memory (``ds.compute()``), after checking that it fits.

        A lazy result (``attrs['lazy']``, :mod:`scalesim.chain.sizing`) is computed only if its size
        is below ``limit_bytes`` (default half the memory available now); otherwise ``ValueError``
        names the size and the lazy route (reduce first, e.g. ``ds.scalesim.optimum(...)``).
        """
        from scalesim.chain.sizing import check_fits

        check_fits(self._ds, what="ds.scalesim.compute()", limit_bytes=limit_bytes)
        return self._ds.compute()

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


    def methods(self, *, bibtex=True):
        """A citable methods paragraph for this exact result, with its references as BibTeX.

        Built from the attrs only: the models that produced each output, every default used (value,
        range, data year and source), the Monte Carlo distributions and seed, and scalesim's version.
        Returns a string: the paragraph, then (``bibtex=True``) the BibTeX entries it cites.
        """
        ds = self._ds
        a = ds.attrs
        version = a.get("scalesim_version", "?")
        models = {v: ds[v].attrs["model"] for v in ds.data_vars if ds[v].attrs.get("model")}
        text = [f"Footprints were simulated with scalesim {version} [scalesim]."]
        if a.get("flop_model"):
            text.append(f"Training compute follows {a['flop_model']} [kaplan2020].")
        for var, model in models.items():
            text.append(f"{var} comes from the model '{model}'.")
        used = self.defaults
        if used:
            parts = []
            for d in used:
                rng = f" (range {_g(d.get('low'))}-{_g(d.get('high'))})" if d.get("low") not in ("", None) else ""
                year = f", {d['year']}" if d.get("year") not in ("", None) else ""
                parts.append(f"{d['name']} = {_g(d.get('value'))}{rng} [{d.get('source', '')}{year}]")
            text.append("Defaults used: " + "; ".join(parts) + ".")
        text.append("Facility energy applies PUE once to IT energy; operational emissions are location-based "
                    "(facility energy x annual grid intensity) [patterson2021]; embodied emissions are amortised "
                    "per accelerator-hour [luccioni2023].")
        if a.get("samples"):
            kinds = ", ".join(json.loads(a.get("distributions", "{}")))
            text.append(f"Uncertainty: {a['samples']} Monte Carlo samples (seed {a.get('seed', 0)}); each default is "
                        f"drawn from a triangular distribution (low, central, high) on its documented range "
                        f"(the structural utilisation from the empirical distribution of its calibration "
                        f"residuals), with one uniform per sample and kind of input shared by every configuration (common random numbers) "
                        f"for: {kinds}. Intervals are quantiles over the samples.")
        if a.get("method") in ("sobol", "morris"):
            cite = "saltelli2010" if a["method"] == "sobol" else "morris1991"
            text.append(f"Sensitivity: {a.get('design', a['method'])}, n = {a.get('n')}, {a.get('n_evaluations')} "
                        f"evaluations, seed {a.get('seed')} [{cite}; herman2017].")
        paragraph = " ".join(text)
        if not bibtex:
            return paragraph
        keys = ["scalesim", "kaplan2020", "patterson2021", "luccioni2023"]
        keys += ["saltelli2010", "herman2017"] if a.get("method") == "sobol" else []
        keys += ["morris1991", "herman2017"] if a.get("method") == "morris" else []
        return paragraph + "\n\n" + "\n\n".join(BIBTEX[k].replace("{version}", version) for k in keys) + "\n"


def _g(v):
    return f"{v:.4g}" if isinstance(v, (int, float)) else str(v)


#: BibTeX of the works a methods paragraph cites.
BIBTEX = {
    "scalesim": "@software{scalesim,\n  title = {scalesim: what-if simulator for the footprint of training and serving "
                "large language models},\n  author = {{scalesim developers}},\n  version = {{version}},\n  year = {2026}\n}",
    "kaplan2020": "@article{kaplan2020,\n  title = {Scaling Laws for Neural Language Models},\n  author = {Kaplan, Jared "
                  "and others},\n  journal = {arXiv preprint arXiv:2001.08361},\n  year = {2020}\n}",
    "patterson2021": "@article{patterson2021,\n  title = {Carbon Emissions and Large Neural Network Training},\n  "
                     "author = {Patterson, David and others},\n  journal = {arXiv preprint arXiv:2104.10350},\n  year = {2021}\n}",
    "luccioni2023": "@article{luccioni2023,\n  title = {Estimating the Carbon Footprint of {BLOOM}, a 176{B} Parameter "
                    "Language Model},\n  author = {Luccioni, Alexandra Sasha and Viguier, Sylvain and Ligozat, Anne-Laure},"
                    "\n  journal = {Journal of Machine Learning Research},\n  volume = {24},\n  number = {253},\n  "
                    "year = {2023}\n}",
    "saltelli2010": "@article{saltelli2010,\n  title = {Variance based sensitivity analysis of model output. Design and "
                    "estimator for the total sensitivity index},\n  author = {Saltelli, Andrea and others},\n  journal = "
                    "{Computer Physics Communications},\n  volume = {181},\n  pages = {259--270},\n  year = {2010},\n  "
                    "doi = {10.1016/j.cpc.2009.09.018}\n}",
    "morris1991": "@article{morris1991,\n  title = {Factorial Sampling Plans for Preliminary Computational Experiments},"
                  "\n  author = {Morris, Max D.},\n  journal = {Technometrics},\n  volume = {33},\n  number = {2},\n  "
                  "pages = {161--174},\n  year = {1991},\n  doi = {10.1080/00401706.1991.10484804}\n}",
    "herman2017": "@article{herman2017,\n  title = {{SALib}: An open-source Python library for Sensitivity Analysis},\n  "
                  "author = {Herman, Jon and Usher, Will},\n  journal = {Journal of Open Source Software},\n  volume = {2},"
                  "\n  number = {9},\n  pages = {97},\n  year = {2017},\n  doi = {10.21105/joss.00097}\n}",
}


class _Uncached:
    """``ds.scalesim``: a new accessor on each access, not cached on the Dataset.

    xarray's ``register_dataset_accessor`` caches the accessor on the Dataset, and the accessor holds
    the Dataset: a reference cycle that keeps a large result in memory after ``del`` until the
    garbage collector runs. Built on access, the accessor is freed with the expression using it.
    """

    def __get__(self, obj, cls):
        return ScalesimAccessor if obj is None else ScalesimAccessor(obj)


xr.Dataset.scalesim = _Uncached()
