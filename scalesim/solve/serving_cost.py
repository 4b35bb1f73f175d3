"""Lifetime serving cost for :func:`scalesim.optimize`: the roofline model of :func:`scalesim.serve`.

For a model of N parameters served ``inference_tokens`` output tokens, the replica size (1 to 64
accelerators) with the least energy per token among those that fit is chosen at each N, at the
batch size given (default :data:`INFERENCE_BATCH_DEFAULT`). The fleet is not busy all the time:
at a busy fraction φ, each busy hour carries (1 − φ)/φ idle hours at idle power, and the
chip-hours that amortise embodied carbon are busy hours / φ. Energy then goes through the same PUE,
grid and water steps, with the same defaults, dtype and overrides, as training.

References
----------
.. [1] vLLM ``EngineArgs.max_num_seqs`` (default 256 concurrent sequences per replica).
.. [2] Shehabi et al. 2024, "2024 United States Data Center Energy Usage Report", LBNL-2001637:
   GPU servers do useful work 75-85 % of the time (as summarised by Uptime Institute, UII update
   362, May 2025).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from scalesim import catalog, steps
from scalesim.chain import simulation
from scalesim.units import J_PER_KWH, S_PER_H, W_PER_KW

#: Concurrent sequences per replica when ``inference_batch_size`` is not given: vLLM's default
#: ``max_num_seqs`` [1]; the running batch is capped by what the KV cache holds.
INFERENCE_BATCH_DEFAULT = 256
#: Replica sizes tried [accelerators].
REPLICA_CHIPS = (1, 2, 4, 8, 16, 32, 64)
#: Busy fraction of a serving fleet (central, low, high) [2].
FLEET_BUSY_FRACTION = catalog.Default("serving_busy_fraction", 0.80, 0.75, 0.85,
                                      "LBNL 2024 US Data Center Energy Usage Report (Shehabi et al.): GPU servers "
                                      "do useful work 75-85 % of the time; via Uptime Institute UII update 362")


class RooflineServing:
    """Serving at each N: (IT energy, chip-hours) from :func:`scalesim.serve`, then the site and grid steps."""

    def __init__(self, ctx, f, hardware, *, batch_size=None, dtype=None):
        self.ctx, self.f, self.hardware = ctx, f, hardware
        #: serving weight dtype: given (optimize's inference_dtype), else the training dtype where serve has it, else bf16
        self.dtype = dtype or (ctx.dtype if ctx.dtype in ("bf16", "fp16", "fp8", "int8") else "bf16")
        self.batch_size = INFERENCE_BATCH_DEFAULT if batch_size is None else batch_size
        self.busy = ctx.defaults.pick(FLEET_BUSY_FRACTION, higher_is_worse=False)
        self.idle_w = steps.idle_power_w(ctx)
        ctx.notes.append(f"serving: the roofline model (scalesim.serve) at batch {self.batch_size}, the replica size "
                         f"with least energy per token, a fleet busy {FLEET_BUSY_FRACTION.value:.0%} of the time")

    def replica(self, n):
        """(energy per token [J], tokens/s per replica, accelerators per replica) at N, least energy per token."""
        from scalesim.chain.serving import serve

        cand = xr.DataArray(np.asarray(REPLICA_CHIPS, dtype=float), dims="_replica")
        r = serve(n_params=n, hardware=self.hardware, n_chips=cand, batch_size=self.batch_size, dtype=self.dtype)
        e = r["energy_per_token_j"].where(r["feasible"])
        best = e.fillna(np.inf).argmin("_replica")
        pick = lambda v: v.isel(_replica=best).where(e.notnull().any("_replica"))  # noqa: E731
        return pick(e), pick(r["tokens_per_s"]), pick(cand.broadcast_like(e))

    def outputs(self, n, tokens):
        """Serving outputs (energy, carbon, embodied, water) of ``tokens`` output tokens at N."""
        e_tok, tps, chips = self.replica(n)
        served = tokens > 0
        busy_h = xr.where(served, tokens / tps / S_PER_H * chips, 0.0)
        chip_h = busy_h / self.busy
        it_kwh = tokens * e_tok / J_PER_KWH + (chip_h - busy_h) * self.idle_w / W_PER_KW
        per_h = xr.where(chip_h > 0, it_kwh / xr.where(chip_h > 0, chip_h, 1.0), 0.0)
        ctx = self.ctx.with_inputs(chip_hours=chip_h)
        out = simulation.outputs(ctx, dict(self.f, it_kwh_per_chip_hour=per_h, mfu=None))
        out["inference_replica_chips"] = chips
        return out
