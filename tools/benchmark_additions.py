"""Build scalesim/data/training_throughput_benchmarks.csv (the fitted table) and training_throughput_holdout.csv.

Developer tool only (the installed package never reads the reference folder). The fitted table is the reference
table with one correction of fact: its 25.09 Megatron-Bridge rows, which it leaves without a dtype, are FP8 (the
reasons below; each corrected row says so in ``precision_label`` and ``derived_fields``). The Blackwell hold-out,
never fitted, is every DGX-B200,
DGX-B300, DGX-GB200 and DGX-GB300 row of the source the reference table's Megatron-Bridge H100 rows come from,
NVIDIA-NeMo/Megatron-Bridge ``docs/performance-summary-archive.md`` (stored commit 4da7335ff4: the 26.02, 25.11
and 25.09 containers); the reference table keeps only that page's DGX-H100 rows. The values are transcribed in
:data:`TABLE`; the architecture columns are copied from the reference table's H100 rows of the same model; the
parenthesised values (the other FP8 quantisation granularity, MXFP8 32x32 blocks per the page's footnote) are
rows of their own, as the reference table keeps them. The 25.09 tables have no precision column: their rows
are FP8, because the page's footnote calls their parenthesised values other quantisation granularities (an
FP8 property) and the 25.11 table lists the same configurations as FP8 at 1-3 % of the same throughput
(DGX-H100 Llama 3 8B 14451 vs 14079 tokens/s per GPU, 70B 1602 vs 1619, 405B 292 vs 302).

    python tools/benchmark_additions.py ../shared/reference
"""

from __future__ import annotations

import sys
from pathlib import Path

from build_data import read, write  # tools/ is the script's directory

SOURCE = "NVIDIA-NeMo/Megatron-Bridge:docs/performance-summary-archive.md"
COMMIT = "4da7335ff4"
ADDED = "scalesim hold-out row (not in ../shared/reference; never fitted)"
FP8_2509 = ("FP8 (scalesim: inferred; the 25.09 table has no precision column, its footnote calls the parenthesised "
            "values other quantisation granularities, and the 25.11 table lists the same configurations as FP8 at "
            "1-3 % of the same throughput: tools/benchmark_additions.py)")
#: precision column -> (dtype, precision_label)
PRECISION = {"FP8": ("fp8", "FP8"), "FP8-CS": ("fp8", "FP8-CS"), "FP8-MX": ("fp8", "FP8-MX"),
             "MXFP8": ("fp8", "MXFP8"), "NVFP4": ("nvfp4", "NVFP4"), "BF16": ("bf16", "BF16"),
             "FP8?": ("fp8", FP8_2509)}
#: container, system, model, #GPUs, precision, GBS, MBS, sequence length, FSDP, TP, PP, CP, VP, EP, GA,
#: tokens/s/GPU, model TFLOP/s/GPU, p(rimary) or a(lternate, parenthesised) value; '-' = n/a or no column
TABLE = """
26.02 GB300 LLAMA3_70B 64 NVFP4 256 1 8192 0 1 4 1 5 - - 6798 3056 p
26.02 GB200 LLAMA3_70B 64 NVFP4 256 1 8192 0 2 4 1 5 - - 4458 2004 p
26.02 GB300 LLAMA3_70B 64 MXFP8 256 1 8192 0 1 4 1 5 - - 4596 2064 p
26.02 GB200 LLAMA3_70B 64 MXFP8 256 1 8192 0 2 4 1 5 - - 3613 1623 p
26.02 GB300 LLAMA3_70B 64 FP8 256 2 8192 64 1 1 1 - - - 5003 2248 p
26.02 GB200 LLAMA3_70B 64 FP8 256 2 8192 64 1 1 1 - - - 4040 1815 p
26.02 GB300 LLAMA3.1_405B 256 NVFP4 1536 1 8192 0 4 8 1 4 - - 1333 3365 p
26.02 GB200 LLAMA3.1_405B 256 NVFP4 1536 1 8192 0 4 16 1 8 - - 1076 2716 p
26.02 GB300 LLAMA3.1_405B 256 MXFP8 1536 1 8192 0 2 8 2 4 - - 931 2349 p
26.02 GB200 LLAMA3.1_405B 256 MXFP8 1536 1 8192 0 4 16 1 8 - - 786 1983 p
26.02 GB300 LLAMA3.1_405B 256 FP8 1536 1 8192 0 4 8 1 4 - - 988 2495 p
26.02 GB200 LLAMA3.1_405B 256 FP8 1536 1 8192 0 4 16 1 4 - - 793 2004 p
26.02 GB300 DeepSeekV3 256 MXFP8 4096 2 4096 0 1 2 1 8 32 - 4612 1199 p
26.02 GB200 DeepSeekV3 256 MXFP8 4096 1 4096 0 1 4 1 4 64 - 3955 1028 p
26.02 B300 DeepSeekV3 256 MXFP8 4096 1 4096 0 1 16 1 - 8 - 2983 776 p
26.02 B200 DeepSeekV3 256 MXFP8 4096 1 4096 0 1 16 1 - 8 - 2689 699 p
26.02 GB300 GPT_OSS_120B 64 BF16 1280 4 4096 0 1 1 1 - 64 - 19412 527 p
26.02 GB200 GPT_OSS_120B 64 BF16 1280 4 4096 0 1 1 1 - 64 - 15784 428 p
26.02 B300 GPT_OSS_120B 64 BF16 1280 4 4096 0 1 1 1 - 64 - 8359 228 p
26.02 B200 GPT_OSS_120B 64 BF16 1280 4 4096 0 1 1 1 - 64 - 8047 219 p
26.02 GB300 Qwen3_30B_a3B 8 MXFP8 512 8 4096 0 1 1 1 - 8 - 30376 699 p
26.02 GB200 Qwen3_30B_a3B 8 MXFP8 512 4 4096 0 1 1 1 - 8 - 26084 600 p
26.02 B300 Qwen3_30B_a3B 8 MXFP8 512 8 4096 0 1 1 1 - 8 - 29521 679 p
26.02 B200 Qwen3_30B_a3B 8 MXFP8 512 1 4096 0 1 1 1 - 8 - 9691 223 p
26.02 GB300 Qwen3_235B_a22B 256 MXFP8 8192 2 4096 0 1 4 1 - 32 - 6583 974 p
26.02 GB200 Qwen3_235B_a22B 256 MXFP8 8192 1 4096 0 1 8 1 - 32 - 5448 806 p
26.02 B300 Qwen3_235B_a22B 256 MXFP8 8192 1 4096 0 1 8 1 4 8 - 2691 399 p
26.02 B200 Qwen3_235B_a22B 256 MXFP8 8192 1 4096 0 1 8 1 - 8 - 3805 563 p
25.11 GB300 LLAMA3_8B 8 FP8-CS 128 2 8192 0 1 1 1 - 1 8 37556 1933 p
25.11 GB300 LLAMA3_8B 8 FP8-MX 128 2 8192 0 1 1 1 - 1 8 36108 1858 a
25.11 GB300 LLAMA3_70B 64 FP8-CS 256 2 8192 64 1 1 1 1 1 2 4520 2030 p
25.11 GB300 LLAMA3.1_405B 256 FP8-CS 1536 1 8192 0 2 8 2 4 1 192 999 2522 p
25.11 GB300 DeepSeekV3_(w/o~MTP) 256 BF16 4096 1 4096 0 1 2 1 4 32 32 3848 961 p
25.11 GB300 DeepSeekV3_(w/o~MTP) 256 FP8-MX 4096 1 4096 0 1 2 1 4 32 32 4357 1088 p
25.11 GB300 GPT_OSS_120B 64 BF16 1280 2 8192 0 1 1 1 1 64 10 18347 565 p
25.11 GB300 Qwen3_30B_a3B 8 FP8-MX 512 4 4096 0 1 1 1 1 8 16 28934 666 p
25.11 GB300 Qwen3_235B_a22B 256 BF16 8192 2 4096 0 1 4 1 12 16 32 6131 907 p
25.11 GB200 LLAMA3_8B 8 FP8-CS 128 2 8192 0 1 1 1 - 1 8 31508 1622 p
25.11 GB200 LLAMA3_8B 8 FP8-MX 128 2 8192 0 1 1 1 - 1 8 29789 1533 a
25.11 GB200 LLAMA3_70B 64 FP8-CS 256 2 8192 64 1 1 1 1 1 2 4312 1937 p
25.11 GB200 LLAMA3.1_405B 256 FP8-CS 1536 1 8192 0 4 16 1 4 1 384 813 2053 p
25.11 GB200 DeepSeekV3_(w/o~MTP) 256 BF16 4096 1 4096 0 1 4 1 4 64 64 3139 782 p
25.11 GB200 DeepSeekV3_(w/o~MTP) 256 FP8-MX 4096 1 4096 0 1 8 1 4 32 128 4018 1003 p
25.11 GB200 GPT_OSS_120B 64 BF16 1280 1 8192 0 1 1 1 1 64 20 15876 488 p
25.11 GB200 Qwen3_30B_a3B 8 FP8-MX 512 4 4096 0 1 1 1 1 8 16 23766 547 p
25.11 GB200 Qwen3_235B_a22B 256 BF16 8192 1 4096 0 1 8 1 3 32 256 4916 728 p
25.11 B200 LLAMA3_8B 8 FP8-CS 128 2 8192 0 1 1 1 - 1 8 30624 1576 p
25.11 B200 LLAMA3_8B 8 FP8-MX 128 2 8192 0 1 1 1 - 1 8 29521 1519 a
25.11 B200 LLAMA3.1_405B 128 FP8-CS 64 1 8192 0 4 8 2 8 1 32 661 1667 p
25.11 B200 LLAMA3.1_405B 128 FP8-MX 64 1 8192 0 4 8 2 8 1 32 624 1576 a
25.11 B200 DeepSeekV3_(w/~MTP) 256 FP8-MX 2048 1 4096 0 1 16 1 1 8 128 2139 557 p
25.11 B200 GPT_OSS_120B 64 BF16 512 4 4096 0 1 1 1 1 8 2 8213 223 p
25.11 B200 Qwen3_30B_a3B 8 FP8-MX 512 1 4096 0 1 1 1 1 8 64 9299 214 p
25.11 B200 Qwen3_235B_a22B 64 FP8-MX 1024 1 4096 0 1 8 1 2 8 128 3269 484 p
25.09 GB200 LLAMA3_8B 8 FP8? 128 2 8192 0 1 1 1 - 1 8 31357 1614 p
25.09 GB200 LLAMA3_8B 8 FP8? 128 2 8192 0 1 1 1 - 1 8 29925 1540 a
25.09 GB200 LLAMA3_70B 64 FP8? 128 2 8192 64 1 1 1 1 1 1 3986 1791 p
25.09 GB200 LLAMA3_70B 64 FP8? 128 2 8192 0 2 4 1 5 1 16 3546 1593 a
25.09 GB200 LLAMA3.1_405B 128 FP8? 64 1 8192 64 2 1 1 1 1 1 729 1840 p
25.09 GB200 LLAMA3.1_405B 128 FP8? 64 1 8192 0 4 8 2 8 1 32 578 1458 a
25.09 GB200 DeepSeekV3_(tokendrop) 256 FP8? 2048 1 4096 0 1 4 1 4 64 32 3454 899 p
25.09 GB200 DeepSeekV3_(tokendrop) 256 FP8? 2048 1 4096 0 1 8 1 2 64 64 2835 738 a
25.09 GB200 Qwen3_30B_a3B_(tokendrop) 8 FP8? 512 4 4096 0 1 1 1 1 8 16 22775 524 p
25.09 GB200 Qwen3_30B_a3B_(tokendrop) 8 FP8? 512 4 4096 0 1 1 1 1 8 16 23723 546 a
25.09 GB200 Qwen3_235B_a22B_(tokendrop) 64 FP8? 1024 1 4096 0 2 1 1 1 64 32 4452 659 p
25.09 GB200 Qwen3_235B_a22B_(tokendrop) 64 FP8? 1024 1 4096 0 2 1 1 1 64 32 4416 654 a
25.09 B200 LLAMA3_8B 8 FP8? 128 2 8192 0 1 1 1 - 1 8 29994 1544 p
25.09 B200 LLAMA3_8B 8 FP8? 128 2 8192 0 1 1 1 - 1 8 29388 1513 a
25.09 B200 LLAMA3.1_405B 128 FP8? 64 1 8192 0 4 8 2 8 1 32 664 1676 p
25.09 B200 LLAMA3.1_405B 128 FP8? 64 1 8192 0 4 8 2 8 1 32 622 1569 a
25.09 B200 DeepSeekV3_(tokendrop) 256 FP8? 2048 1 4096 0 1 16 1 1 8 128 2265 589 p
25.09 B200 DeepSeekV3_(tokendrop) 256 FP8? 2048 1 4096 0 1 16 1 1 8 128 2159 562 a
25.09 B200 Qwen3_30B_a3B_(tokendrop) 8 FP8? 512 1 4096 0 1 1 1 1 8 64 18066 416 p
25.09 B200 Qwen3_235B_a22B_(tokendrop) 64 FP8? 1024 1 4096 0 1 8 1 2 8 128 4104 607 p
25.09 B200 Qwen3_235B_a22B_(tokendrop) 64 FP8? 1024 1 4096 0 1 8 1 2 8 128 4275 633 a
"""


def correct_2509(r):
    """A 25.09 Megatron-Bridge row of the reference table, which has no dtype, as FP8 (module docstring)."""
    if r["source"] == SOURCE and r["notes"].startswith("25.09 ") and not r["dtype"]:
        return dict(r, dtype="fp8", precision_label=FP8_2509,
                    derived_fields=r["derived_fields"] + ";dtype=fp8 (scalesim: inferred, see precision_label)")
    return r


def blackwell_rows(reference):
    """The Blackwell rows of :data:`TABLE` in the reference table's schema."""
    template = {}
    for r in reference:
        if r["source"] == SOURCE and r["benchmark_or_model"]:
            template.setdefault(r["benchmark_or_model"].split(" (")[0], r)
    out = []
    for line in TABLE.strip().splitlines():
        c, system, model, n, prec, gbs, mbs, seq, fsdp, tp, pp, cp, vp, ep, ga, tps, tflops, which = line.split()
        name = model.replace("_(", " (").replace("~", " ").replace("GPT_OSS_120B", "GPT OSS 120B")
        base = template[name.split(" (")[0]]
        dtype, label = PRECISION[prec]
        notes = [f"{c} NeMo Container; Pre-Training Performance; system DGX-{system}"]
        notes += [f"FSDP={fsdp} (sharding group size)"] if fsdp != "0" else []
        notes += ["VP n/a"] if vp == "-" else []
        notes += [f"GA={ga}"] if ga != "-" else []
        notes += ["alternate value (in parentheses): the other quantisation granularity, 32x32 blocks for weights "
                  "and activations (MXFP8), per the table's footnote"] if which == "a" else []
        moe = bool(base["n_active_params"])
        notes += ['MoE: "we force-balance the token distribution among experts" (footnote)'] if moe else []
        notes += ["architecture as the reference table's H100 rows of the same model", ADDED]
        out.append(dict(
            base, benchmark_or_model=name, seq_len=seq, global_batch_seqs=gbs, micro_batch=mbs, accelerator=system,
            n_chips=n, dtype=dtype, tp=tp, pp=pp, vp="" if vp == "-" else vp, cp=cp, ep="1" if ep == "-" else ep,
            dp=str(int(n) // (int(tp) * int(pp) * int(cp))), fsdp="no" if fsdp == "0" else "yes", recompute="",
            tokens_per_s_per_chip=tps, model_tflops_per_chip=tflops, mfu_reported="", mfu_denominator_tflops="",
            notes="; ".join(notes), precision_label=label, step_time_s="", source_commit=COMMIT, source_date="",
            derived_fields="dp=n_chips/(tp*pp*cp);" + base["derived_fields"].split(";", 1)[1]))
    return out


def main(ref):
    reference = read(ref, "training_throughput_benchmarks.csv")
    fields = list(reference[0].keys())
    # CRLF, as the reference table is written, so that the fitted copy differs from it only in the corrected rows
    write("training_throughput_benchmarks.csv", [correct_2509(r) for r in reference], fields, lineterminator="\r\n")
    write("training_throughput_holdout.csv", blackwell_rows(reference), fields, lineterminator="\r\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).resolve().parents[2] / "shared" / "reference"))
