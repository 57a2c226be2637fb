#!/usr/bin/env python
"""Where the time of one training step goes: torch.profiler over ours (absorbed and projected cross-attention) and
transformers' Perceiver at the benchmark's matched architecture (R = 1, batch 8), grouped into kinds of work.

    python scripts/profile_step.py --sizes 2k,32k --out docs/profile.md

Each system runs in its own process (scripts/benchmark.py builds it exactly as the benchmark does), does two
untimed steps, then one profiled step (forward + loss + backward + AdamW). The table gives each kind's share of the
step's self CPU time; the optimizer step is recorded as its own block. Profiling adds overhead to every op, so the
shares matter, not the absolute times (scripts/benchmark.py measures those).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import benchmark  # the benchmark's own builders, so that the profiled systems are the measured ones
import common

BATCH = 8  # the benchmark's matched batch
VARIANTS = {
    "ours": dict(system="ours", overrides={"num_blocks": 1}),
    "ours projected": dict(system="ours", overrides={"num_blocks": 1, **benchmark.PROJECTED}),
    "transformers": dict(system="transformers", overrides={"num_blocks": 1}),
}
# kinds of work, by aten op name (first match wins); what no pattern names is "other elementwise"
KINDS = (
    ("attention kernel (SDPA, fwd + bwd)", ("scaled_dot_product", "flash_attention")),
    ("matmul (mm, addmm, bmm)", ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear")),
    ("softmax (fwd + bwd)", ("softmax",)),
    ("layer norm (fwd + bwd)", ("layer_norm",)),
    ("embedding gather / scatter", ("embedding", "index_select", "index_add", "index")),
    ("copies, fills, cat", ("copy_", "fill_", "zero_", "cat", "clone", "contiguous", "empty")),
    ("sin / cos (Fourier features)", ("aten::sin", "aten::cos")),
)


def profile_one(name: str, M: int, batch: int) -> dict:
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    spec = dict(VARIANTS[name], M=M, batch=batch, preset="default", mode="train")
    torch.manual_seed(0)
    model, train_loss, _, _ = benchmark.build_system(spec)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(6, benchmark.VOCAB, (batch, M))
    labels = torch.randint(0, benchmark.NUM_LABELS, (batch,))

    def step():
        train_loss(model, ids, labels).backward()
        with record_function("## optimizer step ##"):
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step(), step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    events = prof.key_averages()
    # the ops' own time; a record_function label's self time (Python between the ops) belongs to no kind of work
    total = sum(e.self_cpu_time_total for e in events if not e.key.startswith("## "))
    optimizer_total = next((e.cpu_time_total for e in events if e.key == "## optimizer step ##"), 0)
    kinds = {kind: 0.0 for kind, _ in KINDS}
    kinds["other elementwise"] = 0.0
    ops = []
    for e in events:
        if e.key.startswith("## ") or e.self_cpu_time_total == 0:
            continue
        kind = next((k for k, pats in KINDS if any(p in e.key for p in pats)), "other elementwise")
        kinds[kind] += e.self_cpu_time_total
        ops.append((e.key, e.self_cpu_time_total, e.count))
    ops.sort(key=lambda t: -t[1])
    return dict(name=name, M=M, total_us=total, optimizer_us=optimizer_total, kinds=kinds, top=ops[:12])


def markdown(results: list[dict]) -> str:
    lines = []
    for M in sorted({r["M"] for r in results}):
        rows = [r for r in results if r["M"] == M]
        lines += [f"### M = {benchmark.kib(M)}, batch {BATCH}, training step", ""]
        header = ["kind of work"] + [r["name"] for r in rows]
        body = []
        for kind in [k for k, _ in KINDS] + ["other elementwise"]:
            body.append([kind] + [f"{100 * r['kinds'][kind] / r['total_us']:.1f}%" for r in rows])
        inside_adamw = [f"{100 * r['optimizer_us'] / r['total_us']:.1f}%" for r in rows]
        body.append(["(of all the above: inside the AdamW step)"] + inside_adamw)
        body.append(["profiled step (ms, with profiler overhead)"] + [f"{r['total_us'] / 1e3:,.0f}" for r in rows])
        lines += [common.markdown_table(header, body), ""]
        for r in rows:
            top = ", ".join(f"{k} {100 * t / r['total_us']:.1f}% ({n}x)" for k, t, n in r["top"][:8])
            lines += [f"- {r['name']}, top ops by self time: {top}", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="2k,32k", help="input lengths M (default 2k,32k)")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma list of {', '.join(VARIANTS)}")
    p.add_argument("--out", type=Path, default=None, help="also write the markdown here")
    p.add_argument("--child", nargs=2, metavar=("VARIANT", "M"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(profile_one(args.child[0], int(args.child[1]), BATCH)))
        return 0
    results = []
    for M in benchmark.parse_sizes(args.sizes):
        for name in [v.strip() for v in args.variants.split(",") if v.strip()]:
            out = subprocess.run(
                [sys.executable, __file__, "--child", name, str(M)], capture_output=True, text=True, check=True
            )
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"profiled {name} at M={M}", file=sys.stderr)
    text = markdown(results)
    print(text)
    if args.out:
        args.out.write_text(
            "# Where the time of a training step goes\n\nGenerated by `python scripts/profile_step.py "
            + " ".join(argv if argv is not None else sys.argv[1:])
            + "`.\n\n"
            + text
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
