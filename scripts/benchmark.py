#!/usr/bin/env python
"""Side-by-side speed and memory benchmark of three Perceivers over raw bytes, at a matched architecture: ours
(PerceiverByteForSequenceClassification), transformers' PerceiverForSequenceClassification and lucidrains'
perceiver_pytorch.Perceiver (when installed). It measures and writes tables (STEM.md), the raw data (STEM.json) and
two plots (STEM_time.png, STEM_memory.png); what the figures mean, how peak memory is taken, how each system is mapped
onto ours and the FLOP model are explained in docs/benchmarks.md.

Commands (run from the repository root, with the venv active):

    # Full run, on a QUIET machine (30-40 min on 2 CPU cores): docs/benchmarks_results.md, .json and the two plots
    python scripts/benchmark.py

    # Quick smoke run: tiny model and sizes, 1 round (1-3 min); never writes into docs/ unless asked
    python scripts/benchmark.py --quick --out-dir /tmp/bench_quick

    # The measurements the full run would make, without running them
    python scripts/benchmark.py --plan

    # One measurement in this process, printed as one JSON line
    python scripts/benchmark.py --worker '{"system": "ours", "mode": "train", "M": 2048, "batch": 8}'

Scenarios (all in one run): matched (R = 1, every system at --sizes, then ours and the surviving anchors at
--extra-sizes), repeats (R = --repeats with shared weights: ours vs lucidrains), compile (ours eager vs torch.compile),
long (one --long-bytes input for inference, --long-train-bytes for training, batch 1).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib.metadata
import importlib.util
import json
import multiprocessing
import os
import platform
import re
import resource
import shlex
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

import common

REPO = Path(__file__).resolve().parents[1]
SYSTEMS = ("ours", "transformers", "lucidrains")
ANCHORS = ("transformers", "lucidrains")
PROJECTED = {"cross_attention_absorb_projections": False}  # the "ours projected" variant: keys/values of every byte
NUM_LABELS = 2
VOCAB = 262  # 6 special ids + 256 byte values (byte b has id b + 6), the scheme of transformers' PerceiverTokenizer
SHARED = {"cross_attention_weight_sharing": "all_but_first", "self_attention_weight_sharing": "all_but_first"}

PRESETS = {
    "default": {},  # PerceiverByteConfig() as it is
    "paper": "paper_imagenet",  # PerceiverByteConfig.paper_imagenet(): N=512, D=1024, C=64, R=8, L=6
    "tiny": dict(
        d_model=16,
        num_latents=8,
        d_latents=32,
        num_blocks=2,
        num_self_attends_per_block=1,
        num_cross_attention_heads=1,
        num_self_attention_heads=2,
    ),  # fmt: skip
}


# =====================================================================================================================
# configs and the mapping of each system
# =====================================================================================================================
def our_config(preset: str, overrides: dict | None = None):
    """The PerceiverByteConfig of a measurement: the preset, then the scenario's overrides (num_blocks, sharing)."""
    from perceiver_byte import PerceiverByteConfig

    kind = PRESETS[preset]
    if kind == "paper_imagenet":
        return PerceiverByteConfig.paper_imagenet(num_labels=NUM_LABELS, **(overrides or {}))
    return PerceiverByteConfig(num_labels=NUM_LABELS, **{**kind, **(overrides or {})})


def dims(cfg, absorbed: bool = False) -> dict:
    """The architecture in the symbols of docs/benchmarks.md (FLOP model, mappings). `absorbed`: whether ours runs its
    cross-attentions in the absorbed form, as the built model says (`absorbs_projections()`)."""
    return dict(
        C=cfg.d_model, N=cfg.num_latents, D=cfg.d_latents, K=cfg.attention_qk_channels, V=cfg.attention_v_channels,
        R=cfg.num_blocks, L=cfg.num_self_attends_per_block, hc=cfg.num_cross_attention_heads,
        hs=cfg.num_self_attention_heads, wc=cfg.cross_attention_widening_factor, ws=cfg.self_attention_widening_factor,
        U=len(set(cfg.cross_attention_schedule)), mu=cfg.fourier_max_resolution, pos=cfg.position_encoding_type,
        ngrams=list(cfg.ngram_orders), buckets=cfg.ngram_buckets, ngram_width=cfg.ngram_embedding_size or cfg.d_model,
        labels=NUM_LABELS, cross_sharing=cfg.cross_attention_weight_sharing,
        self_sharing=cfg.self_attention_weight_sharing, chunk=cfg.cross_attention_chunk_size, absorbed=bool(absorbed),
    )  # fmt: skip


def transformers_kwargs(cfg, max_positions: int) -> dict:
    """transformers' PerceiverConfig at our architecture: one cross-attend (Perceiver IO), then num_blocks = R
    repeats of one block of L self-attends, max_position_embeddings = M."""
    d = dims(cfg)
    return dict(
        num_latents=d["N"], d_latents=d["D"], d_model=d["C"], num_blocks=d["R"], num_self_attends_per_block=d["L"],
        num_self_attention_heads=d["hs"], num_cross_attention_heads=d["hc"], qk_channels=d["K"], v_channels=d["V"],
        cross_attention_widening_factor=d["wc"], self_attention_widening_factor=d["ws"], hidden_act=cfg.hidden_act,
        attention_probs_dropout_prob=0.0, max_position_embeddings=max(int(max_positions), 1), vocab_size=VOCAB,
        num_labels=NUM_LABELS, use_query_residual=True,
    )  # fmt: skip


def lucidrains_kwargs(cfg) -> dict:
    """perceiver_pytorch.Perceiver arguments at our architecture (the Embedding in front maps ids to C channels)."""
    d = dims(cfg)
    return dict(
        num_freq_bands=max(d["C"] // 2, 1), depth=d["R"], max_freq=d["mu"], input_channels=d["C"], input_axis=1,
        num_latents=d["N"], latent_dim=d["D"], cross_heads=d["hc"], latent_heads=d["hs"],
        cross_dim_head=d["K"] // d["hc"], latent_dim_head=d["K"] // d["hs"], num_classes=NUM_LABELS, attn_dropout=0.0,
        ff_dropout=0.0, weight_tie_layers=(d["cross_sharing"] != "none" or d["self_sharing"] != "none"),
        fourier_encode_data=d["pos"] == "fourier", self_per_cross_attn=d["L"],
    )  # fmt: skip


def describe(system: str, cfg, absorbed: bool) -> str:
    """The arguments `system` was built with, in one line (the Systems table of the report)."""
    if system == "transformers":
        kw = transformers_kwargs(cfg, 1)
        kw["max_position_embeddings"] = "M"
        return "PerceiverConfig(" + ", ".join(f"{k}={v}" for k, v in kw.items()) + ")"
    if system == "lucidrains":
        kw = lucidrains_kwargs(cfg)
        return "Embedding(262, C) -> Perceiver(" + ", ".join(f"{k}={v}" for k, v in kw.items()) + ")"
    d = dims(cfg, absorbed)
    parts = [
        f"C={d['C']}, N={d['N']}, D={d['D']}, R={d['R']}, L={d['L']}, heads {d['hc']}/{d['hs']}, "
        f"qk/v {d['K']}/{d['V']}, widening {d['wc']}/{d['ws']}, sharing {d['cross_sharing']}/{d['self_sharing']}",
        f"{'ABSORBED' if absorbed else 'PROJECTED'} cross-attention",
        f"n-grams {d['ngrams']} ({d['buckets']:,} x {d['ngram_width']})" if d["ngrams"] else "bytes alone",
        f"positions {d['pos']}",
    ]
    if d["chunk"]:
        parts.append(f"chunks of {d['chunk']:,} bytes")
    return ", ".join(parts)


# =====================================================================================================================
# the FLOP model of docs/benchmarks.md: 2*m*n*k per (m x k) @ (k x n) matmul; forward only, training step = 3 x forward
# =====================================================================================================================
def flops_forward(system: str, d: dict, B: int, M: int) -> dict:
    """Forward FLOPs of one batch, by component."""
    C, N, D, K, V, R, L, wc, ws, n = (d[k] for k in ("C", "N", "D", "K", "V", "R", "L", "wc", "ws", "labels"))
    self_layer = 2 * B * N * D * (2 * K + V) + 2 * B * N * N * (K + V) + 2 * B * N * V * D + 4 * B * N * D * ws * D
    cross_core = 2 * B * N * D * K + 2 * B * N * M * (K + V) + 2 * B * N * V * D + 4 * B * N * D * wc * D
    if system == "ours":
        chunked = d["chunk"] is not None and M > d["chunk"]
        if d["absorbed"] or chunked:  # no keys or values: the queries, folded to C channels, meet the byte array
            h = d["hc"]
            kv = 0
            cross = (
                2 * B * N * D * K + 2 * B * N * K * C + 4 * B * h * N * M * C + 2 * B * N * C * V + 2 * B * N * V * D
                + 4 * B * N * D * wc * D
            )  # fmt: skip
        else:  # keys and values of every byte, once per distinct cross-attention module
            kv = d["U"] * 2 * B * M * C * (K + V)
            cross = cross_core
        return {
            "kv_projection": kv,
            "cross_attends": R * cross,
            "self_attends": R * L * self_layer,
            "head": 2 * B * D * n,
        }
    if system == "transformers":
        decoder = 2 * B * D * D + 2 * B * N * D * 2 * D + 4 * B * N * D + 2 * B * D * D + 4 * B * D * D + 2 * B * D * n
        return {
            "kv_projection": 2 * B * M * C * (K + V),
            "cross_attends": cross_core,
            "self_attends": R * L * self_layer,
            "head": decoder,
        }
    if system == "lucidrains":
        Cc = C + (2 * max(C // 2, 1) + 1 if d["pos"] == "fourier" else 0)
        ff = 2 * B * N * D * 8 * D + 2 * B * N * 4 * D * D
        cross = 2 * B * N * D * K + 2 * 2 * B * N * M * K + 2 * B * N * K * D + ff
        latent = 2 * B * N * D * 3 * K + 2 * 2 * B * N * N * K + 2 * B * N * K * D + ff
        return {
            "kv_projection": R * 2 * B * M * Cc * 2 * K,
            "cross_attends": R * cross,
            "self_attends": R * L * latent,
            "head": 2 * B * D * n,
        }
    raise ValueError(system)


# =====================================================================================================================
# the worker: one measurement in this process
# =====================================================================================================================
def sync(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def memory_mark(device) -> int:
    """Open a peak-memory window: reset the high-water mark and return the memory in use now (the baseline)."""
    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device)
    common.reset_peak_rss()
    return common.rss()


def memory_peak(device) -> int:
    """The high-water mark since the last memory_mark (subtract its baseline)."""
    import torch

    return torch.cuda.max_memory_allocated(device) if device.type == "cuda" else common.peak_rss()


def limit_address_space(extra_bytes: int | None) -> int | None:
    """Cap this process's address space at its current size + extra_bytes, so that an over-large allocation raises
    (a clean "OOM") instead of waking the kernel's OOM killer."""
    size = common.proc_kib("/proc/self/status", "VmSize")
    if not extra_bytes or size is None:
        return None
    try:
        resource.setrlimit(resource.RLIMIT_AS, (size + int(extra_bytes), resource.RLIM_INFINITY))
        return size + int(extra_bytes)
    except (ValueError, OSError):
        return None


def build_system(spec: dict):
    """(model, train_loss(module, ids, labels) -> loss, infer(module, ids) -> logits, our config)."""
    import torch.nn.functional as F
    from torch import nn

    overrides = dict(spec.get("overrides") or {})
    if spec.get("chunk_size"):
        overrides["cross_attention_chunk_size"] = int(spec["chunk_size"])
    cfg = our_config(spec.get("preset", "default"), overrides)
    system = spec["system"]
    if system == "ours":
        from perceiver_byte import PerceiverByteForSequenceClassification

        model = PerceiverByteForSequenceClassification(cfg)
        if spec.get("grad_ckpt"):
            model.activation_checkpointing_enable()
        return model, lambda m, ids, labels: m(input_ids=ids, labels=labels).loss, lambda m, ids: m(ids).logits, cfg
    if system == "transformers":
        from transformers import PerceiverConfig, PerceiverForSequenceClassification

        model = PerceiverForSequenceClassification(PerceiverConfig(**transformers_kwargs(cfg, spec["M"])))
        return model, lambda m, ids, labels: m(inputs=ids, labels=labels).loss, lambda m, ids: m(inputs=ids).logits, cfg
    if system == "lucidrains":
        from perceiver_pytorch import Perceiver

        model = nn.Sequential(nn.Embedding(VOCAB, cfg.d_model), Perceiver(**lucidrains_kwargs(cfg)))
        return model, lambda m, ids, labels: F.cross_entropy(m(ids), labels), lambda m, ids: m(ids), cfg
    raise ValueError(f"unknown system {system!r}")


def run_matmul(spec: dict) -> dict:
    """Median fp32 matmul rate of this machine: a square n x n product and the shape of a K/V projection."""
    import torch

    device = torch.device(spec.get("device", "cpu"))
    n, rows = int(spec.get("n", 2048)), int(spec.get("rows", 65536))
    out = {}
    for name, (m, k, p) in {"square": (n, n, n), "kv_projection": (rows, 128, 512)}.items():
        a, b = torch.randn(m, k, device=device), torch.randn(k, p, device=device)
        torch.matmul(a, b), torch.matmul(a, b)
        times = []
        for _ in range(int(spec.get("reps", 7))):
            sync(device)
            t = time.perf_counter()
            torch.matmul(a, b)
            sync(device)
            times.append(time.perf_counter() - t)
        median = statistics.median(times)
        out[name] = {"shape": [m, k, p], "gflops": 2 * m * k * p / median / 1e9, "median_s": median, "times_s": times}
    return {"status": "ok", "matmul": out, "threads": torch.get_num_threads()}


def run_measurement(spec: dict) -> dict:
    """Build the system, warm up, time up to spec['iters'] steps; peak memory above the post-build baseline."""
    t_process = time.perf_counter()
    gc.freeze()  # the imported modules' objects: never garbage, and gc.collect() below then skips them
    import numpy  # noqa: F401 - imported (with its BLAS buffers) before the address-space limit is set
    import torch

    if spec.get("system") in ("ours", "transformers"):
        import transformers.models.perceiver.modeling_perceiver  # noqa: F401

        import perceiver_byte  # noqa: F401
    elif spec.get("system") == "lucidrains":
        import perceiver_pytorch  # noqa: F401
    result = {"spec": spec, "status": "ok", "as_limit_bytes": limit_address_space(spec.get("mem_limit_bytes"))}
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    if spec.get("system") == "matmul":
        return {**result, **run_matmul(spec)}
    device = torch.device(spec.get("device", "cpu"))
    torch.manual_seed(int(spec.get("seed", 0)))
    B, M, mode = int(spec["batch"]), int(spec["M"]), spec["mode"]
    stage = "build"
    try:
        model, train_loss, infer, cfg = build_system(spec)
        model.to(device)
        absorbed = spec["system"] == "ours" and model.base_model.absorbs_projections()
        d = dims(cfg, absorbed)
        parts = flops_forward(spec["system"], d, B, M)
        result.update(
            params=sum(p.numel() for p in model.parameters()),
            dims=d,
            arguments=describe(spec["system"], cfg, absorbed),
            flops_forward_parts=parts,
            flops_forward=sum(parts.values()),
            flops_step=sum(parts.values()) * (3 if mode == "train" else 1),
            attn_implementation=getattr(getattr(model, "config", None), "_attn_implementation", "n/a"),
        )
        ids = torch.randint(6, VOCAB, (B, M), device=device)
        labels = torch.randint(0, NUM_LABELS, (B,), device=device)
        model.train(mode == "train")
        # fused: one pass over each parameter, the AdamW that Trainer uses by default (optim="adamw_torch_fused")
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True) if mode == "train" else None
        runner = torch.compile(model, backend=spec.get("compile_backend", "inductor")) if spec.get("compile") else model

        def step():
            if optimizer is not None:
                train_loss(runner, ids, labels).backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            else:
                with torch.inference_mode():
                    infer(runner, ids)
            sync(device)

        baseline = result["baseline_bytes"] = memory_mark(device)
        result["build_s"] = time.perf_counter() - t_process
        time_limit = float(spec.get("time_limit_s", 600))
        budget = float(spec.get("budget_s", 0.5 * time_limit))
        t0 = time.perf_counter()
        stage, warm = "warmup", []
        for _ in range(max(int(spec.get("warmup", 1)), 0)):
            t = time.perf_counter()
            step()
            warm.append(time.perf_counter() - t)
        result["warmup_s"] = warm
        if warm:
            # the steady-state step memory: the high-water mark of the timed steps above the memory after warm-up
            # (AdamW state, touched library pages and the allocator's retained heap then count as baseline)
            result["peak_warmup_bytes"] = memory_peak(device) - baseline
            steady_baseline = memory_mark(device)
        stage, times, cpu = "timed", [], []
        for i in range(max(int(spec.get("iters", 3)), 1)):
            last = times[-1] if times else (warm[-1] if warm else 0.0)
            # stop when the next step would overrun the budget; when even one timed step would overrun the hard
            # limit, keep the warm-up step as the (flagged) sample rather than be killed
            if i >= 1 and time.perf_counter() - t0 + last > budget:
                break
            if i == 0 and warm and time.perf_counter() - t_process + last > 0.9 * time_limit:
                result["warmup_only"], times = True, [warm[-1]]
                break
            r0, t = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            step()
            times.append(time.perf_counter() - t)
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            cpu.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
        result.update(times_s=times, cpu_s=cpu, threads=torch.get_num_threads())
        high = memory_peak(device)
        if warm:
            result["peak_steady_bytes"] = high - steady_baseline
            result["peak_bytes"] = max(result["peak_warmup_bytes"], high - baseline)
        else:
            result["peak_bytes"] = high - baseline
    except Exception as exc:  # noqa: BLE001 - reported, not raised: the parent goes on with the next measurement
        text = f"{type(exc).__name__}: {exc}".lower()
        oom = isinstance(exc, MemoryError) or any(
            s in text for s in ("can't allocate", "cannot allocate", "out of memory")
        )
        first_line = (str(exc).strip().splitlines() or [""])[0][:300]
        result.update(status="oom" if oom else "error", stage=stage, error=f"{type(exc).__name__}: {first_line}")
        result["traceback"] = traceback.format_exc()[-2000:]
    result["process_s"] = time.perf_counter() - t_process
    return result


def _child(spec: dict, conn):
    try:
        conn.send(run_measurement(spec))
    finally:
        conn.close()
        if not spec.get("compile"):  # (compiled children exit normally, so that torch's compile workers clean up)
            os._exit(0)  # skip the interpreter's teardown of torch/transformers: the result is already sent


class Launcher:
    """Runs each measurement in its own process, forked from a server that imported torch and the three systems once:
    every child has its own memory and ends after its one measurement; the wall-clock limit kills it otherwise."""

    def __init__(self):
        self.ctx = multiprocessing.get_context("forkserver")
        modules = ["torch", "perceiver_byte", "perceiver_pytorch", "transformers.models.perceiver.modeling_perceiver"]
        self.ctx.set_forkserver_preload(["__main__", *modules])  # (a module that is not installed is skipped)

    def run(self, spec: dict) -> dict:
        limit = float(spec.get("time_limit_s", 600))
        start = time.perf_counter()
        receive, send = self.ctx.Pipe(duplex=False)
        proc = self.ctx.Process(target=_child, args=(spec, send))
        proc.start()
        send.close()
        try:
            result = receive.recv() if receive.poll(limit) else None
        except (EOFError, OSError):  # the child died before it sent a result
            result = None
        proc.join(5 if result is not None else 0.1)
        timed_out = proc.is_alive() and result is None
        if proc.is_alive():
            proc.kill()
            proc.join()
        if timed_out:
            result = {"status": "timeout", "error": f"killed after the {limit:.0f} s per-measurement limit"}
        elif result is None and proc.exitcode == -9:
            result = {"status": "oom", "error": "killed by SIGKILL (likely the kernel's OOM killer)"}
        elif result is None:
            result = {"status": "crash", "error": f"the worker ended (exit code {proc.exitcode}) without a result"}
        return {**result, "spec": spec, "wall_s": time.perf_counter() - start}


# =====================================================================================================================
# the plan
# =====================================================================================================================
def kib(n: int) -> str:
    return f"{n // 1024}k" if n % 1024 == 0 and n >= 1024 else str(n)


def parse_sizes(text: str) -> list[int]:
    """ "512,2k,1m" -> [512, 2048, 1048576]."""
    scale = {"k": 1024, "m": 1024 * 1024}
    parts = [p.strip().lower() for p in text.split(",") if p.strip()]
    return [int(float(p[:-1]) * scale[p[-1]]) if p[-1] in scale else int(p) for p in parts]


def build_plan(args) -> list[dict]:
    """Groups of measurements: each group is one (scenario, M, mode, batch) whose variants run interleaved."""
    groups = []

    def group(scenario, M, mode, variants, batch=args.batch_size, rounds=args.rounds):
        specs = []
        for variant in variants:
            spec = dict(preset=args.preset, warmup=args.warmup, iters=args.iters, device=args.device,
                        time_limit_s=args.time_limit, threads=args.threads)  # fmt: skip
            spec.update(scenario=scenario, M=M, mode=mode, batch=batch, **variant)
            spec["mem_limit_bytes"] = int(args.mem_limit_gb * 2**30) or None
            spec["budget_s"] = args.budget_fraction * float(spec["time_limit_s"])
            specs.append(spec)
        if specs:
            groups.append(dict(scenario=scenario, M=M, mode=mode, batch=batch, rounds=rounds, specs=specs))

    systems = args.systems
    if "matched" in args.scenarios:
        for M in sorted(set(args.sizes) | set(args.extra_sizes)):
            extra = M not in args.sizes
            for mode in args.modes:
                variants = []
                for s in systems:
                    if s in ANCHORS and extra and M > args.anchor_max_bytes:
                        continue
                    variants.append(dict(name=s, system=s, overrides={"num_blocks": 1}))
                    if s == "ours" and args.projected and M <= args.anchor_max_bytes:
                        variants.append(dict(name="ours projected", system=s, overrides={"num_blocks": 1, **PROJECTED}))
                group("matched", M, mode, variants)
    if "repeats" in args.scenarios and args.repeats:
        R, share = args.repeats, {"num_blocks": args.repeats, **SHARED}
        for M in args.repeats_sizes:
            for mode in args.modes:
                variants = [dict(name=f"{s} R={R}", system=s, overrides=share) for s in systems if s != "transformers"]
                if "ours" in systems and args.projected:
                    projected = dict(name=f"ours projected R={R}", system="ours", overrides={**share, **PROJECTED})
                    variants.insert(1, projected)
                group("repeats", M, mode, variants)
    if "compile" in args.scenarios and "ours" in systems:
        eager = dict(name="ours eager", system="ours")
        compiled = dict(name="ours compiled", system="ours", compile=True, compile_backend=args.compile_backend,
                        warmup=max(args.warmup, 2), time_limit_s=args.compile_time_limit)  # fmt: skip
        for M in args.compile_sizes:
            for mode in args.modes:
                group("compile", M, mode, [eager, compiled])
    if "long" in args.scenarios:
        long = dict(time_limit_s=args.long_time_limit, warmup=0 if args.long_no_warmup else 1, iters=1)
        for mode, M in (("infer", args.long_bytes), ("train", args.long_train_bytes)):
            if mode not in args.modes:
                continue
            chunked = dict(chunk_size=args.chunk_size, **long)
            chunk = f" (chunk {kib(args.chunk_size)})" if M > args.chunk_size else ""
            variants = [dict(name=s, system=s, **long) for s in systems if s != "ours"]
            if "ours" in systems and mode == "infer":
                variants.insert(0, dict(name=f"ours{chunk}", system="ours", **chunked))
            elif "ours" in systems:  # training: with activation checkpointing and chunks, and whole without
                variants[:0] = [dict(name=f"ours + grad ckpt{chunk}", system="ours", grad_ckpt=True, **chunked),
                                dict(name="ours", system="ours", **long)]  # fmt: skip
            group("long", M, mode, variants, batch=1, rounds=1)
    return groups


# =====================================================================================================================
# running and aggregating
# =====================================================================================================================
def failure_text(rec: dict) -> str:
    status, err = rec.get("status"), rec.get("error", "")
    if status == "oom":
        limit = rec["spec"].get("mem_limit_bytes")
        size = re.search(r"allocate (\d+) bytes", err)
        if size:
            err = f"an allocation of {int(size.group(1)) / 2**20:,.0f} MiB failed"
        under = f" under the {limit / 2**30:.2f} GiB allowance" if limit else ""
        return f"OOM{under} in the {rec.get('stage', '?')} stage: {err}"[:200]
    return err if status == "skipped" else f"{status}: {err}"[:200]


def run_plan(groups: list[dict], launcher: Launcher) -> list[dict]:
    """Every group's variants interleaved, A B C A B C, for its rounds; a variant that fails at some M is skipped at the
    larger M of the same scenario and mode."""
    records = []
    failed = {}  # (scenario, variant name, mode) -> why it is skipped
    total = sum(len(g["specs"]) * g["rounds"] for g in groups)
    done, start = 0, time.perf_counter()
    for g in groups:
        for rnd in range(g["rounds"]):
            for spec in g["specs"]:
                done += 1
                key = (g["scenario"], spec["name"], g["mode"])
                spec = dict(spec, round=rnd)
                if key in failed:
                    if rnd == 0:
                        records.append({"spec": spec, "status": "skipped", "error": failed[key]})
                    continue
                rec = launcher.run(spec)
                records.append(rec)
                head = (
                    f"[{done}/{total} {(time.perf_counter() - start) / 60:5.1f} min] {g['scenario']:<8} {g['mode']:<5} "
                    f"M={kib(g['M']):>6} B={g['batch']} {spec['name']:<26} r{rnd + 1}/{g['rounds']}: "
                )
                if rec["status"] == "ok":
                    times = rec["times_s"]
                    print(
                        head + f"{1e3 * statistics.median(times):,.1f} ms/step (n={len(times)}), "
                        f"peak {rec['peak_bytes'] / 2**20:,.1f} MiB, {rec['wall_s']:.1f} s",
                        flush=True,
                    )
                else:
                    print(head + failure_text(rec), flush=True)
                    failed[key] = f"skipped: failed at M={g['M']} ({rec['status']})"
    return records


def aggregate(records: list[dict]) -> list[dict]:
    """One row per (scenario, variant, mode, M, batch): the median time over all timed steps of all rounds."""
    rows = {}
    for rec in records:
        spec = rec["spec"]
        key = (spec["scenario"], spec["name"], spec["mode"], spec["M"], spec["batch"])
        row = rows.setdefault(key, dict(zip(("scenario", "name", "mode", "M", "batch"), key, strict=True)))
        row.setdefault("system", spec["system"])
        for name in ("times", "cpu", "peaks", "steady", "failures", "compile_first"):
            row.setdefault(name, [])
        if rec["status"] != "ok":
            row["failures"].append(failure_text(rec))
            continue
        row["times"] += rec["times_s"]
        row["cpu"] += rec["cpu_s"]
        row["peaks"].append(rec["peak_bytes"])
        if rec.get("peak_steady_bytes") is not None:
            row["steady"].append(rec["peak_steady_bytes"])
        row["warmup_only"] = row.get("warmup_only", False) or bool(rec.get("warmup_only"))
        row["rounds"] = row.get("rounds", 0) + 1
        for name in ("params", "flops_step", "flops_forward_parts", "attn_implementation", "dims", "arguments"):
            row[name] = rec.get(name)
        if spec.get("compile") and rec.get("warmup_s"):
            row["compile_first"].append(rec["warmup_s"][0])
    for row in rows.values():
        if not row["times"]:
            row.update(status="failed", failure=(row["failures"] or ["no result"])[0])
            continue
        time_s = statistics.median(row["times"])
        row.update(
            status="ok",
            time_s=time_s,
            time_min_s=min(row["times"]),
            time_max_s=max(row["times"]),
            peak_bytes=statistics.median(row["peaks"]),
            peak_steady_bytes=statistics.median(row["steady"]) if row["steady"] else None,
            bytes_per_s=row["batch"] * row["M"] / time_s,
            achieved_flops=row["flops_step"] / time_s,
            cpu_s=statistics.median(row["cpu"]) if row["cpu"] else None,
        )
    return list(rows.values())


def find(rows: list[dict], **kw) -> list[dict]:
    return [r for r in rows if all(r.get(k) == v for k, v in kw.items())]


def loglog_slope(xs, ys) -> float | None:
    import numpy as np

    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0]) if len(xs) >= 2 else None


def scaling_fits(rows: list[dict], lo: int, hi: int) -> dict:
    """Log-log slopes of ours' time and peak memory against M in [lo, hi], matched scenario."""
    fits = {}
    for mode in ("train", "infer"):
        points = sorted(
            (r["M"], r["time_s"], max(r["peak_bytes"], 1))
            for r in find(rows, scenario="matched", name="ours", mode=mode, status="ok")
            if lo <= r["M"] <= hi
        )
        Ms = [p[0] for p in points]
        fits[mode] = {
            "points": len(points),
            "range": [lo, hi],
            "M": Ms,
            "time_slope": loglog_slope(Ms, [p[1] for p in points]),
            "memory_slope": loglog_slope(Ms, [p[2] for p in points]),
        }
    return fits


def machine_info(device: str) -> dict:
    """common.machine() plus the versions, the commit and the torch threads of this run."""
    import torch
    import transformers

    git = ["git", "describe", "--always", "--dirty"]  # the commit, "-dirty" with uncommitted changes
    try:
        commit = subprocess.run(git, cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip() or None
    except OSError:
        commit = None
    lucidrains = importlib.util.find_spec("perceiver_pytorch") and importlib.metadata.version("perceiver-pytorch")
    info = dict(common.machine(), python=platform.python_version(), torch=torch.__version__,
                transformers=transformers.__version__, perceiver_pytorch=lucidrains or "not installed", commit=commit,
                torch_threads=torch.get_num_threads(), device=device)  # fmt: skip
    if device == "cuda" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


# =====================================================================================================================
# tables and plots
# =====================================================================================================================
def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f}" if seconds < 100 else f"{seconds * 1e3:,.0f}"


def fmt_mib(n) -> str:
    return "-" if n is None else f"{n / 2**20:,.1f}"


def fmt_rate(x: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.2f} {unit}"
    return f"{x:.0f} "


RESULT_HEADER = ["M", "system", "params", "median ms/step", "min–max ms", "n", "bytes/s", "peak MiB", "steady MiB",
                 "GFLOP/step", "GFLOP/s", "% of matmul"]  # fmt: skip


def scenario_table(rows: list[dict], scenario: str, mode: str, matmul_flops: float) -> str:
    body = []
    for r in sorted(find(rows, scenario=scenario, mode=mode), key=lambda r: (r["M"], r["name"])):
        head = [kib(r["M"]), r["name"], f"{r['params']:,}" if r.get("params") else "-"]
        if r["status"] != "ok":
            body.append(head + [r["failure"]] + [""] * 8)
            continue
        body.append(
            head
            + [
                fmt_ms(r["time_s"]) + (" †" if r["warmup_only"] else ""),
                f"{fmt_ms(r['time_min_s'])}–{fmt_ms(r['time_max_s'])}",
                len(r["times"]),
                fmt_rate(r["bytes_per_s"]) + "B/s",
                fmt_mib(r["peak_bytes"]),
                fmt_mib(r["peak_steady_bytes"]),
                f"{r['flops_step'] / 1e9:,.2f}",
                f"{r['achieved_flops'] / 1e9:,.1f}",
                f"{100 * r['achieved_flops'] / matmul_flops:.1f}%" if matmul_flops else "-",
            ]
        )
    return common.markdown_table(RESULT_HEADER, body)


def ratio_table(rows: list[dict], scenario: str, pairs: list[tuple[str, str]]) -> str:
    """Time and peak-memory ratios A/B of the variant pairs (A, B) at every M where both ran (below 1: A is faster or
    smaller)."""
    names = {r["name"] for r in find(rows, scenario=scenario)}
    pairs = [(a, b) for a, b in pairs if a in names and b in names]
    header = ["mode", "M"] + [f"{what} {a}/{b}" for a, b in pairs for what in ("time", "memory")]
    body = []
    for mode in ("train", "infer"):
        for M in sorted({r["M"] for r in find(rows, scenario=scenario, mode=mode)}):
            cells = []
            for a, b in pairs:
                ra = find(rows, scenario=scenario, mode=mode, M=M, name=a)
                rb = find(rows, scenario=scenario, mode=mode, M=M, name=b)
                if not ra or not rb:
                    cells += ["not run", ""]
                elif ra[0]["status"] != "ok" or rb[0]["status"] != "ok":
                    cells += [f"{a if ra[0]['status'] != 'ok' else b} failed", ""]
                else:
                    cells.append(f"{ra[0]['time_s'] / rb[0]['time_s']:.2f}")
                    cells.append(f"{ra[0]['peak_bytes'] / max(rb[0]['peak_bytes'], 1):.2f}")
            if any(c not in ("not run", "") for c in cells):
                body.append([mode, kib(M)] + cells)
    return common.markdown_table(header, body)


def systems_table(rows: list[dict]) -> str:
    """One row per (scenario, variant): its parameter count(s) and the arguments it was built with."""
    body, seen = [], set()
    for r in rows:
        key = (r["scenario"], r["name"])
        if key in seen or not r.get("arguments"):
            continue
        seen.add(key)
        params = sorted({x["params"] for x in find(rows, scenario=r["scenario"], name=r["name"]) if x.get("params")})
        count = f"{params[0]:,}" if len(params) == 1 else f"{params[0]:,}–{params[-1]:,} (grows with M)"
        body.append([r["scenario"], f"**{r['name']}**", count, r["attn_implementation"], r["arguments"]])
    return common.markdown_table(["scenario", "system", "params", "attention", "arguments"], body)


def flops_table(rows: list[dict]) -> str:
    """Forward FLOPs by component, matched scenario, training rows (batch B)."""
    body = []
    for r in sorted(find(rows, scenario="matched", mode="train"), key=lambda r: (r["M"], r["name"])):
        if r.get("flops_forward_parts"):
            parts = r["flops_forward_parts"]
            body.append(
                [kib(r["M"]), r["name"]]
                + [f"{parts[k] / 1e9:,.3f}" for k in parts]
                + [f"{sum(parts.values()) / 1e9:,.3f}"]
            )
    return common.markdown_table(
        ["M", "system", "K/V projection", "cross-attends", "self-attends", "head", "forward GFLOP"], body
    )


def write_report(path: Path, data: dict, rows: list[dict], plots: list[str]) -> None:
    args, m, mm = data["args"], data["machine"], data["matmul"]
    rate, R = mm["reference_flops"], args["repeats"]
    out = [
        "# Benchmarks: perceiver-byte vs transformers' Perceiver IO vs lucidrains' Perceiver",
        "",
        f"Generated by `scripts/benchmark.py` on {data['date']} "
        f"({'QUICK smoke run: tiny sizes, not a benchmark' if args['quick'] else 'full run'}). What is measured and "
        "how, the mapping of the systems and the FLOP model: [docs/benchmarks.md](benchmarks.md).",
        "",
        "```",
        data["command"],
        "```",
        "",
        "## Machine",
        "",
        f"- {common.machine_line(m)}; {m['platform']}; torch threads {m['torch_threads']}",
        f"- Python {m['python']}, torch {m['torch']}, transformers {m['transformers']}, perceiver-pytorch "
        f"{m['perceiver_pytorch']}; commit {m['commit']}",
        f"- load average at start / end: {data['loadavg_start']} / {data['loadavg_end']}; run time "
        f"{data['duration_s'] / 60:.1f} min for {data['n_measurements']} measurements",
        f"- fp32 matmul GFLOP/s (median of {args['matmul_reps']}), start / end: "
        + "; ".join(
            f"{k} {'x'.join(map(str, v['shape']))}: {v['gflops_start']:.1f} / {v['gflops_end']:.1f}"
            for k, v in mm["shapes"].items()
        )
        + f"; reference for '% of matmul': {rate / 1e9:.1f}",
        "",
        "## Systems",
        "",
        systems_table(rows),
        "",
        "## FLOP formulas",
        "",
        f"Forward GFLOP of one batch of {args['batch_size']} by component, matched scenario (formulas in "
        "docs/benchmarks.md):",
        "",
        flops_table(rows),
        "",
    ]
    if find(rows, scenario="matched"):
        out += [f"## Matched architecture (R = 1), batch {args['batch_size']}", ""]
        for mode in ("train", "infer"):
            out += [f"### {mode}", "", scenario_table(rows, "matched", mode, rate), ""]
        pairs = [("ours", a) for a in (*ANCHORS, "ours projected")]
        out += ["### Ratios", "", ratio_table(rows, "matched", pairs), ""]
        body = []
        for mode, f in data["fits"].items():
            slopes = ["-" if s is None else f"{s:.3f}" for s in (f["time_slope"], f["memory_slope"])]
            body.append([mode, ", ".join(kib(x) for x in f["M"]) or "-", *slopes])
        out += [
            f"### Linear scaling of ours: log-log slopes, M in [{kib(args['fit_range'][0])}, "
            f"{kib(args['fit_range'][1])}]",
            "",
            common.markdown_table(["mode", "M points", "time slope", "memory slope"], body),
            "",
        ]
    if find(rows, scenario="repeats"):
        out += [f"## R = {R} repeats with shared weights, batch {args['batch_size']}", ""]
        for mode in ("train", "infer"):
            out += [f"### {mode}", "", scenario_table(rows, "repeats", mode, rate), ""]
        pairs = [
            (f"ours R={R}", f"lucidrains R={R}"),
            (f"ours R={R}", f"ours projected R={R}"),
            (f"ours projected R={R}", f"lucidrains R={R}"),
        ]
        out += ["### Ratios", "", ratio_table(rows, "repeats", pairs), ""]
    if find(rows, scenario="compile"):
        out += [f"## Eager vs torch.compile (backend {args['compile_backend']}), batch {args['batch_size']}", ""]
        for mode in ("train", "infer"):
            out += [f"### {mode}", "", scenario_table(rows, "compile", mode, rate), ""]
        first = [
            f"{r['mode']} M={kib(r['M'])}: " + ", ".join(f"{t:.1f} s" for t in r["compile_first"])
            for r in find(rows, scenario="compile", name="ours compiled")
            if r["compile_first"]
        ]
        out += ["First compiled step (compilation included), per process: " + "; ".join(first), ""] if first else []
        out += ["### Ratios", "", ratio_table(rows, "compile", [("ours compiled", "ours eager")]), ""]
    if find(rows, scenario="long"):
        out += [f"## Long inputs, batch 1 (cross_attention_chunk_size {args['chunk_size']:,} where named)", ""]
        for mode in ("infer", "train"):
            out += [f"### {mode}", "", scenario_table(rows, "long", mode, rate), ""]
    if plots:
        out += ["## Plots", "", "Matched scenario (solid) and the repeats scenario (dashed), log-log:", ""]
        out += [f"![{p}]({p})" for p in plots] + [""]
    out += [f"Every measurement (each process, each step time): `{path.stem}.json`.", ""]
    path.write_text("\n".join(out))


def make_plots(rows: list[dict], out_dir: Path, stem: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"ours": "C0", "transformers": "C1", "lucidrains": "C2", "ours projected": "C3"}
    files = []
    for what, key, scale, ylabel in (
        ("time", "time_s", 1, "seconds per step"),
        ("memory", "peak_bytes", 2**20, "peak memory above baseline (MiB)"),
    ):
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
        for ax, mode in zip(axes, ("train", "infer"), strict=True):
            for scenario, style in (("matched", "-o"), ("repeats", "--s")):
                for name in sorted({r["name"] for r in find(rows, scenario=scenario, mode=mode)}):
                    sel = find(rows, scenario=scenario, mode=mode, name=name)
                    points = sorted((r["M"], r[key] / scale) for r in sel if r["status"] == "ok")
                    if not points:
                        continue
                    color = colors.get("ours projected" if name.startswith("ours projected") else name.split()[0])
                    label = f"{name} (R=1)" if scenario == "matched" else name
                    alpha = 1.0 if scenario == "matched" else 0.6
                    ax.plot(*zip(*points, strict=True), style, color=color, label=label, alpha=alpha)
                    for r in sel:  # a failure: an x at its M, at the last good value
                        if r["status"] != "ok":
                            ax.plot([r["M"]], [points[-1][1]], "x", color=color, markersize=10)
            ours = sorted(
                (r["M"], r[key] / scale) for r in find(rows, scenario="matched", mode=mode, name="ours", status="ok")
            )
            if len(ours) >= 2:  # a slope-1 guide through ours' largest point: linear scaling
                (m0, _), (m1, y1) = ours[0], ours[-1]
                ax.plot([m0, m1], [y1 * m0 / m1, y1], ":", color="grey", linewidth=1, label="slope 1 (linear in M)")
            ax.set_xscale("log", base=2)
            ax.set(yscale="log", xlabel="input bytes M (per row)", ylabel=ylabel)
            ax.set_title(f"{'training step' if mode == 'train' else 'inference'}: {what} vs M")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
        fig.suptitle("x = failed at that M (plotted at the last good value)", fontsize=8, y=0.02)
        fig.tight_layout()
        fig.savefig(out_dir / f"{stem}_{what}.png", dpi=110)
        plt.close(fig)
        files.append(f"{stem}_{what}.png")
    return files


# =====================================================================================================================
# the command line
# =====================================================================================================================
# --quick: what differs from the full run's defaults (the argparse defaults); options given explicitly still win
QUICK = dict(
    preset="tiny", batch_size=2, sizes="256", extra_sizes="1k", anchor_max_bytes=256, repeats=2, repeats_sizes="256",
    compile_sizes="256", compile_backend="aot_eager", long_bytes=8192, long_train_bytes=2048, chunk_size=2048,
    fit_range="256,1k", rounds=1, iters=1, time_limit=120.0, long_time_limit=120.0, compile_time_limit=120.0,
    matmul_size=512, matmul_reps=5, threads=1,
)  # fmt: skip


def parse_args(argv=None):
    installed = [s for s in SYSTEMS if s != "lucidrains" or importlib.util.find_spec("perceiver_pytorch")]
    available = common.proc_kib("/proc/meminfo", "MemAvailable") or 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = p.add_argument
    add("--worker", metavar="SPEC_JSON", help="run one measurement in this process, print one JSON line")
    add("--quick", action="store_true", help="tiny model and sizes, 1 round (smoke test)")
    add("--plan", action="store_true", help="print the measurements, then exit")
    add("--out-dir", type=Path, default=REPO / "docs", help="where the outputs go (default docs/)")
    add("--stem", default="benchmarks_results", help="output names: STEM.md, STEM.json, STEM_time.png, STEM_memory.png")
    add("--preset", choices=sorted(PRESETS), default="default", help="model config (default: our defaults)")
    add("--systems", default=",".join(installed), help="comma list of ours, transformers, lucidrains (when installed)")
    add("--scenarios", default="matched,repeats,compile,long", help="comma list")
    add("--modes", default="train,infer")
    add("--batch-size", "--batch_size", type=int, default=8)
    add("--sizes", type=parse_sizes, default="512,2k,4k,8k,32k", help="M for every system")
    add("--extra-sizes", type=parse_sizes, default="64k,128k,256k", help="larger M for the survivors")
    add("--anchor-max-bytes", type=int, default=65536, help="the anchors' largest extra size")
    add("--repeats", type=int, default=8, help="R of the shared-weights scenario (0 = skip it)")
    add(
        "--no-projected",
        dest="projected",
        action="store_false",
        help="skip the 'ours projected' variant (cross_attention_absorb_projections=False)",
    )
    add("--repeats-sizes", type=parse_sizes, default="2k,8k,32k", help="M of the repeats scenario")
    add("--compile-sizes", type=parse_sizes, default="8k", help="M of the eager-vs-compile scenario")
    add("--compile-backend", default="inductor", help="torch.compile backend")
    add("--long-bytes", type=int, default=1048576, help="the long inference input")
    add("--long-train-bytes", type=int, default=65536, help="the long training input")
    add("--long-no-warmup", action="store_true", help="no warm-up step for the long-input runs")
    add("--chunk-size", type=int, default=None,
        help="ours' cross_attention_chunk_size in the long runs (default: PerceiverByteConfig's)")
    add("--fit-range", type=parse_sizes, default="4k,256k", help="M range of the slope fit")
    add("--rounds", type=int, default=2, help="interleaved rounds, one process each")
    add("--iters", type=int, default=3, help="timed steps per process at most")
    add("--warmup", type=int, default=1, help="untimed steps per process")
    add("--time-limit", type=float, default=240.0, help="seconds per measurement process")
    add("--long-time-limit", type=float, default=420.0, help="seconds per long-input process")
    add("--compile-time-limit", type=float, default=420.0, help="seconds per compiled process")
    add("--budget-fraction", type=float, default=0.5, help="of the limit, for timed steps")
    add(
        "--mem-limit-gb",
        type=float,
        default=0.85 * available / 2**30,
        help="address-space allowance per process (default: 85%% of MemAvailable at start)",
    )
    add("--matmul-size", type=int, default=2048, help="n of the n x n matmul rate")
    add("--matmul-reps", type=int, default=7)
    add("--device", default="cpu")
    add("--threads", type=int, default=None, help="torch threads in each process (default: torch's)")
    args = p.parse_args(argv)
    if args.quick:
        p.set_defaults(**QUICK)
        args = p.parse_args(argv)
    args.systems, args.scenarios, args.modes = (
        [s.strip() for s in x.split(",") if s.strip()] for x in (args.systems, args.scenarios, args.modes)
    )
    if set(args.systems) - set(SYSTEMS):
        p.error(f"unknown systems {sorted(set(args.systems) - set(SYSTEMS))}; choose from {SYSTEMS}")
    if args.chunk_size is None:
        args.chunk_size = our_config("default").cross_attention_chunk_size
    return args


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.worker:
        sys.stdout.write("\n" + json.dumps(run_measurement(json.loads(args.worker))) + "\n")
        return 0
    groups = build_plan(args)
    if args.plan:
        for g in groups:
            names = ", ".join(s["name"] for s in g["specs"])
            print(f"{g['scenario']:<8} {g['mode']:<5} M={kib(g['M']):>6} B={g['batch']} x{g['rounds']}: {names}")
        print(f"{sum(len(g['specs']) * g['rounds'] for g in groups) + 2} measurement processes (2: the matmul rate)")
        return 0
    args.out_dir.mkdir(parents=True, exist_ok=True)
    command = "python scripts/benchmark.py" + (" " + shlex.join(argv) if argv else "")
    machine = machine_info(args.device)
    print(command + "\n" + common.machine_line(machine), flush=True)
    start, launcher = time.perf_counter(), Launcher()
    matmul_spec = dict(scenario="matmul", system="matmul", mode="-", M=0, batch=0, n=args.matmul_size,
                       reps=args.matmul_reps, rows=8192 if args.quick else 65536, device=args.device,
                       time_limit_s=300, threads=args.threads)  # fmt: skip
    mm_start = launcher.run(dict(matmul_spec, name="matmul start"))
    records = run_plan(groups, launcher)
    mm_end = launcher.run(dict(matmul_spec, name="matmul end"))
    shapes = {}
    for k in ("square", "kv_projection"):
        s, e = mm_start.get("matmul", {}).get(k), mm_end.get("matmul", {}).get(k)
        if s or e:  # (one of the two failed: the other stands for both)
            s, e = s or e, e or s
            shapes[k] = {"shape": s["shape"], "gflops_start": s["gflops"], "gflops_end": e["gflops"]}
    square = shapes.get("square")
    reference = 1e9 * (square["gflops_start"] + square["gflops_end"]) / 2 if square else 0.0

    rows = aggregate(records)
    out_json = args.out_dir / f"{args.stem}.json"
    data = dict(
        date=datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        command=command,
        args={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        machine=machine,
        loadavg_start=machine["loadavg_1_5_15"],
        loadavg_end=common.machine()["loadavg_1_5_15"],
        matmul={"shapes": shapes, "reference_flops": reference},
        duration_s=time.perf_counter() - start,
        n_measurements=len(records) + 2,
        fits=scaling_fits(rows, *args.fit_range[:2]),
        chunk_size=args.chunk_size if "long" in args.scenarios else None,
        summary=[{k: v for k, v in r.items() if k not in ("times", "cpu", "peaks", "steady")} for r in rows],
        measurements=[mm_start, *records, mm_end],
    )
    try:
        # (stem "benchmarks" keeps the plot names of the first runs' reports: docs/benchmark_time.png, ...)
        data["plots"] = make_plots(rows, args.out_dir, "benchmark" if args.stem == "benchmarks" else args.stem)
    except Exception as exc:  # noqa: BLE001 - a report without plots beats no report
        print(f"plots failed: {type(exc).__name__}: {exc}")
        data["plots"] = []
    out_json.write_text(json.dumps(data, indent=1, default=str))
    write_report(args.out_dir / f"{args.stem}.md", data, rows, data["plots"])
    for mode, f in data["fits"].items():
        if f["time_slope"] is not None:
            print(
                f"ours log-log slope ({mode}, M in {kib(f['range'][0])}..{kib(f['range'][1])}, {f['points']} "
                f"points): time {f['time_slope']:.3f}, memory {f['memory_slope']:.3f}"
            )
    print(
        f"wrote {args.out_dir / args.stem}.md, .json and {', '.join(data['plots'])} in "
        f"{data['duration_s'] / 60:.1f} min"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
