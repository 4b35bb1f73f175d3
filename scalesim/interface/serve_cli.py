"""The ``scalesim serve`` verb: latency, throughput, power and energy per token of a serving replica.

    scalesim serve --n-params 70e9 --hardware h100 --n-chips 4 --batch-size 8,64,512

Thin parse -> :func:`scalesim.serve` -> print. The flags are derived from
:data:`scalesim.inputs.SERVE` (one flag per input; list inputs take comma lists and become
dimensions). ``add_parser(subparsers)`` adds the verb to the main parser
(``scalesim.interface.cli.build_parser``); ``cmd_serve(args)`` runs it.
"""

from __future__ import annotations

import sys

#: Columns printed, in order (those present in the result).
SHOWN = ("feasible", "batch_size_running", "inter_token_latency_ms", "prefill_time_s", "tokens_per_s", "chip_power_w",
         "gpu_energy_per_token_j", "energy_per_token_j", "energy_kwh", "co2e_t", "water_l")


def add_parser(subparsers):
    """Add the ``serve`` verb to an argparse ``subparsers`` object; returns its parser."""
    from scalesim import inputs
    from scalesim.interface.cli import _add_flags

    p = subparsers.add_parser("serve", help="roofline latency, throughput and energy per token of LLM serving",
                              description="Decode and prefill of one replica (n_chips accelerators, tensor-parallel "
                              "by default) on the roofline of HBM bandwidth and dense peak, with power rising "
                              "between idle and TDP; energy, carbon and water of --served-tokens output tokens.")
    _add_flags(p, inputs.SERVE)
    p.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format (default: table)")
    p.set_defaults(func=cmd_serve)
    return p


def cmd_serve(args, out=None):
    """Run the ``serve`` verb; prints one row per configuration; returns 0."""
    from scalesim import inputs
    from scalesim.chain.serving import serve
    from scalesim.interface.cli import _kwargs

    out = out or sys.stdout
    kw = _kwargs(args, inputs.SERVE)
    if "n_params" not in kw or "hardware" not in kw:
        raise ValueError("scalesim serve needs --n-params and --hardware (e.g. --n-params 70e9 --hardware h100)")
    ds = serve(**kw)
    cols = [c for c in SHOWN if c in ds.data_vars]
    frame = ds[cols].to_dataframe() if ds.sizes else ds[cols].expand_dims("config").to_dataframe()
    frame = frame[cols]
    if args.format == "csv":
        frame.to_csv(out)
    elif args.format == "json":
        out.write(frame.reset_index().to_json(orient="records", indent=1) + "\n")
    else:
        units = {c: ds[c].attrs.get("units", "") for c in cols}
        frame.columns = [f"{c} [{units[c]}]" if units[c] not in ("", "1") else c for c in cols]
        out.write(frame.to_string(float_format=lambda v: f"{v:.4g}") + "\n")
    return 0
