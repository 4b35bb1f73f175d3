"""The ``scalesim`` command line: thin parse/action pairs over the library (no model logic).

Exit codes: 0 success; 2 bad input (an invalid argument, id or scenario file, or a path that
cannot be written: one line on stderr); 130 interrupted (Ctrl-C); 1 internal error (a short
message; the traceback only with ``--debug``). A closed pipe (``| head``) ends quietly.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EPILOG = """\
examples:
  scalesim run scenarios/quickstart.toml --force
  scalesim run scenarios/ --summary results/summary.md
  scalesim simulate --n-params 70e9 --n-tokens 2e12 --hardware h100,a100-sxm4-80gb \\
      --n-chips 2048 --region FR --region US
  scalesim simulate --hardware V100 --chip-hours 3.552e6 --chip-power-w 330 --pue 1.1 \\
      --grid-gco2e-per-kwh 429                # accounting mode (GPT-3, Patterson et al. 2021)
  scalesim optimize --target-loss 2.1 --hardware H100-SXM5-80GB --n-chips 2048 --region FR,US
  scalesim validate --mode accounting --figure figures/validation
  scalesim figures --out figures
  scalesim catalog regions --search europe
  scalesim serve --n-params 70e9 --hardware h100 --n-chips 4 --batch-size 8,64,512
  scalesim schedule --region DE --job-days 30 --slack 1.0
"""

TABLE_VARS = ("flop", "mfu", "loss", "n_params", "n_tokens", "chip_hours", "wall_days", "energy_kwh", "co2e_t",
              "co2e_market_t", "cfe_hourly_fraction", "total_co2e_t", "water_l", "project_co2e_t", "project_water_l",
              "feasible")


class _Append(argparse.Action):
    """Repeatable flag that also splits comma lists: ``--region FR,DE --region US``."""

    def __call__(self, parser, namespace, values, option_string=None):
        items = list(getattr(namespace, self.dest) or [])
        items += [v.strip() for v in values.split(",") if v.strip()]
        setattr(namespace, self.dest, items)


def _add_flags(p, table, *, skip=(), defaults=None):
    """One flag per input of a :mod:`scalesim.inputs` table (help, units and list form from the table)."""
    defaults = defaults or {}
    for spec in table.values():
        if spec.name in skip:
            continue
        units = f" [{spec.units}]" if spec.units not in ("", "1") else ""
        allowed = f" (one of {', '.join(spec.check)})" if isinstance(spec.check, tuple) else ""
        kw = dict(dest=spec.name, help=f"{spec.help}{units}{allowed}")
        if spec.name in defaults:
            value = defaults[spec.name]
            kw.update(default=[value] if spec.many is True else value, help=kw["help"] + f" (default {value})")
        if spec.many == "pair":
            p.add_argument(spec.flag, nargs=2, metavar=("LO", "HI"), **kw)
        elif spec.many:
            p.add_argument(spec.flag, action=_Append, metavar="V[,V...]", **{**kw, "help": kw["help"] + "; repeatable or a comma list"})
        else:
            p.add_argument(spec.flag, metavar="V", **kw)


def _convert(spec, raw):
    """A flag's text -> the value the API takes (numbers; names for steps and labels)."""
    from scalesim import inputs

    if spec.kind in (inputs.LABEL, inputs.STRING, inputs.CHOICE, inputs.SERIES):
        return raw
    try:
        return float(raw)
    except ValueError:
        if spec.kind == inputs.STEP:
            return raw  # a registered model's or an operator's name: checked by the library
        raise ValueError(f"{spec.flag}: expected a number, got {raw!r}") from None


def _kwargs(args, table, *, skip=()):
    """The API keyword arguments given on the command line for ``table``."""
    kw = {}
    for spec in table.values():
        raw = getattr(args, spec.name, None)
        if spec.name in skip or raw is None:
            continue
        if spec.many == "pair":
            kw[spec.name] = tuple(_convert(spec, r) for r in raw)
        elif spec.many:
            vals = [_convert(spec, r) for r in raw]
            kw[spec.name] = vals[0] if len(vals) == 1 else vals
        else:
            kw[spec.name] = _convert(spec, raw)
    return kw


def _emit(ds, fmt, out=None):
    from scalesim.interface import scenarios

    from scalesim.chain.sizing import check_fits

    out = out or sys.stdout
    cols = [v for v in TABLE_VARS if v in ds.data_vars]
    cols += [v for v in ds.data_vars if v == "objective_risk" or v.startswith("prob_best_")]  # optimize --risk
    check_fits(ds[cols], what=f"the {fmt} output")  # a lazy result too large to print: say so before computing
    frame = scenarios.summary_frame(ds, cols) if fmt == "table" else _frame(ds, cols)
    if fmt == "table":
        out.write(_format_table(frame, units=_units_of(ds)) + "\n")
    elif fmt == "csv":
        frame.to_csv(out)
    else:
        out.write(frame.reset_index().to_json(orient="records", indent=1) + "\n")


def _frame(ds, cols):
    import pandas as pd
    import xarray as xr

    sub = ds[cols].reset_coords(drop=True)
    if "sample" in sub.dims:  # Monte Carlo: <c>_p05, <c>_median, <c>_p95 columns instead of every sample
        parts = {}
        for c in cols:
            if "sample" not in sub[c].dims:  # not drawn (an optimum's N, a probability): as is
                parts[c] = sub[c]
            elif sub[c].dtype.kind == "b":  # feasible: in every draw
                parts[c] = sub[c].all("sample")
            else:
                q = sub[c].quantile([0.05, 0.5, 0.95], dim="sample")
                parts.update({f"{c}_{name}": q.sel(quantile=p, drop=True)
                              for p, name in ((0.05, "p05"), (0.5, "median"), (0.95, "p95"))})
        sub = xr.Dataset(parts)
        cols = list(parts)
    if not sub.dims:
        return pd.DataFrame({c: [sub[c].item()] for c in cols}).set_index(cols[0])
    return sub.to_dataframe()[cols]


# ----------------------------------------------------------------------------- text output
def _fmt(v):
    import numpy as np

    if isinstance(v, (float, np.floating)):
        if not np.isfinite(v):
            return str(float(v))  # 'nan', 'inf' or '-inf', never an infinity shown as nan
        a = abs(v)
        return f"{v:.4g}" if a == 0 or 1e-3 <= a < 1e6 else f"{v:.3e}"
    return str(v)


def _format_table(frame, *, units=None):
    """Fixed-width text table of a summary frame (index levels first); ``units`` labels headers."""
    df = frame.reset_index() if (frame.index.name is not None or frame.index.nlevels > 1) else frame
    units = units or {}
    heads = [f"{c} [{units[c]}]" if units.get(c) not in (None, "", "1") else str(c) for c in df.columns]
    rows = [[_fmt(v) for v in r] for r in df.itertuples(index=False)]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(heads)]
    numeric = [df[c].dtype.kind in "iuf" for c in df.columns]
    def line(cells):
        return "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric)).rstrip()
    return "\n".join([line(heads), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _units_of(ds):
    """``{variable: units}`` for a result, for :func:`_format_table` headers."""
    return {k: ds[k].attrs.get("units", "") for k in ds.data_vars}


def _headline(result):
    """One dict of headline numbers for a run summary (min/median/max of co2e_t and energy)."""
    ds = result.dataset
    row = {"scenario": result.scenario.name, "skipped": result.skipped,
           "n_configurations": int(ds["co2e_t"].size) if "co2e_t" in ds else 0}
    for v in ("co2e_t", "energy_kwh", "wall_days"):
        if v in ds:
            da = ds[v]
            row.update({f"{v}_min": float(da.min()), f"{v}_median": float(da.median()), f"{v}_max": float(da.max())})
    row["netcdf"] = str(result.files[0])
    return row


# ----------------------------------------------------------------------------- actions
def cmd_run(args):
    from scalesim.interface import scenarios

    files = []
    for p in args.paths:
        p = Path(p)
        if p.is_dir():
            found = sorted(p.glob("*.toml"))
            if not found:
                raise scenarios.ScenarioError(f"{p}: no *.toml scenario files in this directory")
            files += found
        else:
            files.append(p)
    loaded = [scenarios.load_scenario(f) for f in files]  # validate all before running any
    if args.summary:
        scenarios.check_writable(Path(args.summary), "--summary")
    rows = []
    for sc in loaded:
        res = scenarios.run_scenario(sc, force=args.force)
        state = "up to date (same scenario_sha256; --force to recompute)" if res.skipped else "written"
        print(f"== {sc.name}: {sc.description}".rstrip(": "))
        frame = scenarios.summary_frame(res.dataset, sc.output["table"],
                                        quantiles=sc.output.get("quantiles", scenarios.DEFAULT_QUANTILES))
        print(_format_table(frame, units=_units_of(res.dataset)))
        print(f"-> {', '.join(str(f) for f in res.files)} ({state})\n")
        rows.append(_headline(res))
    if args.summary:
        _write_run_summary(rows, Path(args.summary))
        print(f"run summary -> {args.summary}")
    return 0


def _write_run_summary(rows, path):
    import pandas as pd

    from scalesim.interface.scenarios import _atomic_write

    df = pd.DataFrame(rows).set_index("scenario")
    if path.suffix == ".csv":
        _atomic_write(path, lambda tmp: df.to_csv(tmp))
    else:
        text = _markdown(df)
        _atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _markdown(df):
    d = df.reset_index()
    lines = ["| " + " | ".join(d.columns) + " |", "|" + "---|" * len(d.columns)]
    lines += ["| " + " | ".join(_fmt(v) for v in r) + " |" for r in d.itertuples(index=False)]
    return "# scalesim run summary\n\n" + "\n".join(lines) + "\n"


def cmd_simulate(args):
    from scalesim import inputs
    from scalesim.chain.simulation import simulate

    _emit(simulate(**_kwargs(args, inputs.SIMULATE)), args.format)
    return 0


def cmd_optimize(args):
    from scalesim import inputs
    from scalesim.solve.optimization import optimize

    _emit(optimize(**_kwargs(args, inputs.optimize_inputs())), args.format)
    return 0


def cmd_validate(args):
    import importlib

    v = importlib.import_module("scalesim.validation")  # the package attribute is the function
    ds = v.validate(mode=args.mode, mfu_model=args.mfu_model, power_basis=args.power_basis,
                    exclude_compute_caveats=args.exclude_compute_caveats)
    print(v.format_validation_table(ds))
    print()
    print(v.format_validation_summary(ds))
    if args.json:
        summary = {"all_compared": v.validation_summary(ds, n_boot=2000)}
        if args.mode == "prediction":
            summary["n_d_chip_hours"] = v.validation_summary(ds, mask=v.criterion_mask(ds), n_boot=2000)
        print(json.dumps(summary, indent=1, default=str))
    if args.figure:
        from scalesim.interface.plotting import plot_validation_panels, save_figure

        paths = save_figure(plot_validation_panels(ds), Path(args.figure).with_suffix(""), formats=args.formats)
        print("figure ->", ", ".join(map(str, paths)))
    return 0


def cmd_figures(args):
    from scalesim.interface.plotting import make_all_figures

    written = make_all_figures(args.out, formats=args.formats, only=args.only)
    for name, paths in written.items():
        print(f"{name}: {paths if isinstance(paths, str) else ', '.join(map(str, paths))}")
    return 0


def cmd_catalog(args):
    from scalesim import catalog

    if args.what == "hardware":
        rows = []
        for h in map(catalog.get_hardware, catalog.hardware_ids()):
            bf16 = h.peak_tflop_per_s.get("bf16") or h.peak_tflop_per_s.get("fp16")
            rows.append((h.hardware_id, h.family, str(h.launch_year), _n(h.tdp_w), _n(bf16), _n(h.memory_gib), h.name))
        head = ("hardware_id", "family", "year", "tdp_w", "peak_bf16_tflop_per_s", "memory_gib", "name")
    elif args.what == "regions":
        rows = [(r.region_id, r.kind, r.name, _n(r.gco2e_per_kwh), r.year, r.profile_zone or "-")
                for r in map(catalog.get_region, catalog.region_ids())]
        head = ("region_id", "kind", "name", "gco2e_per_kwh", "year", "diurnal_profile")
    else:
        from scalesim.laws import LAWS

        rows = [(k, _describe_law(v)) for k, v in LAWS.items()]
        head = ("law", "description")
    if args.search:  # case- and accent-insensitive: 'quebec' finds Québec
        s = catalog._fold(args.search)
        rows = [r for r in rows if any(s in catalog._fold(c) for c in r)]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip())
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    if not rows:
        print(f"(no {args.what} match {args.search!r})", file=sys.stderr)
    return 0


def _n(v):
    return "" if v is None else f"{v:g}"


def _describe_law(v):
    for attr in ("description", "reference", "source", "name"):
        x = v.get(attr) if isinstance(v, dict) else getattr(v, attr, None)
        if x:
            return str(x)[:100]
    return str(v)[:100]


# ----------------------------------------------------------------------------- parser
def build_parser():
    """The argparse parser (exposed for documentation and tests)."""
    from scalesim import __version__, inputs

    p = argparse.ArgumentParser(prog="scalesim", description="What-if simulator for the FLOPs, time, energy, "
                                "carbon and water of training large language models.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"scalesim {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    r = sub.add_parser("run", help="run scenario files (or directories of them)")
    r.add_argument("paths", nargs="+", metavar="FILE_OR_DIR")
    r.add_argument("--force", action="store_true", help="recompute even if outputs are up to date")
    r.add_argument("--summary", metavar="PATH", help="write headline numbers per scenario (.md or .csv)")
    r.set_defaults(func=cmd_run)

    fmt = dict(choices=("table", "csv", "json"), default="table", help="output format (default: table)")
    s = sub.add_parser("simulate", help="simulate configurations (lists become dimensions)")
    _add_flags(s, inputs.SIMULATE)
    s.add_argument("--format", **fmt)
    s.set_defaults(func=cmd_simulate)

    o = sub.add_parser("optimize", help="emission-optimal configuration for a goal")
    _add_flags(o, inputs.optimize_inputs(), defaults={"objective": "co2e_t", "law": "besiroglu2024"})
    o.add_argument("--format", **fmt)
    o.set_defaults(func=cmd_optimize)

    formats = dict(nargs="+", default=["png", "pdf"], choices=("png", "pdf", "svg"))
    v = sub.add_parser("validate", help="compare with published runs")
    v.add_argument("--mode", choices=("accounting", "prediction"), default="accounting")
    v.add_argument("--figure", metavar="PATH", help="also save the validation figure (stem; PNG + PDF)")
    v.add_argument("--mfu-model", default="structural",
                   choices=("structural", "hierarchical", "epoch", "runs", "runs_by_generation"),
                   help="prediction mode: utilisation model (leave-one-out refits for all but 'epoch'; "
                        "default: structural, scalesim's default: throughput model x goodput)")
    v.add_argument("--json", action="store_true", help="also print the summary as JSON (with bootstrap intervals)")
    v.add_argument("--power-basis", default="row", choices=("row", "model"),
                   help="prediction mode: each run's own power convention (TDP where the source used it) or the power model")
    v.add_argument("--exclude-compute-caveats", action="store_true",
                   help="prediction mode: skip runs whose notes say 6ND is not a point estimate (lower-bound tokens, distillation)")
    v.add_argument("--formats", **formats)
    v.set_defaults(func=cmd_validate)

    f = sub.add_parser("figures", help="regenerate all paper figures")
    f.add_argument("--out", default="figures", help="output directory (default: figures)")
    f.add_argument("--only", nargs="+", metavar="NAME", help="only these figures")
    f.add_argument("--formats", **formats)
    f.set_defaults(func=cmd_figures)

    c = sub.add_parser("catalog", help="list hardware, regions or scaling laws")
    c.add_argument("what", choices=("hardware", "regions", "laws"))
    c.add_argument("--search", metavar="TEXT", help="case-insensitive filter on any column")
    c.set_defaults(func=cmd_catalog)

    from scalesim.interface import schedule_cli, serve_cli

    serve_cli.add_parser(sub)
    schedule_cli.add_parser(sub)
    p.allow_abbrev = False  # '--n-chip 8' must not silently mean '--n-chips 8'
    for verb in sub.choices.values():
        verb.allow_abbrev = False
    return p


def _only_version(argv):
    """True for ``scalesim --version`` (with ``--debug`` or not): what argparse would print and exit on."""
    return "--version" in argv and set(argv) <= {"--version", "--debug"}


def main(argv=None):
    """Entry point of the ``scalesim`` command; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if _only_version(argv):  # answered before the parser is built, which imports numpy (0.2 s)
        from scalesim import __version__

        print(f"scalesim {__version__}")
        return 0
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help/--version (0) or a usage error (2)
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    if args.command in ("figures", "validate", "schedule"):
        import os

        os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:  # `scalesim catalog regions | head`: the reader has gone; nothing to report
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a tool ended by a closed pipe
    except ValueError as exc:  # includes ScenarioError: bad input
        print(f"scalesim {args.command}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path that cannot be read or written: the user's to fix
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"scalesim {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("scalesim: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            import traceback

            traceback.print_exc()
        print(f"scalesim {args.command}: internal error: {type(exc).__name__}: {exc}"
              + ("" if args.debug else " (rerun with --debug for the traceback)"), file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
